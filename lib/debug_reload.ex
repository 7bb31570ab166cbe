defmodule DebugReload do
  @moduledoc """
  Reload edited code into a running debug session without restarting it.

  Start a manager for the project being debugged (usually right after the
  debugger interpreted its modules), then reload after each edit:

      {:ok, _pid} = DebugReload.start_link(interpret: ["MyApp.*"])
      # ... edit lib/my_app/worker.ex ...
      {:ok, report} = DebugReload.reload()

  Interpreted modules stay interpreted, breakpoints follow their
  statements, no process is killed, and long-lived processes run the new
  code on their next call. See `DebugReload.CodeReloadManager` for options
  and `DebugReload.Report` for what a reload returns.

  To reload on every save instead, start the manager with `auto: true`, or
  call `watch/1` (and `unwatch/1`); subscribers get each report.
  """

  alias DebugReload.CodeReloadManager

  @doc "Starts a `DebugReload.CodeReloadManager`; see its docs for options."
  @spec start_link(keyword()) :: GenServer.on_start()
  defdelegate start_link(opts \\ []), to: CodeReloadManager

  @doc false
  def child_spec(opts) do
    %{id: Keyword.get(opts, :name, __MODULE__), start: {__MODULE__, :start_link, [opts]}}
  end

  @doc """
  Reloads what changed since the last reload, all or nothing: if any
  module cannot be loaded or interpreted, on any node, everything goes back
  to how it was and the report says why.

  Options:

    * `:paths` - only consider these source files (relative to the project
      root or absolute); an entry outside the project or missing is an error
    * `:dry_run` - report what would be reloaded, change nothing
    * `:force` - reload the modules of the given (or all) files even when
      nothing changed
    * `:on_busy`, `:busy_timeout`, `:migrate`, `:migrate_extra`, `:nodes`,
      `:node_timeout` - override the manager's options for this reload
      (see `DebugReload.CodeReloadManager`)
    * `:server` - the manager (default `DebugReload`)
    * `:timeout` - call timeout in ms (default 600_000)
  """
  @spec reload(keyword()) :: {:ok, DebugReload.Report.t()} | {:error, DebugReload.Report.t()}
  def reload(opts \\ []) do
    {server, opts} = Keyword.pop(opts, :server, __MODULE__)
    {timeout, opts} = Keyword.pop(opts, :timeout, 600_000)
    GenServer.call(server, {:reload, opts}, timeout)
  end

  @doc """
  Waits until Mix's manifests agree with the loaded code.

  A reload that compiled only its planned files lets Mix's compile task
  catch up in the background (see `DebugReload.CodeReloadManager`); the
  next reload waits for it anyway. Call this before running `mix compile`
  yourself, or before reading Mix's manifests, right after a reload.
  """
  @spec await_sync(GenServer.server(), timeout()) :: :ok
  def await_sync(server \\ __MODULE__, timeout \\ 300_000),
    do: GenServer.call(server, :await_sync, timeout)

  @doc """
  Processes still finishing a call on old code, with their modules.

  The answer waits for the manager's boot (the compile worker loading the
  project), which can take seconds on a large project: pass a `timeout`
  longer than GenServer's default 5 s when calling right after start.
  """
  @spec pending(GenServer.server(), timeout()) :: %{pid() => [module()]}
  def pending(server \\ __MODULE__, timeout \\ 5_000), do: GenServer.call(server, :pending, timeout)

  @doc "Sends every later report to the caller as `{:debug_reload, report}`."
  @spec subscribe(GenServer.server()) :: :ok
  def subscribe(server \\ __MODULE__), do: GenServer.call(server, {:subscribe, self()})

  @doc """
  Watches the project's sources and reloads after every save.

  The manager starts a `DebugReload.Watcher` on the source directories of
  the project's apps and of its `path:` dependencies, and on the files the
  compiled code was built from besides them (`@external_resource`s, such
  as templates; followed as modules start or stop declaring them). Each
  batch of saves
  runs the reload `reload/1` runs, and its report goes to every subscriber
  (see `subscribe/1`) as `{:debug_reload, report}`, so a debug adapter can
  tell the editor about reloads nobody asked for. Starting the manager
  with `auto: true` does the same at start.

  Options:

    * `:debounce` - ms without a file event that close a batch (default 100)
    * `:server` - the manager (default `DebugReload`)

  Watching again replaces the previous watcher.
  """
  @spec watch(keyword()) :: :ok | {:error, String.t()}
  def watch(opts \\ []) do
    {server, opts} = Keyword.pop(opts, :server, __MODULE__)
    GenServer.call(server, {:watch, opts}, 60_000)
  end

  @doc "Stops watching; its thread and OS watches are gone when this returns."
  @spec unwatch(GenServer.server()) :: :ok
  def unwatch(server \\ __MODULE__), do: GenServer.call(server, :unwatch, 60_000)

  @spec unsubscribe(GenServer.server()) :: :ok
  def unsubscribe(server \\ __MODULE__), do: GenServer.call(server, {:unsubscribe, self()})
end
