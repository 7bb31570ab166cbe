defmodule DebugReload.ExternalResourceTest do
  # A file a module reads at compile time (`@external_resource`: templates,
  # data, schemas) is edited during a debug session: the module that
  # declares it is recompiled and reloaded, as `mix compile` would.
  use ExUnit.Case, async: false

  alias DebugReload.Test.Project

  setup do
    n = System.unique_integer([:positive])
    page = Module.concat(["ExtRes#{n}", "Page"])

    project =
      Project.create(%{
        "priv/greeting.txt" => "hello",
        "lib/page.ex" => """
        defmodule #{inspect(page)} do
          @external_resource "priv/greeting.txt"
          @greeting File.read!("priv/greeting.txt")
          def greeting do
            g = @greeting
            g
          end
        end
        """
      })

    Project.interpret([page])
    server = :"ext_res_#{n}"
    start_supervised!({DebugReload, project: project.root, name: server, mix_env: "dev"}, id: server)
    Project.await_boot(server)
    on_exit(fn -> Project.cleanup(project, [page]) end)
    %{project: project, page: page, server: server}
  end

  defp greeting(page), do: Task.await(Task.async(fn -> page.greeting() end))

  defp two_resources_source(page) do
    """
    defmodule #{inspect(page)} do
      @external_resource "priv/greeting.txt"
      @external_resource "priv/farewell.txt"
      @greeting File.read!("priv/greeting.txt") <> " " <> File.read!("priv/farewell.txt")
      def greeting do
        g = @greeting
        g
      end
    end
    """
  end

  test "an edited resource recompiles and reloads the module that declares it", ctx do
    :ok = :int.break(ctx.page, 5)
    resource = Project.write(ctx.project, "priv/greeting.txt", "bye")

    assert {:ok, dry} = DebugReload.reload(server: ctx.server, dry_run: true)
    assert dry.files.changed == [resource]
    page_file = Project.path(ctx.project, "lib/page.ex")
    assert [%{path: ^page_file, certainty: :definite}] = dry.plan.files

    assert {:ok, report} = DebugReload.reload(server: ctx.server)
    assert report.files.changed == [resource]
    assert [%{module: page, action: :reinterpreted}] = report.modules
    assert page == ctx.page
    assert [{{_, 5}, _}] = :int.all_breaks(ctx.page)
    :int.disable_break(ctx.page, 5)
    assert greeting(ctx.page) == "bye"

    assert {:ok, %{status: :noop}} = DebugReload.reload(server: ctx.server)
  end

  test "a reload scoped to a resource (`paths:`) reloads the modules built from it", ctx do
    resource = Project.write(ctx.project, "priv/greeting.txt", "scoped")
    assert {:ok, report} = DebugReload.reload(server: ctx.server, paths: ["priv/greeting.txt"])
    assert report.files.changed == [resource]
    assert [%{module: page, action: :reinterpreted}] = report.modules
    assert page == ctx.page
    assert greeting(ctx.page) == "scoped"
    assert {:ok, %{status: :noop}} = DebugReload.reload(server: ctx.server)
  end

  test "what changed since the last compile (`mix debug_reload.plan` with no files) counts resources", ctx do
    planner = :sys.get_state(ctx.server).planner
    assert DebugReload.Planner.changed_since_compile(planner).changed == []

    resource = Project.write(ctx.project, "priv/greeting.txt", "planned")

    {:ok, %{mtime: compiled_at}} =
      File.stat(Path.join(ctx.project.ebin, "../.mix/compile.elixir"), time: :posix)

    # Newer than the manifest, as Mix compares.
    File.touch!(resource, compiled_at + 1)
    changes = DebugReload.Planner.changed_since_compile(planner)
    assert changes.changed == [resource]
    page_file = Project.path(ctx.project, "lib/page.ex")
    assert [%{path: ^page_file}] = DebugReload.Planner.plan(planner, changes).files
  end

  test "a resource a module starts to declare is followed from the reload that compiled it", ctx do
    Project.write(ctx.project, "priv/farewell.txt", "ciao")

    Project.write(ctx.project, "lib/page.ex", two_resources_source(ctx.page))

    assert {:ok, %{modules: [%{action: :reinterpreted}]}} = DebugReload.reload(server: ctx.server)
    assert greeting(ctx.page) == "hello ciao"

    farewell = Project.write(ctx.project, "priv/farewell.txt", "adieu")
    assert {:ok, report} = DebugReload.reload(server: ctx.server)
    assert report.files.changed == [farewell]
    assert greeting(ctx.page) == "hello adieu"
  end

  test "watching reloads on a resource's save, also of one a module starts to declare", ctx do
    :ok = DebugReload.watch(server: ctx.server, debounce: 50)
    :ok = DebugReload.subscribe(ctx.server)

    resource = Project.write(ctx.project, "priv/greeting.txt", "watched")
    assert_receive {:debug_reload, %{status: :ok, files: %{changed: [^resource]}}}, 60_000
    assert greeting(ctx.page) == "watched"

    Project.write(ctx.project, "priv/farewell.txt", "ciao")
    page_file = Project.write(ctx.project, "lib/page.ex", two_resources_source(ctx.page))
    assert_receive {:debug_reload, %{status: :ok, files: %{changed: [^page_file]}}}, 60_000
    assert greeting(ctx.page) == "watched ciao"

    farewell = Project.write(ctx.project, "priv/farewell.txt", "adieu")
    assert_receive {:debug_reload, %{status: :ok, files: %{changed: [^farewell]}}}, 60_000
    assert greeting(ctx.page) == "watched adieu"
  end

  test "a module that asks to be recompiled (__mix_recompile__?/0) is, though no file it declares changed",
       ctx do
    # As Phoenix's embed_templates does for the templates a wildcard
    # matches: a new one changes no known file.
    templates = Module.concat(ctx.page, Templates)
    on_exit(fn -> Project.cleanup(ctx.project, [templates]) end)
    Project.write(ctx.project, "priv/templates/a.txt", "a")

    Project.write(ctx.project, "lib/templates.ex", """
    defmodule #{inspect(templates)} do
      paths = Path.wildcard(Path.join(__DIR__, "../priv/templates/*.txt"))
      for path <- paths, do: @external_resource(path)
      @names Enum.map(paths, &Path.basename(&1, ".txt"))
      @hash :erlang.md5(Enum.join(paths, ","))
      def names do
        n = @names
        n
      end
      def __mix_recompile__? do
        :erlang.md5(Enum.join(Path.wildcard(Path.join(__DIR__, "../priv/templates/*.txt")), ",")) != @hash
      end
    end
    """)

    assert {:ok, %{modules: [%{module: ^templates}]}} = DebugReload.reload(server: ctx.server)
    Project.interpret([templates])
    assert {:ok, %{status: :noop}} = DebugReload.reload(server: ctx.server)

    Project.write(ctx.project, "priv/templates/b.txt", "b")
    assert {:ok, report} = DebugReload.reload(server: ctx.server)
    assert [%{module: ^templates, action: :reinterpreted}] = report.modules
    assert Task.await(Task.async(fn -> templates.names() end)) == ["a", "b"]
    assert {:ok, %{status: :noop}} = DebugReload.reload(server: ctx.server)

    # Watching: a file added beside the ones it declares is a reason to ask.
    :ok = DebugReload.watch(server: ctx.server, debounce: 50)
    :ok = DebugReload.subscribe(ctx.server)
    Project.write(ctx.project, "priv/templates/c.txt", "c")
    assert_receive {:debug_reload, %{status: :ok, modules: [%{module: ^templates}]}}, 60_000
    assert Task.await(Task.async(fn -> templates.names() end)) == ["a", "b", "c"]
  end

  test "a resource edited after the last compile, before the session started, is reloaded", ctx do
    stop_supervised!(ctx.server)
    resource = Project.write(ctx.project, "priv/greeting.txt", "early")
    # Mix compares whole seconds: dated after the compile, as a later edit is.
    {:ok, %{mtime: compiled_at}} =
      File.stat(Path.join(ctx.project.ebin, "../.mix/compile.elixir"), time: :posix)

    File.touch!(resource, compiled_at + 1)
    start_supervised!({DebugReload, project: ctx.project.root, name: ctx.server, mix_env: "dev"})
    Project.await_boot(ctx.server)

    assert {:ok, report} = DebugReload.reload(server: ctx.server)
    assert resource in (report.files.changed ++ report.files.added)
    assert [%{module: page, action: :reinterpreted}] = report.modules
    assert page == ctx.page
    assert greeting(ctx.page) == "early"
  end
end
