defmodule DebugReload.CompileWorker.Remote do
  @moduledoc false
  # Runs inside the compile worker node, never in the debugged VM: compiling
  # in the debugged VM can crash it (see docs/design.md), so all of Mix's
  # compilation happens here and the debugged VM only loads the beams.

  @doc "Loads the project's mix.exs and config, returns its layout."
  def boot(root, env) do
    {:ok, _} = Application.ensure_all_started(:mix)
    start_silent_logger()
    Mix.env(String.to_atom(env))
    File.cd!(root)

    capture(fn ->
      Code.compile_file("mix.exs")
      Mix.Task.run("loadconfig")
    end)

    layout(root, env)
  end

  # Mix before 1.15 compiles the application into Logger calls' metadata
  # (of the project and of each dependency it builds) only while Logger
  # runs, as it always does under `mix compile`; later Mix always does.
  # So it runs here too, but prints nothing: this node's output goes to
  # the debugged VM, whose standard I/O may be the debug adapter's.
  # Started before the project's config is loaded, it keeps no backends
  # whatever that config says.
  defp start_silent_logger do
    if Version.match?(System.version(), "< 1.15.0") do
      Application.put_env(:logger, :backends, [], persistent: true)
      {:ok, _} = Application.ensure_all_started(:logger)
    end

    :ok
  end

  @doc """
  Runs `mix compile` for the project, after `mix deps.compile` for the
  `path:` dependencies in `deps`; returns status, diagnostics and output.
  `ready` are modules the next planned compile is expected to define
  again: they are left unloaded (see `unload_ahead/1`).
  """
  def compile(deps, ready \\ []) do
    {result, output} =
      capture(fn ->
        Mix.Task.clear()

        try do
          with :ok <- compile_path_deps(deps) do
            with_logger_app(Mix.Project.config()[:app], fn ->
              Mix.Task.run("compile", ["--return-errors", "--no-deps-check", "--no-archives-check"])
            end)
            |> tap(fn _ -> settle_code(ready) end)
          end
        rescue
          e in Mix.Error ->
            {:error, [%{file: nil, position: nil, severity: :error, message: Exception.message(e)}]}
        end
      end)

    case result do
      {status, diagnostics} when status in [:ok, :noop, :error] ->
        {status, Enum.map(diagnostics, &diagnostic/1), output}

      {:dependency_failed, deps} ->
        {:error, dependency_diagnostics(output, deps), output}

      other ->
        {:ok, [], output <> inspect(other)}
    end
  end

  # `mix deps.compile` is Mix's own way to build a dependency (in its env,
  # into the project's build path); it prints its errors and exits.
  defp compile_path_deps([]), do: :ok

  defp compile_path_deps(deps) do
    Mix.Task.run("deps.compile", Enum.map(deps, &to_string/1))
    Mix.Task.clear()
    :ok
  catch
    :exit, _ -> {:dependency_failed, deps}
  end

  # What `mix deps.compile` printed about the failure, as diagnostics: the
  # compiler's "== Compilation error in file F ==" and "** (Kind) F:L: ..."
  # lines, with F relative to the dependency.
  defp dependency_diagnostics(output, deps) do
    roots = Mix.Project.deps_paths()

    found =
      for [_, app, error] <- Regex.scan(~r/^==> (\S+)\n(?:.*\n)*?\*\* \(\w+\) (.*)$/m, output),
          root = roots[String.to_atom(app)],
          do: dependency_diagnostic(root, error)

    case found do
      [] ->
        message = "could not compile #{Enum.map_join(deps, ", ", &inspect/1)}: " <> last_lines(output)
        [%{file: nil, line: nil, severity: :error, message: message}]

      found ->
        found
    end
  end

  defp dependency_diagnostic(root, error) do
    case Regex.run(~r/^([^:\s]+):(\d+)(?::\d+)?: (.*)$/, error) do
      [_, file, line, message] ->
        %{file: Path.expand(file, root), line: String.to_integer(line), severity: :error, message: message}

      nil ->
        %{file: nil, line: nil, severity: :error, message: error}
    end
  end

  defp last_lines(output), do: output |> String.split("\n", trim: true) |> Enum.take(-5) |> Enum.join("\n")

  # Done after a compile nobody waits for, so that the next planned compile
  # does not pay for it: recompiled modules leave old code behind, and
  # purging it scans every process; protocol consolidation unloads the
  # protocols, and the first dispatch would load each one again.
  defp settle_code(ready) do
    for {module, _} <- :code.all_loaded(), :erlang.check_old_code(module), do: :code.purge(module)

    for path <- Path.wildcard(Path.join(Mix.Project.consolidation_path(), "*.beam")),
        do: path |> Path.basename(".beam") |> String.to_atom() |> :code.ensure_loaded()

    unload_ahead(ready)
  end

  # A planned compile must define its modules afresh, as Mix does (see
  # `unload/1`), and each code-server operation that takes costs a
  # fraction of a millisecond. The file just edited is usually the next
  # one edited, so its modules are unloaded now, while nobody waits.
  # Anything that needs one before then loads it from the ebin.
  defp unload_ahead(modules), do: Enum.each(modules, &unload/1)

  @doc """
  Compiles exactly the planned `files` of one app, as Mix would compile
  them, and writes their beams to the app's ebin.

  Mix's own compile task spends most of a small reload checking every
  source of the project for staleness; the plan already knows what is
  stale. The result must be what Mix would have produced, so the same
  compiler options, relative paths and Logger application are used (the
  beams are byte-identical to Mix's), and the compile gives way to Mix
  (`{:fallback, reason}`, nothing written) whenever Mix would do more:
  a module whose exports changed while some file recompiles on that
  change, modules added or gone, protocols or their implementations.

  With `spec.notify` (`{pid, tag}` in the debugged VM), the beams are
  announced as soon as every file has compiled: the compiler's checks of
  the compiled code (undefined or deprecated calls, `@after_verify`) come
  after that, and take over a quarter of a one-file compile, so the caller
  can load the new code meanwhile (see `announce/3`).

  `spec`: `:app`, `:ebin`, `:files` (absolute), `:exports` (module =>
  export digest from Mix's manifest, for every module the files define)
  and `:conditions` (modules whose export change recompiles other files).

  Returns the modules with their beam paths and export digests, not the
  beams: the caller is on the same machine and reads them from disk far
  faster than they cross the peer's standard I/O.
  """
  def compile_planned(spec) do
    {result, output} = capture(fn -> compile_planned_files(spec) end)

    case result do
      {:ok, compiled, diagnostics} -> {:ok, compiled, Enum.map(diagnostics, &diagnostic/1), output}
      {:error, diagnostics} -> {:error, Enum.map(diagnostics, &diagnostic/1), output}
      {:fallback, reason} -> {:fallback, reason}
    end
  end

  defp compile_planned_files(spec) do
    config = Mix.Project.config()

    if config[:app] == spec.app,
      do: compile_app_files(spec, config),
      else: {:fallback, "#{spec.app} is not the project's own app"}
  end

  defp compile_app_files(spec, config) do
    # Compile-time dependencies load from the ebins, as in Mix's task; the
    # code path outlives the task, so once per worker is enough.
    unless :persistent_term.get({__MODULE__, :paths_loaded}, false) do
      Mix.Task.run("loadpaths", ["--no-deps-check", "--no-archives-check"])
      :persistent_term.put({__MODULE__, :paths_loaded}, true)
    end

    ensure_code_path(spec.ebin)
    staging = Path.join(Path.dirname(spec.ebin), ".debug_reload_staging")
    stash_dir = Path.join(Path.dirname(spec.ebin), ".debug_reload_stash")
    announced = Path.join(Path.dirname(spec.ebin), ".debug_reload_announced")
    ensure_empty_once([staging, stash_dir])
    # The caller deletes announced beams once read; any left are from a
    # caller that died first.
    clear_staging(announced)
    # As Mix does before recompiling: no "redefining module" warnings, and
    # no old beam a compile-time user could load instead of the new code.
    Enum.each(Map.keys(spec.exports), &unload/1)
    stash = stash_beams(spec, stash_dir)
    previous_options = Code.compiler_options(compiler_options(config))
    cwd = File.cwd!()

    try do
      with_logger_app(config[:app], fn ->
        crash_proof(spec, fn ->
          spec.files
          |> Enum.map(&Path.relative_to(&1, cwd))
          |> Kernel.ParallelCompiler.compile_to_path(staging, announce_options(spec, config, announced))
        end)
      end)
      |> case do
        {:ok, modules, warnings} -> install(modules, staging, spec, warnings)
        {:error, errors, warnings} -> {:error, tagged(warnings, :warning) ++ tagged(errors, :error)}
      end
    after
      Code.compiler_options(previous_options)
      Code.purge_compiler_modules()
      clear_staging(staging)
      restore_stash(stash)
    end
  end

  # The compiler's checks run in processes linked to the compile's caller:
  # an `@after_verify` callback that raises kills it, as it stops `mix
  # compile`. In a process of its own the crash becomes a compile error,
  # at the callback's line, and the ebin is still put back as it was.
  defp crash_proof(spec, compile) do
    {_pid, monitor} = spawn_monitor(fn -> exit({:compiled, compile.()}) end)

    receive do
      {:DOWN, ^monitor, :process, _, {:compiled, result}} ->
        result

      {:DOWN, ^monitor, :process, _, reason} ->
        {file, line} = crash_location(reason, spec.files)
        {:error, [{file, line, "the compiler crashed: " <> crash_message(reason)}], []}
    end
  end

  defp crash_message({exception, stacktrace}) when is_exception(exception),
    do: Exception.format_banner(:error, exception, stacktrace)

  defp crash_message(reason), do: Exception.format_exit(reason)

  defp crash_location({_exception, stacktrace}, files) when is_list(stacktrace) do
    Enum.find_value(stacktrace, {nil, nil}, fn
      {_m, _f, _a, location} when is_list(location) ->
        file = location[:file] && Path.expand(to_string(location[:file]))
        if file in files, do: {file, location[:line]}

      _ ->
        nil
    end)
  end

  defp crash_location(_reason, _files), do: {nil, nil}

  # Both callbacks run in the compile's own process: `each_module` as a
  # file's process hands a module over (the file waits for it), and
  # `each_file` once the file's process says it is done, so once the last
  # file is done every module is in the table. A compile that fails, or
  # whose warnings fail it, announces nothing.
  defp announce_options(%{notify: {pid, _tag}} = spec, config, dir) when is_pid(pid) do
    if warnings_fail?(config) do
      []
    else
      # This process's, as the callbacks are; gone with it once the compile returns.
      table = :ets.new(__MODULE__, [:set])
      files = length(spec.files)

      [
        each_module: fn _file, module, binary -> :ets.insert(table, {{:module, module}, binary}) end,
        each_file: fn _file ->
          if :ets.update_counter(table, :files_done, 1, {:files_done, 0}) == files,
            do: announce(table, spec, dir)
        end
      ]
    end
  end

  defp announce_options(_spec, _config, _dir), do: []

  # Set in the project (Mix passes it on) or for the whole node.
  defp warnings_fail?(config) do
    config |> Keyword.get(:elixirc_options, []) |> Keyword.get(:warnings_as_errors, false) ||
      (:warnings_as_errors in Code.available_compiler_options() and
         Code.get_compiler_option(:warnings_as_errors) == true)
  end

  # The new beams, written where the caller reads them (they cannot cross
  # the peer's standard I/O fast), as `install/4` will report them, unless
  # it will give way to Mix. The compiler writes the same bytes to the
  # ebin once its checks are done. The notice goes through the peer's
  # standard I/O server, which passes `{:message, to, content}` on to the
  # debugged VM.
  defp announce(table, %{notify: {pid, tag}} = spec, dir) do
    binaries = for {{:module, module}, binary} <- :ets.tab2list(table), into: %{}, do: {module, binary}

    if fallback_reason(Map.keys(binaries), spec) == nil do
      File.mkdir_p!(dir)

      compiled =
        for {module, binary} <- binaries do
          announced = Path.join(dir, "#{module}.beam")
          File.write!(announced, binary)

          %{
            module: module,
            path: Path.join(spec.ebin, "#{module}.beam"),
            announced: announced,
            export: export(module)
          }
        end

      send(:user, {:message, pid, {:debug_reload_compiled, tag, compiled}})
    end

    :ok
  end

  # Prepending a path costs the code server a scan; the path stays.
  defp ensure_code_path(ebin) do
    unless String.to_charlist(ebin) in :code.get_path(), do: Code.prepend_path(ebin)
  end

  # Each compile leaves both directories empty (see clear_staging/1 and
  # restore_stash/1, run whatever the outcome); only what an earlier worker
  # left behind, if it died in the middle, needs clearing.
  defp ensure_empty_once(dirs) do
    key = {__MODULE__, :emptied, dirs}

    unless :persistent_term.get(key, false) do
      Enum.each(dirs, &clear_staging/1)
      :persistent_term.put(key, true)
    end
  end

  # Empty after every compile: the staging directory once the new beams
  # are installed (a failed compile leaves those of the files that did
  # compile), the stash once the old beams are dropped or put back.
  defp clear_staging(staging) do
    case File.ls(staging) do
      {:ok, []} -> :ok
      {:ok, _leftovers} -> File.rm_rf!(staging) && File.mkdir_p!(staging)
      {:error, _} -> File.mkdir_p!(staging)
    end
  end

  # {ebin path, stashed path} of the beams the compile replaces, moved out
  # of the ebin while it runs (the caller has already read them).
  defp stash_beams(spec, stash_dir) do
    for module <- Map.keys(spec.exports),
        name = "#{module}.beam",
        path = Path.join(spec.ebin, name),
        stashed = Path.join(stash_dir, name),
        File.rename(path, stashed) == :ok,
        do: {path, stashed}
  end

  # Unless the new beams took their place, the old ones go back.
  defp restore_stash(stash) do
    for {path, stashed} <- stash do
      if File.exists?(path), do: File.rm(stashed), else: File.rename!(stashed, path)
    end
  end

  defp install(modules, staging, spec, warnings) do
    case fallback_reason(modules, spec) do
      nil ->
        compiled =
          for module <- modules do
            name = "#{module}.beam"
            path = Path.join(spec.ebin, name)
            File.rename!(Path.join(staging, name), path)
            %{module: module, path: path, export: export(module)}
          end

        {:ok, compiled, tagged(warnings, :warning)}

      reason ->
        {:fallback, reason}
    end
  end

  defp fallback_reason(modules, spec) do
    known = spec.exports |> Map.keys() |> MapSet.new()

    cond do
      MapSet.new(modules) != known ->
        "the edit adds or removes modules"

      protocol = Enum.find(modules, &protocol_related?/1) ->
        "#{inspect(protocol)} is a protocol or an implementation (Mix consolidates them)"

      changed = Enum.find(modules, &(&1 in spec.conditions and export_changed?(&1, spec))) ->
        "the exports of #{inspect(changed)} changed and other files recompile on that"

      true ->
        nil
    end
  end

  defp export_changed?(module, spec) do
    export = export(module)
    export == nil or export != spec.exports[module]
  end

  defp protocol_related?(module),
    do: function_exported?(module, :__protocol__, 1) or function_exported?(module, :__impl__, 1)

  # What Mix records for export dependencies; nil when unknown, and a
  # condition module with an unknown export counts as changed.
  defp export(module) do
    module.__info__(:exports_md5)
  rescue
    _ -> nil
  end

  # Usually done already (see unload_ahead/1; old code left by an earlier
  # compile is usually gone too, see settle_code/1). Old code is purged
  # here rather than by the compile, which would otherwise do it while its
  # own processes run.
  defp unload(module) do
    if :erlang.check_old_code(module), do: :code.purge(module)

    if :erlang.module_loaded(module) do
      :code.delete(module)
      :code.purge(module)
    end
  end

  # Without `ignore_module_conflict`, the compiler looks for a loaded or
  # loadable version of each module it defines, to warn that it is being
  # redefined; the modules are unloaded and their beams stashed, so on
  # OTP 25 that is a fruitless search of the whole code path per module
  # (about a millisecond each). The one redefinition it would warn about,
  # a file starting to define another file's module, changes the file's
  # modules, and that gives way to Mix (see fallback_reason/2), whose
  # compile warns as usual.
  defp compiler_options(config) do
    config
    |> Keyword.get(:elixirc_options, [])
    |> Keyword.take(Code.available_compiler_options())
    |> Keyword.put(:ignore_module_conflict, true)
  end

  # Logger calls are compiled with the application as metadata, read from
  # the :logger environment at compile time. Mix's compile task sets it
  # (see start_silent_logger/0); a planned compile does not go through
  # that task, so it is set here, or the beams would differ from the
  # command line's (and lose the metadata). Around Mix's task as well, for
  # the project's own beams should Logger have stopped in this node.
  # Persistent, or Mix loading :logger during its task would reset it to
  # the .app file's default.
  defp with_logger_app(app, fun) do
    previous = Application.fetch_env(:logger, :compile_time_application)
    Application.put_env(:logger, :compile_time_application, app, persistent: true)

    try do
      fun.()
    after
      case previous do
        {:ok, value} -> Application.put_env(:logger, :compile_time_application, value, persistent: true)
        :error -> Application.delete_env(:logger, :compile_time_application, persistent: true)
      end
    end
  end

  # Elixir 1.14 gives {file, position, message} tuples; later versions
  # may give diagnostic maps, or a map of warning lists.
  defp tagged(%{} = groups, severity) when not is_map_key(groups, :message),
    do: groups |> Map.values() |> Enum.flat_map(&List.wrap/1) |> tagged(severity)

  defp tagged(items, severity) do
    for item <- List.wrap(items) do
      case item do
        {file, position, message} ->
          %{
            file: file && Path.expand(to_string(file)),
            position: position,
            severity: severity,
            message: message
          }

        %{} = diagnostic ->
          diagnostic
      end
    end
  end

  @doc "The layout of the current Mix project (also for `mix debug_reload.plan`)."
  def layout(root, env) do
    config = Mix.Project.config()

    apps =
      case Mix.Project.apps_paths(config) do
        nil ->
          [app_layout(root, config)]

        paths ->
          for {app, rel} <- Enum.sort(paths) do
            Mix.Project.in_project(app, Path.join(root, rel), fn _ ->
              app_layout(Path.join(root, rel), Mix.Project.config())
            end)
          end
      end

    %{
      root: root,
      env: env,
      build_path: Mix.Project.build_path(config),
      apps: apps,
      path_deps: path_deps(apps),
      consolidation: [Path.expand(Mix.Project.consolidation_path(config))]
    }
  end

  # Dependencies given with `path:` (umbrella siblings excepted: they are
  # apps): their sources are edited alongside the project's.
  defp path_deps(apps) do
    roots = MapSet.new(apps, & &1.root)
    paths = Mix.Project.deps_paths()
    build_lib = Path.join(Mix.Project.build_path(), "lib")

    for {app, Mix.SCM.Path} <- Enum.sort(Mix.Project.deps_scms()),
        root = Path.expand(paths[app]),
        not MapSet.member?(roots, root),
        layout = dep_layout(app, root, Path.join([build_lib, to_string(app), "ebin"])),
        do: layout
  rescue
    # A dependency that cannot be loaded is Mix's error to report on compile.
    _ -> []
  end

  # Mix builds a dependency into the project's build path, not the one the
  # dependency's own mix.exs would give.
  defp dep_layout(app, root, ebin) do
    Mix.Project.in_project(app, root, fn _ -> %{app_layout(root, Mix.Project.config()) | ebin: ebin} end)
  rescue
    _ -> nil
  end

  defp app_layout(root, config) do
    dirs =
      List.wrap(config[:elixirc_paths]) ++
        List.wrap(config[:erlc_paths]) ++ List.wrap(config[:erlc_include_path])

    %{
      app: config[:app],
      root: Path.expand(root),
      source_dirs: dirs |> Enum.map(&Path.expand(&1, root)) |> Enum.uniq(),
      ebin: Path.expand(Mix.Project.compile_path(config)),
      # for the reload plan: which sibling apps and path deps it builds on
      deps: for(dep <- List.wrap(config[:deps]), is_tuple(dep), do: elem(dep, 0))
    }
  end

  defp diagnostic(%{} = d) do
    %{
      file: d.file && to_string(d.file),
      line: line(Map.get(d, :position)),
      severity: d.severity,
      message: IO.chardata_to_string(d.message)
    }
  end

  defp line(line) when is_integer(line), do: line
  defp line({line, _column}) when is_integer(line), do: line
  defp line({{line, _}, _}) when is_integer(line), do: line
  defp line(_), do: nil

  # Collects everything written to stdio and stderr while `fun` runs, so the
  # worker never writes to the debug adapter's stdout.
  defp capture(fun) do
    {:ok, device} = StringIO.open("")
    previous_gl = Process.group_leader()
    previous_err = Process.whereis(:standard_error)
    Process.group_leader(self(), device)
    swap_standard_error(previous_err, device)

    try do
      result = fun.()
      {result, device |> StringIO.contents() |> elem(1)}
    after
      Process.group_leader(self(), previous_gl)
      swap_standard_error(device, previous_err)
      StringIO.close(device)
    end
  end

  defp swap_standard_error(nil, _), do: :ok
  defp swap_standard_error(_, nil), do: :ok

  defp swap_standard_error(from, to) do
    if Process.whereis(:standard_error) == from do
      Process.unregister(:standard_error)
      Process.register(to, :standard_error)
    end

    :ok
  end
end
