defmodule DebugReload.Project do
  @moduledoc """
  The layout of the Mix project being debugged, as Mix itself reports it
  from the compile worker: every app (one, or each app of an umbrella)
  with its source directories and the ebin directory its beams go to, and
  the `path:` dependencies whose sources a watcher follows too.
  """

  @type app :: %{
          required(:app) => atom(),
          required(:root) => String.t(),
          required(:source_dirs) => [String.t()],
          required(:ebin) => String.t(),
          optional(:deps) => [atom()]
        }
  @type t :: %__MODULE__{
          root: String.t(),
          env: String.t(),
          build_path: String.t(),
          apps: [app()],
          path_deps: [app()],
          consolidation: [String.t()]
        }

  defstruct [:root, :env, :build_path, apps: [], path_deps: [], consolidation: []]

  @source_extensions [".ex", ".erl", ".hrl"]

  @doc "File name endings that count as sources."
  @spec source_extensions() :: [String.t()]
  def source_extensions, do: @source_extensions

  @spec source_dirs(t()) :: [String.t()]
  def source_dirs(%__MODULE__{apps: apps}), do: apps |> Enum.flat_map(& &1.source_dirs) |> Enum.uniq()

  @doc "Source directories of the project's apps and of its `path:` dependencies."
  @spec watch_dirs(t()) :: [String.t()]
  def watch_dirs(%__MODULE__{path_deps: deps} = project),
    do: Enum.uniq(source_dirs(project) ++ Enum.flat_map(deps, & &1.source_dirs))

  @spec ebin_dirs(t()) :: [String.t()]
  def ebin_dirs(%__MODULE__{apps: apps}), do: apps |> Enum.map(& &1.ebin) |> Enum.uniq()

  @doc "Where Mix writes consolidated protocols."
  @spec consolidation_dirs(t()) :: [String.t()]
  def consolidation_dirs(%__MODULE__{consolidation: dirs}), do: dirs

  @doc "Every directory whose beams a reload may load: ebins, then consolidated protocols."
  @spec beam_dirs(t()) :: [String.t()]
  def beam_dirs(%__MODULE__{} = project), do: Enum.uniq(ebin_dirs(project) ++ consolidation_dirs(project))

  @doc "True when `path` (absolute) is inside the project root."
  @spec inside?(t(), String.t()) :: boolean()
  def inside?(%__MODULE__{root: root}, path) do
    path == root or String.starts_with?(path, root <> "/")
  end

  @doc "True when `path` is a source file the project compiles."
  @spec source?(t(), String.t()) :: boolean()
  def source?(%__MODULE__{} = project, path) do
    String.ends_with?(path, @source_extensions) and
      Enum.any?(source_dirs(project), &(path == &1 or String.starts_with?(path, &1 <> "/")))
  end
end
