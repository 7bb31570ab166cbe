defmodule DebugReload.PlannerTest do
  @moduledoc """
  The reload plan on real projects compiled by real `mix compile`: the dry
  run and the report of a reload, umbrella apps, path dependencies and
  Erlang sources, and what happens when the manifests cannot be read.
  """
  use ExUnit.Case, async: false

  alias DebugReload.{DAP, Manifest, Planner}
  alias DebugReload.Test.{DapCheck, Project}

  defp web_project(ns) do
    Project.create(%{
      "lib/web.ex" => """
      defmodule #{ns}.Web do
        defmacro __using__(_) do
          quote do
            def web?, do: true
          end
        end

        def helper, do: 1
      end
      """,
      "lib/router.ex" => """
      defmodule #{ns}.Router do
        use #{ns}.Web
        def route, do: :ok
      end
      """,
      "lib/page.ex" => """
      defmodule #{ns}.Page do
        def show, do: #{ns}.Web.helper()
      end
      """
    })
  end

  defp layout(project, deps \\ []) do
    %{
      app: project.app,
      root: project.root,
      source_dirs: [Path.join(project.root, "lib")],
      ebin: project.ebin,
      deps: deps
    }
  end

  defp snapshot(project) do
    for path <- Path.wildcard(Path.join(project.root, "_build/**"), match_dot: true),
        File.regular?(path),
        into: %{} do
      {path, {File.stat!(path).mtime, File.read!(path)}}
    end
  end

  describe "a reload session" do
    setup do
      n = System.unique_integer([:positive])
      ns = "Plan#{n}"
      project = web_project(ns)
      modules = Enum.map(~w(Web Router Page), &Module.concat(ns, &1))
      Project.interpret(modules)
      name = :"plan_manager_#{n}"
      start_supervised!({DebugReload, project: project.root, name: name, mix_env: "dev"})
      Project.await_boot(name)
      on_exit(fn -> Project.cleanup(project, modules) end)
      %{project: project, ns: ns, server: name}
    end

    test "a dry run explains the plan and touches nothing", %{project: project, ns: ns, server: server} do
      Project.write(
        project,
        "lib/web.ex",
        project
        |> Project.path("lib/web.ex")
        |> File.read!()
        |> String.replace("def helper, do: 1", "def helper, do: 2")
      )

      before = snapshot(project)

      assert {:ok, report} = DebugReload.reload(server: server, dry_run: true)
      assert report.status == :dry_run
      assert snapshot(project) == before

      router = Project.path(project, "lib/router.ex")
      assert Enum.map(report.plan.files, & &1.path) == [router, Project.path(project, "lib/web.ex")]
      assert Enum.all?(report.plan.files, &(&1.certainty == :definite))

      assert Enum.find(report.plan.files, &(&1.path == router)).explanation ==
               "lib/router.ex ← `#{ns}.Router` ← compile-time (`use #{ns}.Web` at lib/router.ex:2) ← `#{ns}.Web` changed (lib/web.ex)"

      # Page only calls Web at runtime: recompiled only if Web's exports change.
      page = Enum.find(report.plan.modules, &(&1.name == "#{ns}.Page"))
      assert page == nil or page.certainty == :conditional
      assert Enum.any?(report.modules, &(&1.module == Module.concat(ns, "Router") and &1.action == :planned))
      assert DebugReload.Report.summary(report) =~ "would recompile 2 files"
    end

    test "a reload reports the resolved plan; an identical beam is not reloaded",
         %{project: project, ns: ns, server: server} do
      Project.write(
        project,
        "lib/web.ex",
        project
        |> Project.path("lib/web.ex")
        |> File.read!()
        |> String.replace("def helper, do: 1", "def helper, do: 2")
      )

      assert {:ok, report} = DebugReload.reload(server: server)
      assert report.plan.resolved
      actions = Map.new(report.plan.modules, &{&1.name, &1.action})
      assert actions["#{ns}.Web"] == :reload
      # Recompiled because it uses Web at compile time, but to the same code.
      assert actions["#{ns}.Router"] == :unchanged
      refute Map.has_key?(actions, "#{ns}.Page")
      # Only Web is re-interpreted: Router's new beam is the same code.
      assert [%{module: web, action: :reinterpreted}] = DebugReload.Report.reloaded_modules(report)
      assert web == Module.concat(ns, "Web")

      # The graph follows the compile: the next plan starts from it.
      Project.write(project, "lib/page.ex", "defmodule #{ns}.Page do\n  def show, do: :changed\nend\n")
      assert {:ok, dry} = DebugReload.reload(server: server, dry_run: true)
      assert Enum.map(dry.plan.files, & &1.path) == [Project.path(project, "lib/page.ex")]
    end

    test "the DAP body of a dry run carries the plan and validates", %{project: project, server: server} do
      Project.write(
        project,
        "lib/web.ex",
        project
        |> Project.path("lib/web.ex")
        |> File.read!()
        |> String.replace("def helper, do: 1", "def helper, do: 3")
      )

      request = %{
        "seq" => 3,
        "type" => "request",
        "command" => "reloadCode",
        "arguments" => %{"dryRun" => true}
      }

      {response, _events} = DAP.handle_request(request, server: server)

      assert %{"plan" => %{"files" => [_, _], "resolved" => false}} = response["body"]
      DapCheck.validate!([{"Response", Map.put(response, "seq", 1), :reload_body}])
    end
  end

  describe "the plan's JSON" do
    test "the NIF's serde_json and the Elixir maps agree" do
      ns = "PlanJson#{System.unique_integer([:positive])}"
      project = web_project(ns)
      on_exit(fn -> File.rm_rf(project.root) end)
      planner = Planner.new(project.root, [layout(project)])
      changes = %{changed: [Project.path(project, "lib/web.ex")], added: [], removed: []}

      {:ok, from_nif} = planner |> Planner.plan(changes, format: :json) |> DebugReload.Native.decode_json()
      assert from_nif == planner |> Planner.plan(changes) |> Planner.to_map()
      assert [%{"why" => [%{"subjectKind" => "file", "relation" => "defines"} | _]} | _] = from_nif["files"]
    end
  end

  describe "requests" do
    test "paths the project does not compile are reported, not ignored" do
      project = web_project("PlanUnknown#{System.unique_integer([:positive])}")
      on_exit(fn -> File.rm_rf(project.root) end)
      planner = Planner.new(project.root, [layout(project)])

      plan =
        Planner.plan(planner, %{
          changed: ["/elsewhere/x.ex", Project.path(project, "lib/notes.txt")],
          added: [Project.path(project, "lib/new.ex")],
          removed: [Project.path(project, "lib/never.ex")]
        })

      assert Enum.map(plan.unknown, & &1.path) == [
               "/elsewhere/x.ex",
               Project.path(project, "lib/notes.txt"),
               Project.path(project, "lib/never.ex")
             ]

      assert [%{path: path, explanation: "lib/new.ex is new"}] = plan.files
      assert path == Project.path(project, "lib/new.ex")
    end

    test "resolving when Mix compiled nothing gives an empty plan" do
      project = web_project("PlanNothing#{System.unique_integer([:positive])}")
      on_exit(fn -> File.rm_rf(project.root) end)
      planner = Planner.new(project.root, [layout(project)])
      changes = %{changed: [Project.path(project, "lib/web.ex")], added: [], removed: []}
      assert [_, _] = Planner.plan(planner, changes).files
      assert {%{resolved: true, files: [], modules: []}, ^planner} = Planner.resolve(planner, changes, %{})
    end

    test "with no files, the files changed since the last compile" do
      project = web_project("PlanSince#{System.unique_integer([:positive])}")
      on_exit(fn -> File.rm_rf(project.root) end)
      planner = Planner.new(project.root, [layout(project)])
      assert Planner.changed_since_compile(planner) == %{changed: [], added: [], removed: []}

      # Same size, so only the digest tells (the manifest is back-dated as
      # a reload would, since the edit may fall in the compile's second).
      path = Project.path(project, "lib/router.ex")
      File.write!(path, String.replace(File.read!(path), ":ok", ":no"))
      File.touch!(Manifest.elixir_manifest(layout(project)), System.os_time(:second) - 5)
      Project.write(project, "lib/extra.ex", "defmodule Extra#{System.unique_integer([:positive])} do\nend\n")
      File.rm!(Project.path(project, "lib/page.ex"))

      assert Planner.changed_since_compile(planner) == %{
               changed: [path],
               added: [Project.path(project, "lib/extra.ex")],
               removed: [Project.path(project, "lib/page.ex")]
             }
    end

    test "scripts are nodes with their modules; mix.exs changes plan Mix.Project's users" do
      ns = "PlanScript#{System.unique_integer([:positive])}"

      project =
        Project.create(%{
          "lib/version.ex" =>
            "defmodule #{ns}.Version do\n  @v Mix.Project.config()[:version]\n  def v, do: @v\nend\n",
          "lib/other.ex" => "defmodule #{ns}.Other do\n  def o, do: 1\nend\n"
        })

      on_exit(fn -> File.rm_rf(project.root) end)
      {:ok, manifest} = Manifest.read(project.root, [layout(project)])
      mix_exs = Enum.find(manifest.sources, &(&1.kind == :script))
      assert mix_exs.path == Project.path(project, "mix.exs")
      assert [_mix_project_module] = mix_exs.modules

      plan =
        Planner.plan(Planner.new(project.root, [layout(project)]), %{
          changed: [mix_exs.path],
          added: [],
          removed: []
        })

      assert Enum.map(plan.files, & &1.path) == [Project.path(project, "lib/version.ex")]
      assert hd(plan.files).explanation =~ "`Mix.Project` is stale (mix.exs changed)"
      assert Enum.any?(plan.warnings, &(&1 =~ "mix.exs is a script"))
    end
  end

  describe "reading manifests" do
    test "Mix's own reader reads the manifest, and decoding the file agrees with it" do
      project = web_project("PlanReader#{System.unique_integer([:positive])}")
      on_exit(fn -> File.rm_rf(project.root) end)
      path = Manifest.elixir_manifest(layout(project))

      # The shape the adapter relies on, on the Elixir that runs.
      assert {modules, sources} = Mix.Compilers.Elixir.read_manifest(path)
      assert modules not in [[], %{}] and sources not in [[], %{}]

      {:ok, manifest} = Manifest.read(project.root, [layout(project)])
      {:ok, _sources, decoded} = Manifest.decode(File.read!(path))
      assert Enum.sort(Enum.map(manifest.modules, &Map.delete(&1, :app))) == Enum.sort(decoded)
      assert length(decoded) >= 2
    end
  end

  describe "manifests it cannot read" do
    setup do
      project = web_project("PlanBad#{System.unique_integer([:positive])}")
      on_exit(fn -> File.rm_rf(project.root) end)
      %{project: project, manifest: Manifest.elixir_manifest(layout(project))}
    end

    test "a corrupt manifest is a clear error and the plan falls back to the changed files",
         %{project: project, manifest: manifest} do
      File.write!(manifest, "not an erlang term")
      assert {:error, message} = Manifest.read(project.root, [layout(project)])
      assert message =~ "cannot use the compile manifest #{manifest}"
      assert message =~ "truncated or corrupt"

      planner = Planner.new(project.root, [layout(project)])
      web = Project.path(project, "lib/web.ex")
      plan = Planner.plan(planner, %{changed: [web], added: [], removed: []})
      assert Enum.map(plan.files, & &1.path) == [web]
      assert [warning] = plan.warnings
      assert warning =~ "planned the changed files only" and warning =~ "truncated or corrupt"

      assert {:ok, %{"files" => [_]}} =
               planner
               |> Planner.plan(%{changed: [web], added: [], removed: []}, format: :json)
               |> DebugReload.Native.decode_json()
    end

    test "an unknown version or record layout is named", %{project: project, manifest: manifest} do
      File.write!(manifest, :erlang.term_to_binary({99, [], []}))
      assert {:error, message} = Manifest.read(project.root, [layout(project)])
      assert message =~ "manifest version 99 is not one this version of debug_reload knows"

      File.write!(
        manifest,
        :erlang.term_to_binary({14, [{:module, Foo, :module, ["lib/foo.ex"], :oops, false}], []})
      )

      assert {:error, message} = Manifest.read(project.root, [layout(project)])
      assert message =~ "manifest version 14: unexpected module record for Foo"

      File.write!(manifest, :erlang.term_to_binary([5 | []]))
      assert {:error, message} = Manifest.read(project.root, [layout(project)])
      assert message =~ "Elixir 1.10 or older"
    end

    test "a later Elixir's layout (maps of records, split warnings) is read" do
      source =
        {:source, 120, 1_700_000_000, <<1::128>>, [Kernel, A], [B], [C], [{:my_app, [:key], nil}],
         [{"priv/data.txt", {1, 2}, <<2::128>>}], [], [], [D]}

      module = {:module, :module, ["lib/d.ex"], <<3::128>>, false, 1_700_000_000}
      term = {29, %{D => module}, %{"lib/d.ex" => source}, %{}, [], nil, nil, nil, 0, 0, {%{}, %{}}}
      assert {:ok, [decoded], [record]} = Manifest.decode(:erlang.term_to_binary(term))

      assert %{path: "lib/d.ex", modules: [D], compile: [Kernel, A], export: [B], runtime: [C]} = decoded
      assert decoded.external == ["priv/data.txt"] and decoded.compile_env == [:my_app]
      assert record == %{name: D, export: <<3::128>>, recompile: false}
    end
  end

  describe "beyond one app" do
    test "an umbrella: a macro change in one app recompiles its users in another, as mix does" do
      root = Path.join(System.tmp_dir!(), "debug_reload_umbrella_#{System.unique_integer([:positive])}")
      on_exit(fn -> File.rm_rf(root) end)
      ns = "PlanUmb#{System.unique_integer([:positive])}"

      write_all(root, %{
        "mix.exs" =>
          "defmodule #{ns}.Umbrella.MixProject do\n  use Mix.Project\n  def project, do: [apps_path: \"apps\", version: \"0.1.0\", deps: []]\nend\n",
        "apps/core/mix.exs" => child_mix(ns, :core, []),
        "apps/web/mix.exs" => child_mix(ns, :web, [{:core, in_umbrella: true}]),
        "apps/core/lib/mac.ex" => "defmodule #{ns}.Core.Mac do\n  defmacro m, do: 1\n  def v, do: 1\nend\n",
        "apps/core/lib/b.ex" => "defmodule #{ns}.Core.B do\n  def b, do: #{ns}.Core.Mac.v()\nend\n",
        "apps/web/lib/c.ex" =>
          "defmodule #{ns}.Web.C do\n  require #{ns}.Core.Mac\n  def c, do: #{ns}.Core.Mac.m()\nend\n",
        "apps/web/lib/d.ex" => "defmodule #{ns}.Web.D do\n  def d, do: #{ns}.Core.B.b()\nend\n",
        # Relative to the child app, where Mix compiles it.
        "apps/web/priv/t.txt" => "t",
        "apps/web/lib/e.ex" =>
          "defmodule #{ns}.Web.E do\n  @external_resource \"priv/t.txt\"\n  def e, do: #{inspect("t")}\nend\n"
      })

      {_, 0} = mix(root, ["compile"])

      layouts =
        for {app, deps} <- [core: [], web: [:core]] do
          app_root = Path.join(root, "apps/#{app}")

          %{
            app: app,
            root: app_root,
            source_dirs: [Path.join(app_root, "lib")],
            ebin: Path.join(root, "_build/dev/lib/#{app}/ebin"),
            deps: deps
          }
        end

      planner = Planner.new(root, layouts)
      mac = Path.join(root, "apps/core/lib/mac.ex")
      File.write!(mac, String.replace(File.read!(mac), "do: 1\n  def", "do: 2\n  def"))
      changes = %{changed: [mac], added: [], removed: []}
      plan = Planner.plan(planner, changes)

      assert paths(plan, :definite) == [mac, Path.join(root, "apps/web/lib/c.ex")]

      assert Enum.find(plan.files, &(&1.app == :web)).explanation =~
               "compile-time (`require #{ns}.Core.Mac` at apps/web/lib/c.ex:2)"

      # A child app's resources are the child's, wherever Mix runs.
      resource = Path.join(root, "apps/web/priv/t.txt")
      assert Planner.external_resources(planner) == [resource]
      assert Planner.declaring(planner, resource) == [Path.join(root, "apps/web/lib/e.ex")]

      assert paths(Planner.plan(planner, %{changed: [resource], added: [], removed: []}), :definite) ==
               [Path.join(root, "apps/web/lib/e.ex")]

      # Mix compares manifest mtimes in whole seconds: back-date both apps'
      # manifests, or a compile within the same second as the first one
      # hides core's change from web (failed once in a clean-clone run).
      # The resource, unchanged, goes back further, or it would look newer.
      File.touch!(resource, System.os_time(:second) - 10)

      for app <- ["core", "web"],
          do:
            File.touch!(
              Path.join(root, "_build/dev/lib/#{app}/.mix/compile.elixir"),
              System.os_time(:second) - 5
            )

      {output, 0} = mix(root, ["compile", "--verbose"])

      assert compiled_by_app(output, root) ==
               paths(Planner.resolve(planner, changes, %{}) |> elem(0), :definite)
    end

    test "a path dependency's edit is planned like the project's own" do
      base = Path.join(System.tmp_dir!(), "debug_reload_pathdep_#{System.unique_integer([:positive])}")
      on_exit(fn -> File.rm_rf(base) end)
      ns = "PlanDep#{System.unique_integer([:positive])}"

      write_all(base, %{
        "dep/mix.exs" =>
          "defmodule #{ns}.Dep.MixProject do\n  use Mix.Project\n  def project, do: [app: :plan_dep, version: \"0.1.0\", deps: []]\nend\n",
        "app/mix.exs" =>
          "defmodule #{ns}.App.MixProject do\n  use Mix.Project\n  def project, do: [app: :plan_app, version: \"0.1.0\", deps: [{:plan_dep, path: \"../dep\"}]]\nend\n",
        "dep/lib/mac.ex" => "defmodule #{ns}.Dep.Mac do\n  defmacro m, do: 1\n  def v, do: 1\nend\n",
        "app/lib/c.ex" =>
          "defmodule #{ns}.App.C do\n  require #{ns}.Dep.Mac\n  def c, do: #{ns}.Dep.Mac.m()\nend\n",
        "app/lib/d.ex" => "defmodule #{ns}.App.D do\n  def d, do: #{ns}.Dep.Mac.v()\nend\n"
      })

      app_root = Path.join(base, "app")
      {_, 0} = mix(app_root, ["compile"])
      build = Path.join(app_root, "_build/dev/lib")

      layouts = [
        %{
          app: :plan_app,
          root: app_root,
          source_dirs: [Path.join(app_root, "lib")],
          ebin: Path.join(build, "plan_app/ebin"),
          deps: [:plan_dep]
        },
        %{
          app: :plan_dep,
          root: Path.join(base, "dep"),
          source_dirs: [Path.join(base, "dep/lib")],
          ebin: Path.join(build, "plan_dep/ebin"),
          deps: []
        }
      ]

      planner = Planner.new(app_root, layouts)
      mac = Path.join(base, "dep/lib/mac.ex")
      File.write!(mac, String.replace(File.read!(mac), "defmacro m, do: 1", "defmacro m, do: 2"))
      plan = Planner.plan(planner, %{changed: [mac], added: [], removed: []})
      assert paths(plan, :definite) == [Path.join(app_root, "lib/c.ex"), mac]

      # Mix compares manifest mtimes in whole seconds: the dep's must look
      # older than the edit, and the app's older than the dep's next one,
      # or a first compile within the same second hides the change.
      for app <- ["plan_dep", "plan_app"],
          do: File.touch!(Path.join(build, "#{app}/.mix/compile.elixir"), System.os_time(:second) - 5)

      {output, 0} = mix(app_root, ["compile", "--verbose"])
      # Mix does not pass --verbose to dependencies: it only counts them.
      assert output =~ ~r/==> plan_dep\nCompiling 1 file \(\.ex\)/
      assert output =~ ~r/==> plan_app\nCompiling 1 file \(\.ex\)\nCompiled lib\/c\.ex/
    end

    test "Erlang sources: headers, and the stale Erlang modules of the app, as mix does" do
      ns = "PlanErl#{System.unique_integer([:positive])}"
      tag = String.downcase(ns)

      project =
        Project.create(%{
          "src/#{tag}_e1.erl" =>
            "-module(#{tag}_e1).\n-include(\"#{tag}.hrl\").\n-export([f/0]).\nf() -> ?X.\n",
          "src/#{tag}_e2.erl" => "-module(#{tag}_e2).\n-export([g/0]).\ng() -> 2.\n",
          "include/#{tag}.hrl" => "-define(X, 1).\n",
          "lib/f.ex" => "defmodule #{ns}.F do\n  def x, do: :#{tag}_e1.f()\nend\n",
          "lib/g.ex" => "defmodule #{ns}.G do\n  @v :#{tag}_e2.g()\n  def y, do: @v\nend\n"
        })

      on_exit(fn -> File.rm_rf(project.root) end)
      dirs = Enum.map(~w(lib src include), &Project.path(project, &1))
      planner = Planner.new(project.root, [%{layout(project) | source_dirs: dirs}])
      header = Project.write(project, "include/#{tag}.hrl", "-define(X, 2).\n")
      plan = Planner.plan(planner, %{changed: [header], added: [], removed: []})

      assert paths(plan, :definite) == [
               Project.path(project, "lib/g.ex"),
               Project.path(project, "src/#{tag}_e1.erl")
             ]

      beam = Path.join(project.ebin, "#{tag}_e1.beam")
      File.touch!(beam, System.os_time(:second) - 5)
      File.touch!(Manifest.elixir_manifest(layout(project)), System.os_time(:second) - 5)
      {output, 0} = Project.mix(project, ["compile", "--verbose"])
      assert compiled(output, project.root) == paths(plan, :definite)
    end
  end

  defp child_mix(ns, app, deps) do
    """
    defmodule #{ns}.#{Macro.camelize(to_string(app))}.MixProject do
      use Mix.Project

      def project do
        [app: #{inspect(app)}, version: "0.1.0", build_path: "../../_build", deps_path: "../../deps",
         lockfile: "../../mix.lock", deps: #{inspect(deps)}]
      end
    end
    """
  end

  defp write_all(root, files) do
    for {rel, text} <- files do
      path = Path.join(root, rel)
      File.mkdir_p!(Path.dirname(path))
      File.write!(path, text)
    end
  end

  defp mix(dir, args) do
    System.cmd("mix", args,
      cd: dir,
      stderr_to_stdout: true,
      env: [{"MIX_ENV", "dev"}, {"MIX_EXS", nil}, {"MIX_BUILD_PATH", nil}]
    )
  end

  defp paths(plan, certainty) do
    for(%{certainty: ^certainty, path: path} <- plan.files, do: path) |> Enum.sort()
  end

  defp compiled(output, root) do
    ~r/^Compiled (\S+)$/m
    |> Regex.scan(output, capture: :all_but_first)
    |> Enum.map(fn [rel] -> Path.join(root, rel) end)
    |> Enum.sort()
  end

  # Umbrella output: "==> app" sections, paths relative to each app.
  defp compiled_by_app(output, root) do
    output
    |> String.split(~r/^==> /m, trim: true)
    |> Enum.flat_map(fn section ->
      [app | _] = String.split(section, "\n", parts: 2)
      compiled(section, Path.join(root, "apps/#{String.trim(app)}"))
    end)
    |> Enum.sort()
  end
end
