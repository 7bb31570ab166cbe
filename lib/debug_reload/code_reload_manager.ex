defmodule DebugReload.CodeReloadManager do
  @moduledoc """
  Serializes reloads of a debugged Mix project: one GenServer per project.

  A reload flows one way:

      sources changed (Rust digests) → plan → compile (worker node)
        → changed beams → load natively / re-interpret → move breakpoints
        → report

  The compile takes one of two paths. When the plan can say exactly what
  Mix would recompile (Elixir sources of the project's own app, no file
  added or removed, no export change that recompiles other files), the
  worker compiles just those files and hands the beams back (`:planned`);
  Mix's compile task then catches up in the background (the *sync*) and
  the next reload waits for it. Otherwise Mix's compile task runs
  (`:mix`) and the changed beams are found on disk.

  The manager keeps the state each step compares against: the digests of
  the sources and beams the loaded code came from, the text of the sources
  of interpreted modules (for breakpoint diffs), the old beams of
  interpreted modules (their executable lines, and a way back) and the
  processes still finishing a call on old code.

  Options:

    * `:project` - the Mix project root (default: `File.cwd!()`)
    * `:interpret` - module patterns, as ElixirLS's
      `debugInterpretModulesPatterns`, for new modules to interpret
    * `:name` - registered name (default: `DebugReload`)
    * `:mix_env` - the env the project was compiled in (default: `Mix.env()`
      when Mix runs, else `MIX_ENV`, else `"dev"`)
    * `:busy_timeout` - ms to wait for processes running a module's
      interpreted code to step out of it before swapping (default 2000)
    * `:on_busy` - what to do when processes are still running a changed
      module's code (natively, or interpreted and not paused) after
      `:busy_timeout`: `:wait` (default: defer the whole reload and retry
      it until they leave), `:proceed` (reload; they finish their call on
      the old code, with a warning) or `:cancel` (give the reload up)
    * `:migrate` - pids or names of OTP processes whose state goes through
      `code_change/3` when their callback module is reloaded (see
      `DebugReload.Migration`); `:migrate_extra` is its `extra` argument
    * `:nodes` - `:connected` (default: every connected node) or a list of
      nodes the reload also applies to; `:node_timeout` bounds each remote
      call in ms (default 5000)
    * `:compile_timeout` - ms (default 300_000)
    * `:auto` - watch the sources and reload on every save (default
      `false`); see `DebugReload.watch/1`
    * `:debounce` - the watcher's debounce window in ms (default 100)
    * `:compile` - `:planned` (default: compile the planned files when the
      plan is exact, else run Mix's compile task) or `:mix` (always run
      Mix's compile task)
  """
  use GenServer
  require Logger

  alias DebugReload.{
    Beam,
    Breakpoints,
    CompileWorker,
    Guards,
    Interpreter,
    Loader,
    Native,
    Patterns,
    Planner,
    Project,
    Protocols,
    Report,
    SourceTree,
    Staleness,
    Watcher
  }

  @deferred_retry_ms 250

  defstruct [
    :root,
    :env,
    :patterns,
    :worker,
    :project,
    :boot_error,
    busy_timeout: 2_000,
    compile_timeout: 300_000,
    on_busy: :wait,
    migrate: [],
    migrate_extra: [],
    nodes: :connected,
    node_timeout: 5_000,
    compile: :planned,
    # a planned compile ran; Mix's compile task is catching up in the worker
    sync_pending: false,
    # the last sync left the beams on disk other than the loaded ones (or
    # failed): the next reload runs Mix's compile task and compares beams
    full_compile: false,
    # beam path => digest: beams a sync wrote from a newer save of a file
    stray_beams: %{},
    retry_timer: nil,
    # options of the reload call being served (on_busy, migrate, ...)
    call_opts: [],
    # digests of mix.exs, mix.lock, config and deps' mix.exs: a change
    # there needs a restart
    restart_files: %{},
    # module => {beam path, binary} read before compiling, so a failed
    # reload can load the old code back
    old_binaries: %{},
    # while a reload loads the beams a planned compile announced, before
    # the compiler's checks of them are done (see checks_passed/1)
    checks_pending: false,
    # module => {beam path, binary} loaded back by a rolled-back reload: the
    # beam on disk is newer than the code that runs
    rolled_back: %{},
    # DebugReload.SourceTree: the digests of the sources the loaded code
    # was compiled from
    sources: nil,
    # source path => text, for sources of interpreted modules
    texts: %{},
    # beam path => digest of the beams that are loaded (or on disk, unloaded)
    beams: %{},
    # module => %{source, binary, path, statements} for interpreted modules
    interpreted: %{},
    # the interpreter server we took the module list of (see
    # follow_interpreter/1)
    iserver: nil,
    # pid => [module] still running a call on old code
    pending: %{},
    # the process forwarding the interpreter's events to us, while
    # `pending` is not empty (see listen_while_pending/1)
    event_relay: nil,
    # natively reloaded modules whose old code a process still runs or
    # holds funs of: the purge after the reply leaves them alone
    old_code_in_use: [],
    # module => breakpoints, for interpreted modules whose file went away:
    # if it comes back (a branch switch, an undo) it is interpreted again
    # and gets its breakpoints back
    tombstones: %{},
    subscribers: %{},
    # the DebugReload.Planner: the dependency graph of Mix's manifests
    planner: nil,
    # the running DebugReload.Watcher, and its options to start it after boot
    watcher: nil,
    auto: nil
  ]

  @type t :: %__MODULE__{}

  @pending_rechecks 20
  @pending_recheck_ms 5

  def start_link(opts) do
    GenServer.start_link(__MODULE__, opts, name: Keyword.get(opts, :name, DebugReload))
  end

  @impl true
  def init(opts) do
    root = opts |> Keyword.get(:project, File.cwd!()) |> Path.expand()

    if File.regular?(Path.join(root, "mix.exs")) do
      Process.flag(:trap_exit, true)
      env = to_string(Keyword.get_lazy(opts, :mix_env, &default_env/0))
      {:ok, worker} = CompileWorker.start_link(root: root, env: env, owner: self())

      state = %__MODULE__{
        root: root,
        env: env,
        patterns: Patterns.compile(Keyword.get(opts, :interpret, [])),
        worker: worker,
        busy_timeout: Keyword.get(opts, :busy_timeout, 2_000),
        compile_timeout: Keyword.get(opts, :compile_timeout, 300_000),
        on_busy: Keyword.get(opts, :on_busy, :wait),
        migrate: Keyword.get(opts, :migrate, []),
        migrate_extra: Keyword.get(opts, :migrate_extra, []),
        nodes: Keyword.get(opts, :nodes, :connected),
        node_timeout: Keyword.get(opts, :node_timeout, 5_000),
        compile: compile_option(Keyword.get(opts, :compile, :planned)),
        restart_files: Guards.restart_files(root),
        auto: if(Keyword.get(opts, :auto, false), do: Keyword.take(opts, [:debounce]))
      }

      # The baseline must be taken now, before the caller can edit a file;
      # only the worker's boot (for Mix's exact layout) may wait.
      {:ok, snapshot(state, conventional_project(root, env)), {:continue, :boot}}
    else
      {:stop, {:not_a_mix_project, root}}
    end
  end

  defp compile_option(mode) when mode in [:planned, :mix], do: mode

  defp compile_option(other),
    do: raise(ArgumentError, "compile must be :planned or :mix, got: #{inspect(other)}")

  defp default_env do
    cond do
      Code.ensure_loaded?(Mix) and function_exported?(Mix, :env, 0) and Process.whereis(Mix.State) ->
        Mix.env()

      env = System.get_env("MIX_ENV") ->
        env

      true ->
        "dev"
    end
  end

  @impl true
  def handle_continue(:boot, state), do: {:noreply, state |> boot() |> start_planner() |> auto_watch()}

  # Work a reload leaves that nobody needs to wait for: Mix's catch-up
  # after a planned compile, and the old code of the modules it loaded
  # (purging scans every process; `:int.ni/1` would otherwise pay for it at
  # the next reload of the module). A soft purge leaves code that some
  # process still runs to the next reload, as before, and so is the code of
  # funs some process holds, which a soft purge does not see.
  def handle_continue({:after_reload, report}, state) do
    if state.sync_pending, do: CompileWorker.start_sync(state.worker)

    for %{module: module} <- Report.reloaded_modules(report),
        module not in state.old_code_in_use,
        do: :code.soft_purge(module)

    {:noreply, remember_interpreted(%{state | old_code_in_use: []}, Interpreter.interpreted())}
  end

  defp boot(state) do
    case CompileWorker.project(state.worker) do
      {:ok, %Project{} = project} ->
        state = %{state | restart_files: Guards.restart_files(state.root, dependency_roots(project))}

        if Project.ebin_dirs(project) == Project.ebin_dirs(state.project) and
             Project.source_roots(project) == Project.source_roots(state.project) do
          {consolidated, _errors} = Native.scan_sources(Project.consolidation_dirs(project), [".beam"])
          %{state | project: project, beams: Map.merge(state.beams, consolidated)}
        else
          # A custom build path, or path dependencies outside the project:
          # take the baselines where Mix puts beams and where sources are.
          snapshot(state, project)
        end

      {:error, reason} ->
        %{state | boot_error: reason}
    end
  end

  # The resources join the baseline only now, once Mix's manifests are
  # read: those edited since the last compile are not what the loaded code
  # came from, and the first reload sees them as changed.
  defp start_planner(%{boot_error: nil, project: %Project{} = project} = state) do
    state = with_planner(state, Planner.new(project))
    resources = MapSet.to_list(state.sources.resources)
    unsettle(state, Staleness.edited_since_compile(project, resources), [])
  end

  defp start_planner(state), do: state

  # The graph and the files the tree scans move together: besides the
  # sources, the `@external_resource`s Mix's manifests record, so that an
  # edited template or data file reloads the modules built from it.
  defp with_planner(state, planner),
    do:
      with_sources(
        %{state | planner: planner},
        SourceTree.track(state.sources, Planner.external_resources(planner))
      )

  # A running watcher follows the tracked resources: started afresh from
  # the baseline, it reports what changed meanwhile.
  defp with_sources(%{watcher: %Watcher{files: files, debounce: debounce}} = state, sources) do
    state = %{state | sources: sources}

    if files == Enum.sort(MapSet.to_list(sources.resources)),
      do: state,
      else: watch_or_log([debounce: debounce], state)
  end

  defp with_sources(state, sources), do: %{state | sources: sources}

  # The resources of the beams just loaded, as they are right after the
  # compile that read them: one a module starts to declare is followed at
  # once, before Mix's manifests (see with_planner/2) record it.
  defp resources_of(loads, state) do
    roots = Map.new(Project.compiled_apps(state.project), &{&1.ebin, &1.root})

    for info <- loads,
        root = roots[Path.dirname(info.path)],
        root != nil,
        path <- Beam.external_resources(info.binary),
        do: Path.expand(path, root)
  end

  defp auto_watch(%{auto: nil} = state), do: state
  defp auto_watch(state), do: watch_or_log(state.auto, state)

  # Watching nobody asked for just now: a failure is logged, not returned.
  defp watch_or_log(opts, state) do
    case watch(opts, state) do
      {:ok, state} ->
        state

      {{:error, reason}, state} ->
        Logger.error("debug_reload: automatic reload is off: #{reason}")
        state
    end
  end

  @impl true
  def handle_call({:reload, opts}, _from, state) do
    {{_tag, report} = reply, state} = run_reload(opts, state)
    {:reply, reply, state, {:continue, {:after_reload, report}}}
  end

  def handle_call({:watch, opts}, _from, state) do
    {reply, state} = watch(opts, state)
    {:reply, reply, state}
  end

  def handle_call(:unwatch, _from, state), do: {:reply, :ok, unwatch(state)}

  def handle_call(:pending, _from, state), do: {:reply, state.pending, state}

  def handle_call(:await_sync, _from, state), do: {:reply, :ok, settle_sync(state)}

  def handle_call({:subscribe, pid}, _from, state) do
    ref = Process.monitor(pid)
    {:reply, :ok, put_in(state.subscribers[pid], ref)}
  end

  def handle_call({:unsubscribe, pid}, _from, state) do
    {ref, subscribers} = Map.pop(state.subscribers, pid)
    if ref, do: Process.demonitor(ref, [:flush])
    {:reply, :ok, %{state | subscribers: subscribers}}
  end

  @impl true
  def handle_info({:int, {:new_status, pid, status, _info}}, state)
      when is_map_key(state.pending, pid) and status in [:idle, :break] do
    {:noreply, state |> retry_pending_soon(pid, @pending_rechecks) |> listen_while_pending()}
  end

  def handle_info({:recheck_pending, pid, left}, state) when is_map_key(state.pending, pid),
    do: {:noreply, state |> retry_pending_soon(pid, left) |> listen_while_pending()}

  def handle_info({:recheck_pending, _pid, _left}, state), do: {:noreply, state}

  def handle_info(:retry_deferred, state) do
    started = System.monotonic_time(:microsecond)
    state = %{state | retry_timer: nil}
    {result, state} = reload([], state)
    state = listen_while_pending(state)
    {_tag, report} = finish(result, started, state)
    unless report.status in [:noop, :deferred], do: broadcast(report, state)
    {:noreply, state, {:continue, {:after_reload, report}}}
  end

  def handle_info({:int, {:new_status, pid, :exit, _}}, state),
    do: {:noreply, listen_while_pending(%{state | pending: Map.delete(state.pending, pid)})}

  def handle_info({:int, {:interpret, module}}, state), do: {:noreply, remember_interpreted(state, [module])}
  def handle_info({:int, _other}, state), do: {:noreply, state}

  def handle_info({:DOWN, _ref, :process, pid, _}, state),
    do: {:noreply, %{state | subscribers: Map.delete(state.subscribers, pid)}}

  # The interpreter server stopped (or restarted), and its events with it.
  def handle_info({:EXIT, relay, _reason}, %{event_relay: relay} = state),
    do: {:noreply, listen_while_pending(%{state | event_relay: nil})}

  def handle_info({:EXIT, worker, reason}, %{worker: worker} = state) do
    Logger.warning("debug_reload: compile worker exited (#{inspect(reason)}); starting a new one")
    {:ok, worker} = CompileWorker.start_link(root: state.root, env: state.env, owner: self())
    # A sync it was running is lost: let Mix's compile task check everything.
    {:noreply,
     %{state | worker: worker, full_compile: state.full_compile or state.sync_pending, sync_pending: false}}
  end

  def handle_info({:debug_reload_sync_done, worker}, %{worker: worker} = state),
    do: {:noreply, settle_sync(state)}

  # A batch from our watcher: the reload `reload/1` runs, reported to
  # subscribers like any other. A full one, not one scoped to the batch:
  # files the batch did not name may recompile too (a macro's users).
  def handle_info({:debug_reload_watch, ref, batch}, %{watcher: %Watcher{ref: ref}} = state) do
    if Watcher.sources?(batch, state.project, state.watcher.files) do
      {{_tag, report}, state} = run_reload([], state)
      {:noreply, state, {:continue, {:after_reload, report}}}
    else
      {:noreply, state}
    end
  end

  def handle_info(_msg, state), do: {:noreply, state}

  # The watcher would stop on its own once we are gone (it monitors us),
  # a moment later; stopping it here leaves no thread or descriptor behind
  # when a supervisor has stopped us.
  @impl true
  def terminate(_reason, state) do
    Interpreter.stop_forwarding(state.event_relay)
    unwatch(state)
  end

  defp run_reload(opts, state) do
    started = System.monotonic_time(:microsecond)
    state = retry_pending(state)
    {result, state} = reload(opts, state)
    state = listen_while_pending(%{state | call_opts: []})
    {tag, report} = finish(result, started, state)
    unless report.status in [:noop, :dry_run], do: broadcast(report, state)
    {{tag, report}, state}
  end

  # -- watching -----------------------------------------------------------

  defp watch(opts, state) do
    state = unwatch(state)
    # From the digests the loaded code came from: an edit made before the
    # watch started is in the first batch.
    opts =
      Keyword.merge(
        [baseline: state.sources.digests, files: MapSet.to_list(state.sources.resources)],
        Keyword.take(opts, [:debounce])
      )

    with [_ | _] = roots <- Watcher.roots(state.project),
         {:ok, watcher} <- Watcher.start(roots, opts) do
      {:ok, %{state | watcher: watcher}}
    else
      [] -> {{:error, "no source directories to watch: #{state.boot_error || "the project has none"}"}, state}
      {:error, reason} -> {{:error, reason}, state}
    end
  end

  defp unwatch(%{watcher: nil} = state), do: state

  defp unwatch(%{watcher: watcher} = state) do
    Watcher.stop(watcher)
    %{state | watcher: nil}
  end

  # -- snapshot -----------------------------------------------------------

  # The baseline digest of a beam on disk the loaded code did not come
  # from: no beam has it, so whatever a compile writes there is a change.
  @unloaded_beam ""

  # Until the worker reports Mix's own layout, assume Mix's defaults.
  defp conventional_project(root, env) do
    build_path = Path.join([root, "_build", env])
    ebins = Path.wildcard(Path.join([build_path, "lib", "*", "ebin"]))
    apps = for ebin <- ebins, do: %{app: nil, root: root, source_dirs: [], ebin: ebin}
    %Project{root: root, env: env, build_path: build_path, apps: apps}
  end

  defp snapshot(state, project) do
    # The whole project tree (Native skips _build, deps and .git), and the
    # path dependencies' outside it: the same set for the baseline and for
    # every later scan, whatever the layout.
    {sources, _errors} = SourceTree.new(Project.source_roots(project), Project.source_extensions())
    {beams, _errors} = Native.scan_sources(Project.beam_dirs(project), [".beam"])
    # The baseline is what the loaded code came from. Sources edited after
    # the last compile are left out, and so are those of modules loaded
    # from other code than their beam on disk (a manager killed after its
    # compile wrote the beams): the first reload sees them as changed, and
    # loads those beams even if the compile leaves them as they are.
    edited = Staleness.edited_since_compile(project, SourceTree.paths(sources))
    unloaded = Beam.differing_from_loaded(Map.keys(beams))

    %{state | project: project, sources: sources, beams: beams, iserver: nil}
    |> unsettle(edited ++ for(%{source: s} <- unloaded, is_binary(s), do: s), Enum.map(unloaded, & &1.path))
    |> follow_interpreter()
  end

  # Listing every interpreted module costs the interpreter a scan of its
  # table (0.3-0.6 ms at a thousand modules), so it is done when the
  # interpreter server changes and after each reload's reply, not before a
  # reload. We do not subscribe to learn of each module as it is
  # interpreted: a live subscriber slows every call into interpreted code
  # (see listen_while_pending/1). A module interpreted since the last
  # listing is found by the next one; a reload meanwhile takes its old text
  # from the interpreter and its way back from the beams it read before
  # compiling (see DebugReload.Loader).
  defp follow_interpreter(state) do
    case Process.whereis(:dbg_iserver) do
      nil ->
        %{state | iserver: nil}

      iserver when iserver == state.iserver ->
        state

      iserver ->
        remember_interpreted(%{state | iserver: iserver}, Interpreter.interpreted())
    end
  end

  # The interpreter's events matter only while processes run old code:
  # they say when such a process can move on. A subscriber costs every
  # call that enters interpreted code from native code about a fifth of
  # its speed, so we listen only then. A status change made before the
  # subscription sends no event to us: the processes are looked at once
  # the subscription is in place.
  defp listen_while_pending(%{pending: pending, event_relay: nil} = state) when map_size(pending) > 0 do
    case Interpreter.forward_events(self()) do
      nil -> state
      relay -> %{state | event_relay: relay} |> retry_pending() |> listen_while_pending()
    end
  end

  defp listen_while_pending(%{pending: pending, event_relay: relay} = state)
       when map_size(pending) == 0 and relay != nil do
    Interpreter.stop_forwarding(relay)
    %{state | event_relay: nil}
  end

  defp listen_while_pending(state), do: state

  # Keeps what a later reload of an interpreted module needs from before
  # the edit: its beam (for executable lines and rollback) and source text.
  defp remember_interpreted(%{project: nil} = state, _modules), do: state

  defp remember_interpreted(state, modules) do
    ebins = Project.ebin_dirs(state.project)

    # The first listing and the interpreter's events also name modules
    # already known (each module a reload re-interprets sends one): only
    # new ones cost a look at the disk (a file server round trip per ebin).
    modules
    |> Enum.reject(&Map.has_key?(state.interpreted, &1))
    |> Enum.reduce(state, fn module, state ->
      case Enum.find_value(ebins, &existing(Path.join(&1, "#{module}.beam"))) do
        nil -> state
        path -> remember_module(state, module, path)
      end
    end)
  end

  defp existing(path), do: if(File.regular?(path), do: path)

  # The interpreter keeps the text it interpreted the module from: the
  # text its breakpoints are on. A file that no longer holds it was edited
  # since, compiled or not (a line-only change leaves the code's MD5 as it
  # was): its source leaves the baseline and its beam is loaded by the
  # next reload, whatever the compile does.
  defp remember_module(state, module, path) do
    source = Beam.loaded_source(module)
    interpreted_text = Interpreter.interpreted_text(module)

    state
    |> remember_way_back(module, path)
    |> remember_text(source, interpreted_text)
    |> unsettle_if_edited(source, path, interpreted_text)
  end

  # Only a beam with the loaded code's MD5 is a way back to it (see
  # snapshot/2); at worst its lines differ from the interpreted ones.
  defp remember_way_back(state, module, path) do
    with true <- loaded_code?(state, path),
         {:ok, info} <- Beam.read(path, Map.get(state.beams, path, "")) do
      put_in(state.interpreted[module], Loader.interpreted_entry(info))
    else
      _ -> state
    end
  end

  # The text the loaded code came from: the interpreter's copy, or the
  # file while it still matches the baseline.
  defp remember_text(state, nil, _interpreted_text), do: state

  defp remember_text(state, source, interpreted_text) do
    cond do
      Map.has_key?(state.texts, source) -> state
      text = interpreted_text || file_text(state, source) -> put_in(state.texts[source], text)
      true -> state
    end
  end

  defp file_text(state, source) do
    with {:ok, bytes} <- File.read(source),
         true <- SourceTree.digest(state.sources, source) == Native.digest_binary(bytes),
         text when is_binary(text) <- Loader.utf8(bytes) do
      text
    else
      _ -> nil
    end
  end

  defp unsettle_if_edited(state, source, path, interpreted_text)
       when is_binary(source) and is_binary(interpreted_text) do
    if File.read(source) == {:ok, interpreted_text} do
      state
    else
      unsettle(state, [source], [path])
    end
  end

  defp unsettle_if_edited(state, _source, _path, _interpreted_text), do: state

  # `sources` leave the baseline (the next reload sees them as changed) and
  # `beam_paths` are not the loaded code (it loads them, changed or not).
  defp unsettle(state, sources, beam_paths) do
    %{
      state
      | sources: SourceTree.forget(state.sources, sources),
        beams: Enum.reduce(beam_paths, state.beams, &Map.put(&2, &1, @unloaded_beam))
    }
  end

  defp loaded_code?(state, beam_path), do: Map.get(state.beams, beam_path) != @unloaded_beam

  # -- reload -------------------------------------------------------------

  defp reload(_opts, %{boot_error: error} = state) when is_binary(error),
    do: {{:error, "the project could not be loaded: #{state.boot_error}", %Report{}}, state}

  defp reload(opts, state) do
    t0 = now()
    state = settle_sync(state)
    t0_plan = now()
    state = follow_interpreter(state)

    with :ok <- check_restart_files(state),
         {:ok, scope} <- resolve_paths(Keyword.get(opts, :paths), state) do
      {changes, _errors} = SourceTree.changes(state.sources, scope)
      files = Map.take(changes, [:changed, :added, :removed])
      report = %Report{files: files, timings: sync_timing(%{plan_us: now() - t0_plan}, t0_plan - t0)}

      cond do
        empty?(changes) and not Keyword.get(opts, :force, false) and not recompile_wanted?(state) ->
          {{:ok, %{report | status: :noop}}, state}

        Keyword.get(opts, :dry_run, false) ->
          {{:ok, dry_run(report, changes, state)}, state}

        true ->
          # Before anything is compiled: a manager killed between a planned
          # compile and its reply leaves new beams that Mix (and the next
          # manager, see snapshot/2) must still see as stale.
          Staleness.ensure_visible(state.project, changes.changed ++ changes.added)

          compile_and_load(report, scope, changes, Keyword.get(opts, :force, false), %{
            state
            | call_opts: opts
          })
      end
    else
      {:error, message} -> {{:error, message, %Report{}}, state}
    end
  end

  defp recompile_wanted?(%{planner: %Planner{} = planner}), do: Planner.recompile_wanted?(planner)
  defp recompile_wanted?(_state), do: false

  defp check_restart_files(state) do
    now = Guards.restart_files(state.root, dependency_roots(state.project))

    case Guards.restart_reason(state.restart_files, now, state.root) do
      nil -> :ok
      reason -> {:error, reason}
    end
  end

  # The beams the compile may overwrite, read while they are still the
  # loaded code, so that a failed reload can load them back.
  defp old_binaries(state) do
    for {path, _digest} <- state.beams,
        module = Beam.module_from_path(path),
        restorable?(module, path, state),
        {:ok, binary} <- [File.read(path)],
        into: state.rolled_back,
        do: {module, {path, binary}}
  end

  # Loaded native code a reload replaces and might have to put back, from
  # its beam at `path` when that is the loaded code. Interpreted modules
  # keep theirs in `interpreted`; a rolled-back module's running code is
  # already kept.
  defp restorable?(module, path, state) do
    loaded_code?(state, path) and not Map.has_key?(state.interpreted, module) and
      not Map.has_key?(state.rolled_back, module) and :code.is_loaded(module) != false
  end

  defp dependency_roots(nil), do: []
  defp dependency_roots(%Project{path_deps: deps}), do: Enum.map(deps, & &1.root)

  defp empty?(changes), do: changes.changed == [] and changes.added == [] and changes.removed == []

  defp resolve_paths(nil, _state), do: {:ok, nil}

  defp resolve_paths(paths, state) when is_list(paths) do
    Enum.reduce_while(paths, {:ok, []}, fn path, {:ok, acc} ->
      abs = Path.expand(to_string(path), state.root)

      cond do
        # A resource stands for the files built from it too: those are
        # what reloads.
        MapSet.member?(state.sources.resources, abs) ->
          {:cont, {:ok, Enum.reverse(Planner.declaring(state.planner, abs)) ++ [abs | acc]}}

        not Project.inside?(state.project, abs) ->
          {:halt, {:error, "path #{path} is outside the project #{state.root}"}}

        not File.exists?(abs) and not SourceTree.member?(state.sources, abs) ->
          {:halt, {:error, "path #{path} does not exist"}}

        not Project.source?(state.project, abs) ->
          {:halt, {:error, "path #{path} is not a source file the project compiles"}}

        true ->
          {:cont, {:ok, [abs | acc]}}
      end
    end)
    |> case do
      {:ok, abs} -> {:ok, abs |> Enum.reverse() |> Enum.uniq()}
      error -> error
    end
  end

  defp resolve_paths(other, _state),
    do: {:error, "paths must be a list of file paths, got: #{inspect(other)}"}

  defp dry_run(report, changes, state) do
    plan = Planner.plan(state.planner, Map.take(changes, [:changed, :added, :removed]))

    %{
      report
      | status: :dry_run,
        modules: Planner.report_entries(plan),
        plan: plan,
        warnings: report.warnings ++ plan.warnings,
        total_modules: map_size(state.beams)
    }
  end

  # Waiting for the previous reload's sync is reported apart from planning.
  defp sync_timing(timings, waited_us) when waited_us >= 1_000, do: Map.put(timings, :sync_us, waited_us)
  defp sync_timing(timings, _waited_us), do: timings

  # The compiler checks the code it announced (calls to undefined or
  # deprecated functions, `@after_verify` callbacks) while the manager
  # loads it; the load commits only once they are done (see
  # DebugReload.Loader). Only warnings come of them, unless a callback
  # raises, which fails the compile: the load then rolls back. The worker
  # keeps the result, so after_checks/3 asks for it again, whether or not
  # the load got as far as its commit (a deferred one does not).

  defp compile_and_load(report, scope, changes, force?, state) do
    t0 = now()

    case planned_compile(report.files, scope, force?, state) do
      {:planned, {:announced, compiled}} ->
        report = %{put_in(report.timings[:compile_us], now() - t0) | compiler: :planned}
        state = %{state | sync_pending: true, checks_pending: true}
        {result, state} = load_compiled(report, compiled, changes, state)
        after_checks(result, planned_result(state), %{state | checks_pending: false})

      {:planned, {:ok, compiled, diagnostics, _output}} ->
        report = %{
          put_in(report.timings[:compile_us], now() - t0)
          | diagnostics: diagnostics,
            compiler: :planned
        }

        load_compiled(report, compiled, changes, %{state | sync_pending: true})

      {:planned, result} ->
        report = %{put_in(report.timings[:compile_us], now() - t0) | compiler: :planned}
        compile_failed(report, result, after_failed_planned(result, state))

      {:mix, reason} ->
        Logger.debug("debug_reload: running Mix's compile task: #{reason}")
        state = %{state | old_binaries: old_binaries(state), full_compile: false, stray_beams: %{}}
        # Mix's compile task leaves path dependencies alone (a reload must not
        # fetch or check dependencies): those with a file changed, added or
        # deleted compile first.
        deps = Project.path_deps_of(state.project, Enum.concat(Map.values(report.files)))
        result = CompileWorker.compile(state.worker, state.compile_timeout, deps)
        report = %{put_in(report.timings[:compile_us], now() - t0) | compiler: :mix}

        case result do
          {status, diagnostics, _output} when status in [:ok, :noop] ->
            load_changes(%{report | diagnostics: diagnostics}, scope, changes, force?, state)

          error ->
            compile_failed(report, error, state)
        end
    end
  end

  defp checks_passed(state) do
    case planned_result(state) do
      {:ok, _compiled, _diagnostics, _output} -> :ok
      failure -> {:error, planned_failure(failure)}
    end
  end

  # A worker that died meanwhile is started again (see handle_info/2).
  defp planned_result(state) do
    CompileWorker.planned_result(state.worker, state.compile_timeout)
  catch
    :exit, reason -> {:error, "compile worker failed: #{Exception.format_exit(reason)}"}
  end

  defp planned_failure({:error, diagnostics, output}) when is_list(diagnostics),
    do: compile_error_message(diagnostics, output)

  defp planned_failure({:error, message}), do: message
  defp planned_failure({:fallback, reason}), do: "the compile gave way to Mix's compile task: #{reason}"

  defp after_checks(result, {:ok, _compiled, diagnostics, _output}, state),
    do: {with_report(result, &%{&1 | diagnostics: diagnostics}), state}

  defp after_checks(result, failure, state) do
    diagnostics =
      with {:error, diagnostics, _} when is_list(diagnostics) <- failure, do: diagnostics, else: (_ -> [])

    state = after_failed_planned(failure, %{state | sync_pending: false})
    {with_report(result, &%{&1 | diagnostics: diagnostics}), state}
  end

  defp with_report(result, fun),
    do: put_elem(result, tuple_size(result) - 1, fun.(elem(result, tuple_size(result) - 1)))

  defp compile_failed(report, {:error, diagnostics, output}, state) when is_list(diagnostics) do
    report = %{report | diagnostics: diagnostics}
    {{:error, compile_error_message(diagnostics, output), report}, state}
  end

  defp compile_failed(report, {:error, message}, state), do: {{:error, message, report}, state}

  # The planned compile needs the whole project in view (no `paths:`
  # scope, no forced reload) and a plan as exact as Mix's.
  defp planned_compile(changes, nil, false, %{compile: :planned, full_compile: false} = state) do
    with :ok <- only_edits(changes),
         plan = Planner.plan(state.planner, changes, locate: false),
         {:ok, spec} <- Planner.compile_spec(state.planner, plan) do
      case CompileWorker.compile_planned(state.worker, spec, state.compile_timeout) do
        {:fallback, reason} -> {:mix, reason}
        result -> {:planned, result}
      end
    else
      {:error, reason} -> {:mix, reason}
    end
  end

  defp planned_compile(_changes, _scope, _force?, %{full_compile: true}),
    do: {:mix, "the beams on disk may differ from the loaded ones"}

  defp planned_compile(_changes, _scope, _force?, _state), do: {:mix, "a scoped, forced or Mix-only reload"}

  # Compile errors leave the ebin as it was; a worker that failed in the
  # middle may not have, so the next reload runs Mix's task and compares
  # every beam.
  defp after_failed_planned({:error, diagnostics, _output}, state) when is_list(diagnostics), do: state
  defp after_failed_planned(_failure, state), do: %{state | full_compile: true}

  defp only_edits(%{added: [], removed: []}), do: :ok
  defp only_edits(_changes), do: {:error, "files were added or removed"}

  # Mix's compile task has caught up with a planned compile (or the reload
  # about to start waits for it): the graph follows Mix's new manifests.
  # When a file was saved again while it ran, Mix compiled the newer text:
  # those beams (strays) are loaded by the next reload, which plans that
  # file anyway. A failed sync, or modules Mix removed, make the next
  # reload run Mix's compile task and compare every beam.
  defp settle_sync(%{sync_pending: false} = state), do: state

  defp settle_sync(state) do
    result = CompileWorker.await_sync(state.worker, state.compile_timeout)
    {beams, _errors} = Native.scan_sources(Project.beam_dirs(state.project), [".beam"])
    diff = Native.diff_snapshots(state.beams, beams, nil)
    in_step? = synced?(result) and diff.removed == []

    unless in_step?,
      do: Logger.debug("debug_reload: Mix's compile after a planned compile: #{inspect(result, limit: 5)}")

    %{
      state
      | sync_pending: false,
        full_compile: not in_step?,
        stray_beams: Map.take(beams, diff.changed ++ diff.added)
    }
    |> with_planner(Planner.refresh(state.planner))
  end

  defp synced?({status, _diagnostics, _output}), do: status in [:ok, :noop]
  defp synced?(_result), do: false

  # The beams a planned compile returned: those whose content changed are
  # loaded; the ones they replaced are the way back.
  defp load_compiled(report, compiled, changes, state) do
    t0 = now()
    digests = Map.new(compiled, &{&1.path, Native.digest_binary(&1.binary)})
    fresh = Enum.reject(compiled, &(Map.get(state.beams, &1.path) == digests[&1.path]))
    {added, changed} = Enum.split_with(fresh, &(not Map.has_key?(state.beams, &1.path)))
    beam_changes = %{changed: Enum.map(changed, & &1.path), added: Enum.map(added, & &1.path), removed: []}

    plan =
      Planner.resolve_compiled(state.planner, report.files, Map.new(compiled, &{&1.module, &1.export}), %{
        changed: Enum.map(fresh, & &1.module)
      })

    report = %{report | plan: plan, warnings: report.warnings ++ plan.warnings}

    {loads, skipped, errors} =
      collect_beams(fresh, &Beam.from_binary(&1.path, digests[&1.path], &1.binary), & &1.path)

    strays = Map.drop(state.stray_beams, Map.keys(digests))
    {stray_loads, stray_skipped, stray_errors} = read_beams(Map.keys(strays), strays)
    beam_changes = %{beam_changes | changed: beam_changes.changed ++ Map.keys(strays)}
    read = {loads ++ stray_loads, skipped ++ stray_skipped, errors ++ stray_errors}
    beams = state.beams |> Map.merge(strays) |> Map.merge(digests)

    state = %{
      state
      | old_binaries: compiled_old_binaries(compiled, state),
        stray_beams: %{}
    }

    load_read(report, {nil, changes, t0}, read, {beams, beam_changes}, state)
  end

  defp compiled_old_binaries(compiled, state) do
    for %{module: module, path: path, old_binary: binary} <- compiled,
        is_binary(binary),
        restorable?(module, path, state),
        into: state.rolled_back,
        do: {module, {path, binary}}
  end

  # The compile rewrote Mix's manifests: the plan, resolved with the new
  # exports and the beams that changed, and the graph updated to match.
  defp resolve_plan(report, beam_changes, state) do
    modules = fn paths ->
      for path <- paths,
          Path.dirname(path) not in state.project.consolidation,
          do: Beam.module_from_path(path)
    end

    beams = %{
      changed: modules.(beam_changes.changed),
      added: modules.(beam_changes.added),
      removed: modules.(beam_changes.removed)
    }

    {plan, planner} = Planner.resolve(state.planner, report.files, beams)
    {%{report | plan: plan, warnings: report.warnings ++ plan.warnings}, with_planner(state, planner)}
  end

  defp compile_error_message(diagnostics, output) do
    case Enum.find(diagnostics, &(&1.severity == :error)) do
      %{file: nil, message: message} ->
        "compile error: #{first_line(message)}"

      %{file: file, line: line, message: message} ->
        "compile error in #{Path.relative_to_cwd(file)}:#{line || "?"}: #{first_line(message)}"

      nil ->
        "compilation failed: " <> first_line(output)
    end
  end

  defp first_line(text), do: text |> String.trim() |> String.split("\n", parts: 2) |> hd()

  defp load_changes(report, scope, changes, force?, state) do
    t0 = now()
    {beams, _} = Native.scan_sources(Project.beam_dirs(state.project), [".beam"])
    beam_changes = Native.diff_snapshots(state.beams, beams, nil)
    {report, state} = resolve_plan(report, beam_changes, state)

    read =
      (beam_changes.changed ++ beam_changes.added ++ forced_beams(force?, scope, changes, state))
      |> Enum.uniq()
      |> read_beams(beams)

    load_read(report, {scope, changes, t0}, read, {beams, beam_changes}, state)
  end

  defp load_read(report, {scope, changes, t0}, {loads, skipped, errors}, {beams, beam_changes}, state) do
    sources_in_scope = if scope, do: MapSet.new(scope), else: nil

    {loads, not_run} =
      loads
      |> Enum.filter(&in_scope?(&1.source, sources_in_scope))
      |> Protocols.select(state.project)

    case redefinitions(loads, state) do
      [] ->
        load_checked(
          report,
          {sources_in_scope, changes, t0},
          {loads, skipped, errors},
          {beams, beam_changes, not_run},
          state
        )

      conflicts ->
        {{:error, redefinition_message(conflicts), report}, state}
    end
  end

  # Mix (1.14) lets a second file redefine a module with only a warning;
  # loading that would silently swap one file's code for another's.
  defp redefinitions(loads, state) do
    for info <- loads,
        old_source = previous_source(info.module, state),
        is_binary(old_source) and is_binary(info.source),
        old_source != info.source and File.exists?(old_source),
        do: {info.module, old_source, info.source}
  end

  defp previous_source(module, state) do
    case state.interpreted do
      %{^module => %{source: source}} -> source
      _ -> Beam.loaded_source(module)
    end
  end

  defp redefinition_message(conflicts) do
    conflicts
    |> Enum.map_join("; ", fn {module, old, new} ->
      "#{inspect(module)} is defined in both #{Path.relative_to(old, File.cwd!())} and #{Path.relative_to(new, File.cwd!())}"
    end)
    |> Kernel.<>("; remove one definition and reload")
  end

  defp load_checked(report, {sources_in_scope, changes, t0}, {loads, skipped, errors}, beams, state) do
    {beams, beam_changes, not_run} = beams
    consolidation = Project.consolidation_dirs(state.project)

    removed =
      beam_changes.removed
      |> Enum.reject(&(Path.dirname(&1) in consolidation))
      |> removed_modules(sources_in_scope, state)

    batch = %{
      loads: loads,
      removed: removed,
      renames: renames(loads, removed, state),
      old_binaries: state.old_binaries,
      commit_check: if(state.checks_pending, do: fn -> checks_passed(state) end)
    }

    case Loader.apply(batch, state, loader_opts(state)) do
      {:ok, outcome, state} ->
        timings =
          report.timings
          |> Map.merge(%{load_us: now() - t0, breakpoints_us: outcome.breakpoints_us})
          |> then(&if(state.checks_pending, do: Map.put(&1, :checks_us, outcome.commit_check_us), else: &1))

        report = %{report | timings: timings}
        loaded_paths = MapSet.new(Enum.map(loads ++ not_run ++ removed, & &1.path))

        state = %{
          state
          | sources: SourceTree.accept(state.sources, changes),
            beams: update_beams(state.beams, beams, loaded_paths, skipped, outcome.entries),
            old_binaries: %{},
            rolled_back: %{},
            old_code_in_use: outcome.old_code_in_use
        }

        state = with_sources(state, SourceTree.track_also(state.sources, resources_of(loads, state)))

        report = %{
          report
          | status: :ok,
            modules: outcome.entries,
            breakpoints: Breakpoints.to_report(outcome.planned),
            processes: outcome.processes,
            warnings: report.warnings ++ outcome.warnings ++ errors ++ Protocols.warnings(loads),
            total_modules: map_size(state.beams)
        }

        {{:ok, report}, state}

      {:error, {:deferred, message}, outcome, state} ->
        modules = Enum.map(outcome.entries, &%{&1 | action: :deferred, reason: message})
        report = %{report | modules: modules, processes: outcome.processes, warnings: outcome.warnings}
        {{:deferred, message, report}, schedule_retry(state)}

      {:error, message, outcome, state} ->
        report = %{
          report
          | modules: outcome.entries,
            processes: outcome.processes,
            warnings: outcome.warnings
        }

        state = %{state | rolled_back: Map.merge(state.rolled_back, state.old_binaries), old_binaries: %{}}
        {{:error, "reload rolled back, nothing changed: #{message}", report}, state}
    end
  end

  @call_options [:on_busy, :busy_timeout, :migrate, :migrate_extra, :nodes, :node_timeout, :inject_fault]

  # Per-call options override the manager's.
  defp loader_opts(state) do
    [
      on_busy: state.on_busy,
      busy_timeout: state.busy_timeout,
      migrate: state.migrate,
      migrate_extra: state.migrate_extra,
      nodes: state.nodes,
      node_timeout: state.node_timeout
    ]
    |> Keyword.merge(Keyword.take(state.call_opts, @call_options))
  end

  defp schedule_retry(state) do
    unless state.retry_timer, do: Process.send_after(self(), :retry_deferred, @deferred_retry_ms)

    %{
      state
      | retry_timer: true,
        rolled_back: Map.merge(state.rolled_back, state.old_binaries),
        old_binaries: %{}
    }
  end

  defp forced_beams(false, _scope, _changes, _state), do: []

  defp forced_beams(true, scope, changes, state) do
    files = MapSet.new(scope || SourceTree.paths(state.sources) ++ changes.added)

    for {_module, %{source: source, path: path}} <- state.interpreted,
        MapSet.member?(files, source),
        do: path
  end

  defp read_beams(paths, digests),
    do: collect_beams(paths, &Beam.read(&1, Map.get(digests, &1, "")), & &1)

  # {infos, skipped paths, error messages}
  defp collect_beams(items, read, path_of) do
    Enum.reduce(items, {[], [], []}, fn item, {ok, skipped, errors} ->
      case read.(item) do
        {:ok, info} -> {[info | ok], skipped, errors}
        {:error, message} -> {ok, [path_of.(item) | skipped], [message | errors]}
      end
    end)
    |> then(fn {ok, skipped, errors} -> {Enum.reverse(ok), skipped, Enum.reverse(errors)} end)
  end

  defp in_scope?(_source, nil), do: true
  defp in_scope?(source, scope), do: MapSet.member?(scope, source)

  defp removed_modules(paths, scope, state) do
    paths
    |> Enum.map(fn path ->
      module = Beam.module_from_path(path)
      %{module: module, path: path, source: get_in(state.interpreted, [module, :source])}
    end)
    |> Enum.filter(&(&1.source == nil or in_scope?(&1.source, scope)))
  end

  # A new module from the source of a removed interpreted one: the module
  # was renamed, and it stays interpreted with its breakpoints.
  defp renames(loads, removed, state) do
    for %{module: old, source: source} <- removed,
        is_binary(source),
        info <- loads,
        info.source == source and new_module?(info, state),
        into: %{},
        do: {info.module, old}
  end

  defp new_module?(info, state), do: not Map.has_key?(state.beams, info.path)

  # The interpreter announces :idle (or :break) just before the process
  # gets there: the meta casts its status, then returns. A process found
  # still on its way is looked at again shortly, a few times; no further
  # event would come for it.
  defp retry_pending_soon(state, pid, left) do
    state = retry_pending(state, [pid])

    if left > 1 and Map.has_key?(state.pending, pid),
      do: Process.send_after(self(), {:recheck_pending, pid, left - 1}, @pending_recheck_ms)

    state
  end

  defp retry_pending(state, pids \\ nil) do
    pending =
      Enum.reduce(pids || Map.keys(state.pending), state.pending, fn pid, pending ->
        case Interpreter.invalidate(pid, Map.get(pending, pid, [])) do
          [] -> Map.delete(pending, pid)
          left -> Map.put(pending, pid, left)
        end
      end)

    %{state | pending: pending}
  end

  # Beams we did not load keep their old digest so a later reload retries them.
  defp update_beams(previous, current, loaded_paths, skipped, entries) do
    deferred = for %{action: :deferred, module: m} <- entries, into: MapSet.new(), do: m

    Enum.reduce(current, Map.drop(previous, MapSet.to_list(loaded_paths)), fn {path, digest}, acc ->
      if (MapSet.member?(loaded_paths, path) or not Map.has_key?(previous, path)) and path not in skipped and
           not MapSet.member?(deferred, Beam.module_from_path(path)),
         do: Map.put(acc, path, digest),
         else: acc
    end)
  end

  # -- report -------------------------------------------------------------

  defp finish({:ok, report}, started, _state), do: {:ok, with_total(report, started)}

  defp finish({:deferred, message, report}, started, state) do
    report = %{report | status: :deferred, error: message, total_modules: map_size(state.beams)}
    {:error, with_total(report, started)}
  end

  defp finish({:error, message, report}, started, state) do
    report = %{report | status: :error, error: message, total_modules: map_size(state.beams)}
    {:error, with_total(report, started)}
  end

  defp with_total(report, started),
    do: put_in(report.timings[:total_us], System.monotonic_time(:microsecond) - started)

  defp broadcast(report, state),
    do: Enum.each(Map.keys(state.subscribers), &send(&1, {:debug_reload, report}))

  defp now, do: System.monotonic_time(:microsecond)
end
