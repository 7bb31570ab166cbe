defmodule DebugReload.Watcher do
  @moduledoc """
  Watches source directories and sends their changes, in batches, to an
  owner process.

  The watching runs in the NIF: `notify` and its debouncer on a tokio
  runtime that the library starts on first use and shares between
  watchers. A batch closes once no file event has arrived for the
  debounce window, so an editor's atomic save (write a temporary file,
  rename it over the source), several quick writes, a formatter run right
  after a save, or a `git checkout` touching many files each arrive as one
  batch. Every touched path is then digested, and only files whose
  content differs from the digest last seen are reported: a `touch`, or a
  save of unchanged content, sends nothing.

  Only source files count (see `extensions/0`) below the given roots,
  outside `_build`, `deps` and `.git`, and the single files named with
  `:files` (resources code is built from, wherever they are) with the
  files beside each of them that share its extension (a template added
  beside templates may be one a wildcard picks up). Directories
  created later, and roots and named files that do not exist yet, are
  picked up as they appear.

  Each batch arrives as

      {:debug_reload_watch, ref, %{changed: [path], added: [path], removed: [path]}}

  with absolute paths, `ref` being the watcher's `ref`. The watcher stops
  on `stop/1`, when its owner exits, or when it is garbage collected; it
  then holds no thread and no file descriptor. Its log events (start,
  stop, errors such as the OS watch limit) go to `Logger`, never to
  stdout, through `DebugReload.Watcher.LogForwarder`.
  """

  alias DebugReload.{Native, Project}
  alias DebugReload.Watcher.LogForwarder

  @enforce_keys [:ref, :resource, :roots, :debounce]
  defstruct [:ref, :resource, :roots, :debounce, files: []]

  @type t :: %__MODULE__{
          ref: reference(),
          resource: reference(),
          roots: [String.t()],
          files: [String.t()],
          debounce: pos_integer()
        }
  @type batch :: %{changed: [String.t()], added: [String.t()], removed: [String.t()]}

  @default_debounce 100
  @extensions [".ex", ".exs", ".erl", ".hrl"]

  @doc "File name endings a watcher reports."
  @spec extensions() :: [String.t()]
  def extensions, do: @extensions

  @doc "The debounce window used when none is given, in ms."
  @spec default_debounce() :: pos_integer()
  def default_debounce, do: @default_debounce

  @doc "The directories to watch for `project`: its apps' and its path dependencies' sources."
  @spec roots(Project.t()) :: [String.t()]
  def roots(%Project{} = project), do: Project.source_dirs(project)

  @doc """
  Starts watching `roots` (absolute directories; they need not exist yet).

  Options:

    * `:debounce` - the window in ms (default #{@default_debounce})
    * `:files` - absolute paths of single files to report too, whatever
      their name and wherever they are (they need not exist yet)
    * `:owner` - the process batches go to (default: the caller); the
      watcher stops when it exits
    * `:baseline` - `%{path => digest}` (as `DebugReload.Native.scan_sources/2`
      gives) of the sources the running code came from; the first batch
      then reports what differs from it, so edits made before the watch
      started are not lost
  """
  @spec start([String.t()], keyword()) :: {:ok, t()} | {:error, String.t()}
  def start(roots, opts \\ []) do
    debounce = Keyword.get(opts, :debounce, @default_debounce)
    owner = Keyword.get(opts, :owner, self())
    baseline = Keyword.get(opts, :baseline)
    files = Keyword.get(opts, :files, [])

    with :ok <- validate(roots, files, debounce, baseline) do
      # Without a forwarder the watcher still works, silently.
      _ = LogForwarder.ensure_started()
      ref = make_ref()
      roots = Enum.map(roots, &Path.expand/1)
      files = files |> Enum.map(&Path.expand/1) |> Enum.uniq() |> Enum.sort()

      case Native.watch_start(owner, ref, roots, @extensions, files, debounce, baseline) do
        {:ok, resource} ->
          {:ok, %__MODULE__{ref: ref, resource: resource, roots: roots, files: files, debounce: debounce}}

        {:error, reason} ->
          {:error, reason}
      end
    end
  end

  defp validate(roots, files, debounce, baseline) do
    cond do
      not is_list(roots) or roots == [] or not Enum.all?(roots, &is_binary/1) ->
        {:error, "roots must be a non-empty list of directory paths, got: #{inspect(roots)}"}

      not is_list(files) or not Enum.all?(files, &is_binary/1) ->
        {:error, "files must be a list of file paths, got: #{inspect(files)}"}

      not is_integer(debounce) or debounce < 1 ->
        {:error, "debounce must be a positive number of milliseconds, got: #{inspect(debounce)}"}

      not (is_nil(baseline) or is_map(baseline)) ->
        {:error, "baseline must be a map of path => digest, got: #{inspect(baseline)}"}

      true ->
        :ok
    end
  end

  @doc "Stops the watcher and waits until its thread and OS watch are gone."
  @spec stop(t()) :: :ok | {:error, :timeout}
  def stop(%__MODULE__{resource: resource}), do: Native.watch_stop(resource)

  @doc """
  Whether `batch` names a source the project compiles (its apps' or its
  path dependencies'), or one of `files` or a file like one of them (see
  above). Other files, such as an `.exs` script under `lib/`, do not count.
  """
  @spec sources?(batch(), Project.t(), [String.t()]) :: boolean()
  def sources?(batch, %Project{} = project, files \\ []) do
    kinds = for file <- files, kind = kind(file), into: MapSet.new(), do: kind

    Enum.any?(
      batch.changed ++ batch.added ++ batch.removed,
      &(Project.source?(project, &1) or MapSet.member?(kinds, kind(&1)))
    )
  end

  # A file without an extension has no like.
  defp kind(path) do
    case Path.extname(path) do
      "" -> nil
      ext -> {Path.dirname(path), ext}
    end
  end
end
