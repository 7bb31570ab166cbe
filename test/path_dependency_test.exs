defmodule DebugReload.PathDependencyTest do
  # A `path:` dependency outside the project, edited during a debug
  # session: its edits are planned and reloaded like the project's own,
  # through the layout Mix itself reports (Mix builds the dependency into
  # the project's build path).
  use ExUnit.Case, async: false

  alias DebugReload.Test.Project

  setup do
    n = System.unique_integer([:positive])
    lib = Module.concat(["PathDep#{n}", "Lib"])
    user = Module.concat(["PathDep#{n}", "User"])
    caller = Module.concat(["PathDep#{n}", "Caller"])
    dep = Project.create(%{"lib/lib.ex" => lib_source(lib, 1, :one)}, compile: false)

    project =
      Project.create(
        %{
          "lib/user.ex" => """
          defmodule #{inspect(user)} do
            require #{inspect(lib)}
            def tag, do: #{inspect(lib)}.tag()
          end
          """,
          "lib/caller.ex" => """
          defmodule #{inspect(caller)} do
            def value, do: #{inspect(lib)}.value()
          end
          """
        },
        deps: [{dep.app, path: dep.root}]
      )

    dep_ebin = Path.join(project.root, "_build/dev/lib/#{dep.app}/ebin")
    # A debug session runs with its dependencies on the code path.
    Code.prepend_path(dep_ebin)
    for m <- [lib, user, caller], do: Code.ensure_loaded!(m)
    Project.interpret([lib])

    server = :"path_dep_#{n}"
    start_supervised!({DebugReload, project: project.root, name: server, mix_env: "dev"}, id: server)
    Project.await_boot(server)

    on_exit(fn ->
      Project.cleanup(project, [lib, user, caller])
      Code.delete_path(dep_ebin)
      File.rm_rf(dep.root)
    end)

    %{project: project, dep: dep, server: server, lib: lib, user: user, caller: caller}
  end

  # Line 4 is `x = value`, a breakpoint line. Logger compiles the
  # dependency's application into its calls' metadata.
  defp lib_source(mod, value, tag) do
    """
    defmodule #{inspect(mod)} do
      defmacro tag, do: #{inspect(tag)}
      def value do
        x = #{value}
        x
      end
      require Logger
      def logged, do: Logger.debug("value")
    end
    """
  end

  test "an edit to the dependency reloads its module, interpreted, with its breakpoint", ctx do
    :ok = :int.break(ctx.lib, 4)
    path = Project.write(ctx.dep, "lib/lib.ex", lib_source(ctx.lib, 2, :one))

    assert {:ok, report} = DebugReload.reload(server: ctx.server)
    assert report.files.changed == [path]
    assert [%{module: lib, action: :reinterpreted}] = report.modules
    assert lib == ctx.lib
    assert ctx.lib in :int.interpreted()
    assert [{{_, 4}, _}] = :int.all_breaks(ctx.lib)
    :int.disable_break(ctx.lib, 4)
    assert Task.await(Task.async(fn -> ctx.caller.value() end)) == 2
  end

  test "the reloaded dependency's beam is the one `mix deps.compile` writes on the command line", ctx do
    Project.write(ctx.dep, "lib/lib.ex", lib_source(ctx.lib, 5, :one))
    assert {:ok, %{modules: [%{action: :reinterpreted}]}} = DebugReload.reload(server: ctx.server)
    :ok = DebugReload.await_sync(ctx.server)

    beam = Path.join(ctx.project.root, "_build/dev/lib/#{ctx.dep.app}/ebin/#{ctx.lib}.beam")
    reloaded = File.read!(beam)
    {_, 0} = Project.mix(ctx.project, ["deps.compile", to_string(ctx.dep.app), "--force"])
    assert File.read!(beam) == reloaded
  end

  test "a file deleted from the dependency unloads its module", ctx do
    extra = Module.concat([ctx.lib, Extra])
    on_exit(fn -> Project.cleanup(ctx.project, [extra]) end)
    path = Project.write(ctx.dep, "lib/extra.ex", "defmodule #{inspect(extra)} do\n  def hi, do: :hi\nend\n")
    beam = Path.join(ctx.project.root, "_build/dev/lib/#{ctx.dep.app}/ebin/#{extra}.beam")

    assert {:ok, report} = DebugReload.reload(server: ctx.server)
    assert report.files.added == [path]
    assert [%{module: ^extra, action: :loaded}] = report.modules
    assert File.exists?(beam)

    File.rm!(path)
    assert {:ok, report} = DebugReload.reload(server: ctx.server)
    assert report.files.removed == [path]
    assert [%{module: ^extra, action: :deleted}] = report.modules
    refute File.exists?(beam)
    refute :code.is_loaded(extra)
  end

  test "a macro edit in the dependency recompiles the project's compile-time users, planned and done", ctx do
    path = Project.write(ctx.dep, "lib/lib.ex", lib_source(ctx.lib, 1, :two))
    user_file = Project.path(ctx.project, "lib/user.ex")

    assert {:ok, dry} = DebugReload.reload(server: ctx.server, dry_run: true)
    planned = Map.new(dry.plan.files, &{&1.path, &1.certainty})
    assert planned[path] == :definite
    assert planned[user_file] == :definite
    refute Map.has_key?(planned, Project.path(ctx.project, "lib/caller.ex"))

    assert {:ok, report} = DebugReload.reload(server: ctx.server)
    reloaded = for m <- report.modules, m.action in [:reloaded, :reinterpreted], do: m.module
    assert Enum.sort(reloaded) == Enum.sort([ctx.lib, ctx.user])
    assert ctx.user.tag() == :two
  end

  test "a compile error in the dependency is reported with its file and line; the old code runs", ctx do
    path = Project.write(ctx.dep, "lib/lib.ex", lib_source(ctx.lib, 2, :one) <> "def broken(, do: 1\n")

    assert {:error, report} = DebugReload.reload(server: ctx.server)
    assert report.error =~ "compile error in"
    assert [%{file: ^path, line: line}] = report.diagnostics
    assert is_integer(line)
    assert Task.await(Task.async(fn -> ctx.caller.value() end)) == 1

    Project.write(ctx.dep, "lib/lib.ex", lib_source(ctx.lib, 3, :one))
    assert {:ok, _} = DebugReload.reload(server: ctx.server)
    assert Task.await(Task.async(fn -> ctx.caller.value() end)) == 3
  end

  test "a change to the dependency's mix.exs needs a restart", ctx do
    File.write!(Path.join(ctx.dep.root, "mix.exs"), Project.mix_exs(ctx.dep.app, []) <> "\n# edited\n")
    assert {:error, report} = DebugReload.reload(server: ctx.server)
    assert report.error =~ "restart needed"
    assert report.error =~ "mix.exs"
  end
end
