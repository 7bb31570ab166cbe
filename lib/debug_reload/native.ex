defmodule DebugReload.Native do
  @moduledoc """
  The Rust NIF: content digests, change sets, breakpoint remapping, file
  watchers and the reload-plan graph.

  Every function returns plain terms. Bad arguments raise `ArgumentError`
  and a panic in Rust raises an `ErlangError`; neither can crash the VM.
  Long-running functions run on dirty schedulers.
  """

  @on_load :load_nif
  @nif "debug_reload_nif"

  @typedoc "Path to hex content digest."
  @type snapshot :: %{optional(String.t()) => String.t()}
  @type scan_errors :: [{path :: String.t(), reason :: String.t()}]
  @type change_set :: %{
          changed: [String.t()],
          added: [String.t()],
          removed: [String.t()],
          unchanged: non_neg_integer()
        }
  @type remap :: %{
          old_line: pos_integer(),
          new_line: pos_integer() | nil,
          status: :kept | :moved | :relocated | :removed,
          reason: String.t()
        }

  @doc false
  def load_nif do
    path = :filename.join(priv_dir(), ~c"native/#{@nif}")

    case :erlang.load_nif(path, 0) do
      :ok ->
        :ok

      {:error, {reason, text}} ->
        # on_load may not raise usefully; log the how-to and fail the load.
        :logger.error(~c"~ts", [load_error_message(path, reason, text)])
        {:error, reason}
    end
  end

  @doc false
  def load_error_message(path, reason, text) do
    """
    debug_reload could not load its NIF from #{path}.so (#{inspect(reason)}: #{text}).
    Build it with `mix compile` in the debug_reload project (it needs cargo on PATH),
    or `make build` in a checkout of debug_reload.
    """
  end

  defp priv_dir do
    case :code.priv_dir(:debug_reload) do
      {:error, :bad_name} -> ~c"priv"
      dir -> dir
    end
  end

  @doc "Digests files below `roots` whose names end with one of `extensions`."
  @spec scan_sources([String.t()], [String.t()]) :: {snapshot(), scan_errors()}
  def scan_sources(_roots, _extensions), do: not_loaded()

  @doc """
  Files below `roots` whose names end with one of `extensions`, sorted, as
  `Path.wildcard("root/**/*ext")` lists them (hidden entries skipped; also
  `_build`, `deps`, `.git`), without reading them.
  """
  @spec list_files([String.t()], [String.t()]) :: [String.t()]
  def list_files(_roots, _extensions), do: not_loaded()

  @doc "Digest of a binary, in the same format as the file digests."
  @spec digest_binary(binary()) :: String.t()
  def digest_binary(_bytes), do: not_loaded()

  @doc "Compares two snapshots; `scope` (a list of paths) limits the comparison."
  @spec diff_snapshots(snapshot(), snapshot(), [String.t()] | nil) :: change_set()
  def diff_snapshots(_previous, _current, _scope), do: not_loaded()

  @doc """
  Scans `roots` like `scan_sources/2` and keeps the result as the baseline
  of a source tree (a resource); returns the tree and the baseline.
  """
  @spec source_tree_new([String.t()], [String.t()]) :: {reference(), snapshot(), scan_errors()}
  def source_tree_new(_roots, _extensions), do: not_loaded()

  @doc """
  The changes of the tree since its baseline (of `scope`'s paths only,
  when given), with `:digests` of the changed and added files and the
  scan `:errors`. The baseline does not move.
  """
  @spec source_tree_changes(reference(), [String.t()] | nil) :: map()
  def source_tree_changes(_tree, _scope), do: not_loaded()

  @doc """
  Makes `resources` part of the tree's scans besides its walk; returns
  the baseline entries added (those newly tracked, as they are now) and
  the paths that left the baseline (those no longer tracked).
  """
  @spec source_tree_track(reference(), [String.t()]) :: {snapshot(), [String.t()]}
  def source_tree_track(_tree, _resources), do: not_loaded()

  @doc "Moves the tree's baseline: `digests` are current, `removed` are gone."
  @spec source_tree_accept(reference(), snapshot(), [String.t()]) :: :ok
  def source_tree_accept(_tree, _digests, _removed), do: not_loaded()

  @doc """
  Maps breakpoint `lines` of one module from the old code to the new.

  `old_text` is the snapshot of the source the old code was compiled from
  (or `nil`); the statement lists (see `DebugReload.ExecutableLines`) come
  from the old and new beams' debug info.
  """
  @spec remap_breakpoints(
          String.t() | nil,
          String.t() | nil,
          [DebugReload.ExecutableLines.statement()],
          [DebugReload.ExecutableLines.statement()],
          [pos_integer()]
        ) :: [remap()]
  def remap_breakpoints(_old_text, _new_text, _old_statements, _new_statements, _lines),
    do: not_loaded()

  @doc """
  Encodes a term as JSON: maps (atom or string keys), lists, strings,
  numbers, booleans, `nil`, and other atoms as strings. Raises
  `ArgumentError` for anything else (pids, tuples, invalid UTF-8).
  """
  @spec encode_json(term()) :: binary()
  def encode_json(_term), do: not_loaded()

  @doc "Decodes JSON; objects become maps with string keys."
  @spec decode_json(binary()) :: {:ok, term()} | {:error, String.t()}
  def decode_json(_json), do: not_loaded()

  @doc """
  Starts a file watcher sending batches to `owner` as
  `{:debug_reload_watch, tag, batch}`; see `DebugReload.Watcher`.
  """
  @spec watch_start(pid(), term(), [String.t()], [String.t()], [String.t()], pos_integer(), snapshot() | nil) ::
          {:ok, reference()} | {:error, String.t()}
  def watch_start(_owner, _tag, _roots, _extensions, _files, _debounce_ms, _baseline), do: not_loaded()

  @doc "Stops a watcher and waits until its thread and OS watch are released."
  @spec watch_stop(reference()) :: :ok | {:error, :timeout}
  def watch_stop(_watcher), do: not_loaded()

  @doc "True once the watchers' runtime (started on first use, then kept) runs."
  @spec watch_runtime_started() :: boolean()
  def watch_runtime_started, do: not_loaded()

  @doc "Makes `pid` the receiver of Rust log events, `{:debug_reload_log, level, target, message}`."
  @spec watch_log_forwarder(pid()) :: :ok | {:error, String.t()}
  def watch_log_forwarder(_pid), do: not_loaded()

  @doc """
  Builds the reload-plan graph from a normalized manifest (see
  `DebugReload.Manifest`); returns a resource for the other `plan_graph_*`.
  """
  @spec plan_graph_build(DebugReload.Manifest.t()) :: reference()
  def plan_graph_build(_manifest), do: not_loaded()

  @doc "Replaces the delta's sources and modules, forgets removed ones; returns the counts."
  @spec plan_graph_update(reference(), DebugReload.Manifest.delta()) :: DebugReload.Planner.stats()
  def plan_graph_update(_graph, _delta), do: not_loaded()

  @spec plan_graph_stats(reference()) :: DebugReload.Planner.stats()
  def plan_graph_stats(_graph), do: not_loaded()

  @spec plan_graph_fingerprint(reference()) :: String.t()
  def plan_graph_fingerprint(_graph), do: not_loaded()

  @doc """
  Plans `request`: before the compile when `outcome` is nil, resolved with
  the compile's outcome otherwise; as terms (`:term`) or JSON (`:json`).
  """
  @spec plan_graph_plan(reference(), map(), map() | nil, :term | :json) ::
          DebugReload.Planner.plan() | binary()
  def plan_graph_plan(_graph, _request, _outcome, _format), do: not_loaded()

  @doc """
  `plan_graph_plan/4` before a compile, on a normal scheduler, when the
  plan surely takes microseconds (and `:locate` is false); `:dirty` when it
  may not, and the caller uses `plan_graph_plan/4`.
  """
  @spec plan_graph_try_plan(reference(), map(), :term | :json) ::
          DebugReload.Planner.plan() | binary() | :dirty
  def plan_graph_try_plan(_graph, _request, _format), do: not_loaded()

  @doc "The benchmarks' synthetic manifest: `modules` modules, `edges` references."
  @spec plan_graph_synthetic(pos_integer(), pos_integer(), non_neg_integer()) :: DebugReload.Manifest.t()
  def plan_graph_synthetic(_modules, _edges, _seed), do: not_loaded()

  defp not_loaded do
    :erlang.nif_error(
      {:not_loaded,
       "the debug_reload NIF is not loaded; run `mix compile` (needs cargo) and check the log for the load error"}
    )
  end
end
