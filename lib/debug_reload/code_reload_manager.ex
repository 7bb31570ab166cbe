defmodule DebugReload.CodeReloadManager do
  @moduledoc """
  Serializes reloads of a debugged Mix project: one GenServer per project.

  A reload flows one way:

      sources changed (Rust digests) → compile (worker node) → changed beams
        → load natively / re-interpret → move breakpoints → report

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
    * `:compile_timeout` - ms (default 300_000)
    * `:auto` - watch the sources and reload on every save (default
      `false`); see `DebugReload.watch/1`
    * `:debounce` - the watcher's debounce window in ms (default 100)
  """
  use GenServer
  require Logger

  alias DebugReload.{
    Beam,
    Breakpoints,
    CompileWorker,
    ExecutableLines,
    Interpreter,
    Native,
    Patterns,
    Project,
    Report,
    Staleness,
    Watcher
  }

  defstruct [
    :root,
    :env,
    :patterns,
    :worker,
    :project,
    :boot_error,
    busy_timeout: 2_000,
    compile_timeout: 300_000,
    # path => digest of the sources the loaded code was compiled from
    sources: %{},
    # source path => text, for sources of interpreted modules
    texts: %{},
    # beam path => digest of the beams that are loaded (or on disk, unloaded)
    beams: %{},
    # module => %{source, binary, executable} for interpreted modules
    interpreted: %{},
    # pid => [module] still running a call on old code
    pending: %{},
    # module => breakpoints, for interpreted modules whose file went away:
    # if it comes back (a branch switch, an undo) it is interpreted again
    # and gets its breakpoints back
    tombstones: %{},
    subscribers: %{},
    # the running DebugReload.Watcher, and its options to start it after boot
    watcher: nil,
    auto: nil
  ]

  @type t :: %__MODULE__{}

  def start_link(opts) do
    GenServer.start_link(__MODULE__, opts, name: Keyword.get(opts, :name, DebugReload))
  end

  @impl true
  def init(opts) do
    root = opts |> Keyword.get(:project, File.cwd!()) |> Path.expand()

    if File.regular?(Path.join(root, "mix.exs")) do
      Process.flag(:trap_exit, true)
      env = to_string(Keyword.get_lazy(opts, :mix_env, &default_env/0))
      {:ok, worker} = CompileWorker.start_link(root: root, env: env)

      state = %__MODULE__{
        root: root,
        env: env,
        patterns: Patterns.compile(Keyword.get(opts, :interpret, [])),
        worker: worker,
        busy_timeout: Keyword.get(opts, :busy_timeout, 2_000),
        compile_timeout: Keyword.get(opts, :compile_timeout, 300_000),
        auto: if(Keyword.get(opts, :auto, false), do: Keyword.take(opts, [:debounce]))
      }

      # The baseline must be taken now, before the caller can edit a file;
      # only the worker's boot (for Mix's exact layout) may wait.
      {:ok, snapshot(state, conventional_project(root, env)), {:continue, :boot}}
    else
      {:stop, {:not_a_mix_project, root}}
    end
  end

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
  def handle_continue(:boot, state), do: {:noreply, state |> boot() |> auto_watch()}

  defp boot(state) do
    case CompileWorker.project(state.worker) do
      {:ok, %Project{} = project} ->
        if Project.ebin_dirs(project) == Project.ebin_dirs(state.project) do
          %{state | project: project}
        else
          # A custom build path: take the beam baseline where Mix puts beams.
          snapshot(state, project)
        end

      {:error, reason} ->
        %{state | boot_error: reason}
    end
  end

  defp auto_watch(%{auto: nil} = state), do: state

  defp auto_watch(state) do
    case watch(state.auto, state) do
      {:ok, state} ->
        state

      {{:error, reason}, state} ->
        Logger.error("debug_reload: automatic reload is off: #{reason}")
        state
    end
  end

  @impl true
  def handle_call({:reload, opts}, _from, state) do
    {reply, state} = run_reload(opts, state)
    {:reply, reply, state}
  end

  def handle_call({:watch, opts}, _from, state) do
    {reply, state} = watch(opts, state)
    {:reply, reply, state}
  end

  def handle_call(:unwatch, _from, state), do: {:reply, :ok, unwatch(state)}

  def handle_call(:pending, _from, state), do: {:reply, state.pending, state}

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
    {:noreply, retry_pending(state, [pid])}
  end

  def handle_info({:int, {:new_status, pid, :exit, _}}, state),
    do: {:noreply, %{state | pending: Map.delete(state.pending, pid)}}

  def handle_info({:int, {:interpret, module}}, state), do: {:noreply, remember_interpreted(state, [module])}
  def handle_info({:int, _other}, state), do: {:noreply, state}

  def handle_info({:DOWN, _ref, :process, pid, _}, state),
    do: {:noreply, %{state | subscribers: Map.delete(state.subscribers, pid)}}

  def handle_info({:EXIT, worker, reason}, %{worker: worker} = state) do
    Logger.warning("debug_reload: compile worker exited (#{inspect(reason)}); starting a new one")
    {:ok, worker} = CompileWorker.start_link(root: state.root, env: state.env)
    {:noreply, %{state | worker: worker}}
  end

  # A batch from our watcher: the reload `reload/1` runs, reported to
  # subscribers like any other. A full one, not one scoped to the batch:
  # files the batch did not name may recompile too (a macro's users).
  def handle_info({:debug_reload_watch, ref, batch}, %{watcher: %Watcher{ref: ref}} = state) do
    %{project: sources, dependencies: deps} = Watcher.classify(batch, state.project)
    state = if sources == [], do: state, else: run_reload([], state) |> elem(1)
    # Named explicitly so the reload can tell why it cannot take them.
    state = if deps == [], do: state, else: run_reload([paths: deps], state) |> elem(1)
    {:noreply, state}
  end

  def handle_info(_msg, state), do: {:noreply, state}

  defp run_reload(opts, state) do
    started = System.monotonic_time(:microsecond)
    state = retry_pending(state)
    {result, state} = reload(opts, state)
    {tag, report} = finish(result, started, state)
    unless report.status in [:noop, :dry_run], do: broadcast(report, state)
    {{tag, report}, state}
  end

  # -- watching -----------------------------------------------------------

  defp watch(opts, state) do
    state = unwatch(state)
    # From the digests the loaded code came from: an edit made before the
    # watch started is in the first batch. Path dependencies are not in
    # the manager's snapshot; they start from their current state.
    deps = Enum.flat_map(state.project.path_deps, & &1.source_dirs)
    {dep_sources, _errors} = Native.scan_sources(deps, Watcher.extensions())
    baseline = Map.merge(dep_sources, state.sources)
    opts = Keyword.merge([baseline: baseline], Keyword.take(opts, [:debounce]))

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

  # Until the worker reports Mix's own layout, assume Mix's defaults.
  defp conventional_project(root, env) do
    build_path = Path.join([root, "_build", env])
    ebins = Path.wildcard(Path.join([build_path, "lib", "*", "ebin"]))
    apps = for ebin <- ebins, do: %{app: nil, root: root, source_dirs: [], ebin: ebin}
    %Project{root: root, env: env, build_path: build_path, apps: apps}
  end

  defp snapshot(state, project) do
    {sources, _errors} = scan_sources(project)
    {beams, _errors} = Native.scan_sources(Project.ebin_dirs(project), [".beam"])
    # Sources edited after the last compile are left out, so the first
    # reload sees them as changed instead of taking them as the baseline.
    sources = Map.drop(sources, Staleness.edited_since_compile(project, Map.keys(sources)))
    state = %{state | project: project, sources: sources, beams: beams}
    subscribe_to_interpreter()
    remember_interpreted(state, Interpreter.interpreted())
  end

  # The whole project tree (Native skips _build, deps and .git): the same
  # set for the baseline and for every later scan, whatever the layout.
  defp scan_sources(project), do: Native.scan_sources([project.root], Project.source_extensions())

  defp subscribe_to_interpreter do
    if Process.whereis(:dbg_iserver), do: :int.subscribe()
  end

  # Keeps what a later reload of an interpreted module needs from before
  # the edit: its beam (for executable lines and rollback) and source text.
  defp remember_interpreted(%{project: nil} = state, _modules), do: state

  defp remember_interpreted(state, modules) do
    ebins = Project.ebin_dirs(state.project)

    Enum.reduce(modules, state, fn module, state ->
      path = Enum.find_value(ebins, &existing(Path.join(&1, "#{module}.beam")))

      with false <- Map.has_key?(state.interpreted, module),
           path when is_binary(path) <- path,
           {:ok, info} <- Beam.read(path, Map.get(state.beams, path, "")) do
        state
        |> put_in([Access.key(:interpreted), module], interpreted_entry(info))
        |> remember_text(info.source)
      else
        _ -> state
      end
    end)
  end

  defp existing(path), do: if(File.regular?(path), do: path)

  defp interpreted_entry(info) do
    statements =
      case ExecutableLines.statements(info.binary) do
        {:ok, statements} -> statements
        {:error, _} -> []
      end

    %{source: info.source, binary: info.binary, path: info.path, statements: statements}
  end

  # Only a text that matches the snapshot digest is the old text.
  defp remember_text(state, nil), do: state

  defp remember_text(state, source) do
    with false <- Map.has_key?(state.texts, source),
         {:ok, bytes} <- File.read(source),
         true <- Map.get(state.sources, source) == Native.digest_binary(bytes),
         text when is_binary(text) <- utf8(bytes) do
      put_in(state.texts[source], text)
    else
      _ -> state
    end
  end

  # -- reload -------------------------------------------------------------

  defp reload(_opts, %{boot_error: error} = state) when is_binary(error),
    do: {{:error, "the project could not be loaded: #{state.boot_error}", %Report{}}, state}

  defp reload(opts, state) do
    t0 = now()
    state = remember_interpreted(state, Interpreter.interpreted())

    with {:ok, scope} <- resolve_paths(Keyword.get(opts, :paths), state) do
      {current, _errors} = scan(scope, state)
      changes = Native.diff_snapshots(state.sources, current, scope)
      files = Map.take(changes, [:changed, :added, :removed])
      report = %Report{files: files, timings: %{plan_us: now() - t0}}

      cond do
        empty?(changes) and not Keyword.get(opts, :force, false) ->
          {{:ok, %{report | status: :noop}}, state}

        Keyword.get(opts, :dry_run, false) ->
          {{:ok, dry_run(report, changes, state)}, state}

        true ->
          Staleness.ensure_visible(state.project, changes.changed ++ changes.added)
          compile_and_load(report, scope, current, Keyword.get(opts, :force, false), state)
      end
    else
      {:error, message} -> {{:error, message, %Report{}}, state}
    end
  end

  defp empty?(changes), do: changes.changed == [] and changes.added == [] and changes.removed == []

  defp scan(nil, state), do: scan_sources(state.project)

  defp scan(scope, _state), do: Native.digest_files(scope)

  defp resolve_paths(nil, _state), do: {:ok, nil}

  defp resolve_paths(paths, state) when is_list(paths) do
    Enum.reduce_while(paths, {:ok, []}, fn path, {:ok, acc} ->
      abs = Path.expand(to_string(path), state.root)

      cond do
        not Project.inside?(state.project, abs) ->
          {:halt, {:error, "path #{path} is outside the project #{state.root}"}}

        not File.exists?(abs) and not Map.has_key?(state.sources, abs) ->
          {:halt, {:error, "path #{path} does not exist"}}

        not Project.source?(state.project, abs) ->
          {:halt, {:error, "path #{path} is not a source file the project compiles"}}

        true ->
          {:cont, {:ok, [abs | acc]}}
      end
    end)
    |> case do
      {:ok, abs} -> {:ok, Enum.reverse(abs)}
      error -> error
    end
  end

  defp resolve_paths(other, _state),
    do: {:error, "paths must be a list of file paths, got: #{inspect(other)}"}

  defp dry_run(report, changes, state) do
    touched = changes.changed ++ changes.removed

    modules =
      for {module, %{source: source}} <- state.interpreted, source in touched do
        %{module: module, source: source, action: :planned, reason: "source changed"}
      end ++
        for source <- changes.added do
          %{module: nil, source: source, action: :planned, reason: "new file"}
        end

    %{report | status: :dry_run, modules: modules, total_modules: map_size(state.beams)}
  end

  defp compile_and_load(report, scope, current, force?, state) do
    t0 = now()
    result = CompileWorker.compile(state.worker, state.compile_timeout)
    report = put_in(report.timings[:compile_us], now() - t0)

    case result do
      {:error, diagnostics, output} when is_list(diagnostics) ->
        report = %{report | diagnostics: diagnostics}
        {{:error, compile_error_message(diagnostics, output), report}, state}

      {:error, message} ->
        {{:error, message, report}, state}

      {_ok, diagnostics, _output} ->
        load_changes(%{report | diagnostics: diagnostics}, scope, current, force?, state)
    end
  end

  defp compile_error_message(diagnostics, output) do
    case Enum.find(diagnostics, &(&1.severity == :error)) do
      %{file: file, line: line, message: message} ->
        "compile error in #{Path.relative_to_cwd(file || "?")}:#{line || "?"}: #{first_line(message)}"

      nil ->
        "compilation failed: " <> first_line(output)
    end
  end

  defp first_line(text), do: text |> String.trim() |> String.split("\n", parts: 2) |> hd()

  defp load_changes(report, scope, current, force?, state) do
    t0 = now()
    {beams, _} = Native.scan_sources(Project.ebin_dirs(state.project), [".beam"])
    beam_changes = Native.diff_snapshots(state.beams, beams, nil)
    sources_in_scope = if scope, do: MapSet.new(scope), else: nil

    {loads, skipped, errors} =
      (beam_changes.changed ++ beam_changes.added ++ forced_beams(force?, scope, current, state))
      |> Enum.uniq()
      |> read_beams(beams)

    loads = Enum.filter(loads, &in_scope?(&1.source, sources_in_scope))

    case redefinitions(loads, state) do
      [] ->
        load_checked(
          report,
          {scope, sources_in_scope, current, t0},
          {loads, skipped, errors},
          {beams, beam_changes},
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

  defp load_checked(report, {scope, sources_in_scope, current, t0}, {loads, skipped, errors}, beams, state) do
    {beams, beam_changes} = beams
    removed = removed_modules(beam_changes.removed, sources_in_scope, state)
    renames = renames(loads, removed, state)

    {entries, procs, warnings, planned, state} = apply_loads(loads, renames, state)
    {removed_entries, removed_warnings, state} = unload_removed(removed, state)
    report = put_in(report.timings[:load_us], now() - t0)

    t1 = now()
    Breakpoints.apply_plan(planned)
    report = put_in(report.timings[:breakpoints_us], now() - t1)

    loaded_paths = MapSet.new(Enum.map(loads, & &1.path) ++ Enum.map(removed, & &1.path))

    state = %{
      state
      | sources: update_sources(state.sources, current, scope),
        beams: update_beams(state.beams, beams, loaded_paths, skipped, entries)
    }

    report = %{
      report
      | status: :ok,
        modules: entries ++ removed_entries,
        breakpoints: Breakpoints.to_report(planned),
        processes: procs,
        warnings: report.warnings ++ warnings ++ removed_warnings ++ errors,
        total_modules: map_size(state.beams)
    }

    {{:ok, report}, state}
  end

  defp forced_beams(false, _scope, _current, _state), do: []

  defp forced_beams(true, scope, current, state) do
    files = MapSet.new(scope || Map.keys(current))

    for {_module, %{source: source, path: path}} <- state.interpreted,
        MapSet.member?(files, source),
        do: path
  end

  defp read_beams(paths, digests) do
    Enum.reduce(paths, {[], [], []}, fn path, {ok, skipped, errors} ->
      case Beam.read(path, Map.get(digests, path, "")) do
        {:ok, info} -> {[info | ok], skipped, errors}
        {:error, message} -> {ok, [path | skipped], [message | errors]}
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

  # Native modules load together and atomically; interpreted ones one by one.
  defp apply_loads(loads, renames, state) do
    interpreted = MapSet.new(Interpreter.interpreted())

    {to_interpret, rest} =
      Enum.split_with(loads, fn info ->
        MapSet.member?(interpreted, info.module) or Map.has_key?(renames, info.module) or
          Map.has_key?(state.tombstones, info.module) or
          (new_module?(info, state) and Patterns.match?(state.patterns, info.module))
      end)

    {native_entries, native_warnings} = load_native(rest, state)

    Enum.reduce(to_interpret, {native_entries, [], native_warnings, [], state}, fn info, acc ->
      reinterpret(info, MapSet.member?(interpreted, info.module), Map.get(renames, info.module), acc)
    end)
  end

  defp new_module?(info, state), do: not Map.has_key?(state.beams, info.path)

  defp load_native([], _state), do: {[], []}

  defp load_native(loads, state) do
    {loaded, unloaded} = Enum.split_with(loads, &:code.is_loaded(&1.module))

    on_disk =
      for info <- unloaded, not new_module?(info, state) do
        entry(info, :on_disk, "not loaded yet; the next call loads the new beam")
      end

    new = for info <- unloaded, new_module?(info, state), do: info
    {purgeable, busy} = Enum.split_with(loaded, &:code.soft_purge(&1.module))
    to_load = purgeable ++ new

    busy_entries =
      for info <- busy do
        entry(info, :deferred, "old code still running in #{inspect(holders(info.module))}")
      end

    {load_entries, warnings} =
      case to_load do
        [] ->
          {[], []}

        _ ->
          modules = for info <- to_load, do: {info.module, String.to_charlist(info.path), info.binary}

          with {:ok, prepared} <- :code.prepare_loading(modules),
               :ok <- :code.finish_loading(prepared) do
            {Enum.map(to_load, fn info ->
               if new_module?(info, state),
                 do: entry(info, :loaded, "new module"),
                 else: entry(info, :reloaded, "beam changed")
             end), []}
          else
            {:error, failures} ->
              {Enum.map(to_load, &entry(&1, :deferred, "native load failed: #{inspect(failures)}")),
               ["native load failed, nothing loaded: #{inspect(failures)}"]}
          end
      end

    {load_entries ++ busy_entries ++ on_disk,
     warnings ++ Enum.map(busy_entries, &"#{inspect(&1.module)} deferred: #{&1.reason}")}
  end

  defp holders(module), do: for(pid <- Process.list(), :erlang.check_process_code(pid, module), do: pid)

  defp reinterpret(info, was_interpreted?, renamed_from, {entries, procs, warnings, planned, state}) do
    previous = renamed_from || info.module
    old = Map.get(state.interpreted, previous)
    {tombstone, state} = pop_in(state.tombstones[info.module])
    breaks = tombstone || Interpreter.breakpoints(previous)
    origin = if(tombstone, do: {:restored, info.module}, else: renamed_from && {:renamed, renamed_from})
    new_entry = interpreted_entry(info)

    result =
      cond do
        not was_interpreted? ->
          with :ok <- Interpreter.load(info.module, info.source, info.path, info.binary),
               do: {:ok, %{mode: :new, pending: []}}

        not :code.soft_purge(info.module) ->
          {:error, "old code still running in #{inspect(holders(info.module))}"}

        true ->
          Interpreter.swap(info.module, info.source, info.path, info.binary,
            busy_timeout: state.busy_timeout,
            rollback: old && {old.path, old.binary}
          )
      end

    case result do
      {:ok, swap} ->
        new_text = read_text(info.source)

        edit = %{
          old_text: old && Map.get(state.texts, old.source),
          new_text: new_text,
          old_statements: (old && old.statements) || [],
          new_statements: new_entry.statements
        }

        state =
          state
          |> put_in([Access.key(:interpreted), info.module], new_entry)
          |> put_in([Access.key(:texts), info.source], new_text)
          |> add_pending(swap.pending, info.module)

        action = if was_interpreted?, do: :reinterpreted, else: :interpreted

        reason =
          cond do
            was_interpreted? -> "beam changed (#{swap.mode} swap)"
            tombstone -> "its file came back; interpreted again as before its deletion"
            renamed_from -> "renamed from #{inspect(renamed_from)}"
            true -> "new module matching the interpret patterns"
          end

        moved = Breakpoints.plan(info.module, info.source, edit, breaks, origin)

        {[entry(info, action, reason) | entries], procs ++ process_entries(swap.pending, info.module),
         warnings, planned ++ moved, state}

      {:error, message} ->
        {[entry(info, :deferred, message) | entries], procs,
         ["#{inspect(info.module)}: #{message}" | warnings], planned, state}
    end
  end

  defp read_text(nil), do: nil

  defp read_text(path) do
    with {:ok, bytes} <- File.read(path) do
      utf8(bytes)
    else
      _ -> nil
    end
  end

  # Erlang sources may be Latin-1; the remapper works on UTF-8 text.
  defp utf8(bytes) do
    cond do
      String.valid?(bytes) -> bytes
      is_binary(text = :unicode.characters_to_binary(bytes, :latin1)) -> text
      true -> nil
    end
  end

  defp process_entries(pending, module) do
    for {pid, reason} <- pending do
      %{pid: pid, module: module, status: :paused_on_old_code, detail: pending_detail(reason, module)}
    end
  end

  defp pending_detail(:in_use, module),
    do:
      "#{inspect(module)} is on its interpreted stack; it finishes that call on the old code, then runs the new code"

  defp pending_detail(_busy, module),
    do: "kept running #{inspect(module)} past the busy timeout; it moves to the new code when it next returns"

  defp add_pending(state, [], _module), do: state

  defp add_pending(state, pending, module) do
    subscribe_to_interpreter()

    Enum.reduce(pending, state, fn {pid, _}, state ->
      update_in(state.pending, &Map.update(&1, pid, [module], fn mods -> Enum.uniq([module | mods]) end))
    end)
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

  defp unload_removed(removed, state) do
    Enum.reduce(removed, {[], [], state}, fn %{module: module} = info, {entries, warnings, state} ->
      state = bury(state, module)

      in_use =
        (Interpreter.interpreted?(module) and Interpreter.uninterpret(module) == {:error, :in_use}) or
          (:code.is_loaded(module) != false and not purge_deleted(module))

      if in_use do
        {[entry(info, :deleted, "source deleted; still in use, so not purged") | entries],
         ["#{inspect(module)} was deleted but is still in use; it stays loaded" | warnings], state}
      else
        {[entry(info, :deleted, "source deleted; purged") | entries], warnings, state}
      end
    end)
  end

  defp bury(state, module) do
    if Interpreter.interpreted?(module),
      do: put_in(state.tombstones[module], Interpreter.breakpoints(module)),
      else: state
  end

  defp purge_deleted(module) do
    :code.soft_purge(module) and (:code.delete(module) or true) and :code.soft_purge(module)
  end

  defp entry(info, action, reason),
    do: %{module: info.module, source: info[:source], action: action, reason: reason}

  defp update_sources(_previous, current, nil), do: current

  defp update_sources(previous, current, scope) do
    previous |> Map.drop(scope) |> Map.merge(current)
  end

  # Beams we did not load keep their old digest so a later reload retries them.
  defp update_beams(previous, current, loaded_paths, skipped, entries) do
    deferred = for %{action: :deferred, module: m} <- entries, into: MapSet.new(), do: m

    Enum.reduce(current, Map.drop(previous, MapSet.to_list(loaded_paths)), fn {path, digest}, acc ->
      module = Beam.module_from_path(path)

      cond do
        path in skipped or MapSet.member?(deferred, module) -> acc
        MapSet.member?(loaded_paths, path) or not Map.has_key?(previous, path) -> Map.put(acc, path, digest)
        true -> acc
      end
    end)
  end

  # -- report -------------------------------------------------------------

  defp finish({:ok, report}, started, _state), do: {:ok, with_total(report, started)}

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
