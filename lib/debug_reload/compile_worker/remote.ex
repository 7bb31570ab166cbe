defmodule DebugReload.CompileWorker.Remote do
  @moduledoc false
  # Runs inside the compile worker node, never in the debugged VM: compiling
  # in the debugged VM can crash it (see docs/design.md), so all of Mix's
  # compilation happens here and the debugged VM only loads the beams.

  @doc "Loads the project's mix.exs and config, returns its layout."
  def boot(root, env) do
    {:ok, _} = Application.ensure_all_started(:mix)
    Mix.env(String.to_atom(env))
    File.cd!(root)

    capture(fn ->
      Code.compile_file("mix.exs")
      Mix.Task.run("loadconfig")
    end)

    layout(root, env)
  end

  @doc "Runs `mix compile` for the project; returns status, diagnostics and output."
  def compile do
    {result, output} =
      capture(fn ->
        Mix.Task.clear()

        try do
          Mix.Task.run("compile", ["--return-errors", "--no-deps-check", "--no-archives-check"])
        rescue
          e in Mix.Error ->
            {:error, [%{file: nil, position: nil, severity: :error, message: Exception.message(e)}]}
        end
      end)

    case result do
      {status, diagnostics} when status in [:ok, :noop, :error] ->
        {status, Enum.map(diagnostics, &diagnostic/1), output}

      other ->
        {:ok, [], output <> inspect(other)}
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

    for {app, Mix.SCM.Path} <- Enum.sort(Mix.Project.deps_scms()),
        root = Path.expand(paths[app]),
        not MapSet.member?(roots, root),
        layout = dep_layout(app, root),
        do: layout
  rescue
    # A dependency that cannot be loaded is Mix's error to report on compile.
    _ -> []
  end

  defp dep_layout(app, root) do
    Mix.Project.in_project(app, root, fn _ -> app_layout(root, Mix.Project.config()) end)
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
