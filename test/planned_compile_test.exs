defmodule DebugReload.PlannedCompileTest do
  # The planned compile: the worker compiles the plan's files alone, the
  # beams are the ones Mix writes, Mix's compile task catches up in the
  # background, and anything the plan cannot vouch for goes through Mix.
  use ExUnit.Case, async: false

  alias DebugReload.{Manifest, Report}
  alias DebugReload.Test.Project

  setup do
    n = System.unique_integer([:positive])
    ns = "Pc#{n}"
    mods = for name <- ~w(Value Macros Caller Shape Matcher), into: %{}, do: {name, Module.concat([ns, name])}

    project =
      Project.create(%{
        "lib/value.ex" => value_source(mods["Value"], 1),
        "lib/macros.ex" => macros_source(mods["Macros"], 10),
        "lib/caller.ex" => """
        defmodule #{inspect(mods["Caller"])} do
          require #{inspect(mods["Macros"])}
          def tenfold, do: #{inspect(mods["Macros"])}.ten()
        end
        """,
        "lib/shape.ex" => "defmodule #{inspect(mods["Shape"])} do\n  defstruct [:w]\nend\n",
        "lib/matcher.ex" => """
        defmodule #{inspect(mods["Matcher"])} do
          def width(%#{inspect(mods["Shape"])}{w: w}), do: w
        end
        """
      })

    Project.interpret([mods["Value"]])
    for m <- Map.values(mods) -- [mods["Value"]], do: Code.ensure_loaded!(m)

    name = :"planned_#{n}"
    start_supervised!({DebugReload, project: project.root, name: name, mix_env: "dev"}, id: name)
    Project.await_boot(name)
    on_exit(fn -> Project.cleanup(project, Map.values(mods)) end)
    %{project: project, mods: mods, server: name}
  end

  # Logger compiles metadata into the beam that depends on how it is
  # compiled: the beams differ unless compiled exactly as Mix does.
  defp value_source(mod, value) do
    """
    defmodule #{inspect(mod)} do
      require Logger
      def value do
        x = #{value}
        Logger.debug("value \#{x}")
        x
      end
    end
    """
  end

  defp macros_source(mod, value) do
    "defmodule #{inspect(mod)} do\n  defmacro ten, do: #{value}\nend\n"
  end

  # The source with a function calling `missing.nothing()`, a module no
  # file defines: the compiler's checks warn.
  defp calling(source, missing) do
    String.replace(source, ~r/end\n\z/, "  def call, do: #{inspect(missing)}.nothing()\nend\n")
  end

  # The source with an `@after_verify` callback that raises.
  defp refusing(source) do
    String.replace(source, "require Logger", """
    require Logger
      @after_verify __MODULE__
      def __after_verify__(_module), do: raise("refused by after_verify")
    """)
  end

  defp interpreted_value(mod) do
    parent = self()
    spawn(fn -> send(parent, {:value, mod.value()}) end)
    assert_receive {:value, value}, 5_000
    value
  end

  test "a body edit compiles the file alone, to the beam Mix writes, and Mix then has nothing to do", ctx do
    value = ctx.mods["Value"]
    Project.write(ctx.project, "lib/value.ex", value_source(value, 2))

    assert {:ok, report} = DebugReload.reload(server: ctx.server)
    assert report.compiler == :planned
    assert [%{module: ^value, action: :reinterpreted}] = report.modules
    assert interpreted_value(value) == 2
    assert [%{module: ^value, action: :reload}] = report.plan.modules

    :ok = DebugReload.await_sync(ctx.server)
    # Mix's catch-up compile wrote the same bytes the reload loaded.
    assert :sys.get_state(ctx.server).stray_beams == %{}
    {output, 0} = Project.mix(ctx.project, ["compile", "--verbose"])
    refute output =~ "Compil"

    # And those bytes are what `mix compile` on the command line writes
    # (where Logger runs, so Mix compiles its calls with the application).
    beam = Path.join(ctx.project.ebin, "#{value}.beam")
    reloaded = File.read!(beam)
    {_, 0} = Project.mix(ctx.project, ["compile", "--force"])
    assert File.read!(beam) == reloaded
  end

  # Mix 1.15 and later need no running Logger (see Remote.start_silent_logger/0).
  @tag :elixir_1_14_only
  test "the worker runs Logger, as `mix compile` does, with no backend whatever the config says", ctx do
    # Its output would reach the debugged VM's standard I/O.
    config = Path.join(ctx.project.root, "config/config.exs")
    File.mkdir_p!(Path.dirname(config))
    File.write!(config, "import Config\nconfig :logger, backends: [:console], level: :debug\n")
    stop_supervised!(ctx.server)
    start_supervised!({DebugReload, project: ctx.project.root, name: ctx.server, mix_env: "dev"})
    Project.await_boot(ctx.server)

    Project.write(ctx.project, "lib/value.ex", value_source(ctx.mods["Value"], 4))
    assert {:ok, _report} = DebugReload.reload(server: ctx.server)
    assert interpreted_value(ctx.mods["Value"]) == 4

    peer = :sys.get_state(:sys.get_state(ctx.server).worker).peer
    assert is_pid(:peer.call(peer, Process, :whereis, [Logger]))
    assert :peer.call(peer, :gen_event, :which_handlers, [Logger]) == [Logger.Config]
  end

  test "Mix catches up on a same-size edit saved within the second of its last compile", ctx do
    layout = %{
      app: ctx.project.app,
      root: ctx.project.root,
      source_dirs: [],
      ebin: ctx.project.ebin,
      deps: []
    }

    manifest = Manifest.elixir_manifest(layout)
    path = Project.path(ctx.project, "lib/value.ex")
    digest = fn -> manifest_digest(ctx.project.root, layout, path) end
    before = digest.()

    # Same size, and dated in the manifest's second: by mtime and size,
    # which is all Mix 1.14 compares, the file did not change.
    Project.write(ctx.project, "lib/value.ex", value_source(ctx.mods["Value"], 7))
    {:ok, %{mtime: compiled_at}} = File.stat(manifest, time: :posix)
    File.touch!(path, compiled_at)

    assert {:ok, %{compiler: :planned}} = DebugReload.reload(server: ctx.server)
    assert interpreted_value(ctx.mods["Value"]) == 7
    :ok = DebugReload.await_sync(ctx.server)

    # Mix's catch-up compiled the new text: its manifest has the new digest.
    refute digest.() == before
    assert :sys.get_state(ctx.server).stray_beams == %{}
  end

  test "Mix's compile task sees a same-size edit saved within the second of its last compile", ctx do
    stop_supervised!(ctx.server)

    start_supervised!(
      {DebugReload, project: ctx.project.root, name: ctx.server, mix_env: "dev", compile: :mix}
    )

    Project.await_boot(ctx.server)
    manifest = Manifest.elixir_manifest(%{ebin: ctx.project.ebin})

    Project.write(ctx.project, "lib/value.ex", value_source(ctx.mods["Value"], 8))
    {:ok, %{mtime: compiled_at}} = File.stat(manifest, time: :posix)
    File.touch!(Project.path(ctx.project, "lib/value.ex"), compiled_at)

    assert {:ok, %{compiler: :mix}} = DebugReload.reload(server: ctx.server)
    assert interpreted_value(ctx.mods["Value"]) == 8
  end

  defp manifest_digest(root, layout, path) do
    {:ok, manifest} = Manifest.read(root, [layout])
    Enum.find_value(manifest.sources, &(&1.path == path && &1.digest))
  end

  test "a macro edit compiles the macro module and its compile-time users", ctx do
    Project.write(ctx.project, "lib/macros.ex", macros_source(ctx.mods["Macros"], 20))

    assert {:ok, report} = DebugReload.reload(server: ctx.server)
    assert report.compiler == :planned
    assert ctx.mods["Caller"].tenfold() == 20
    reloaded = for %{action: :reloaded, module: m} <- report.modules, do: m
    assert ctx.mods["Caller"] in reloaded
  end

  test "a struct change that recompiles its users goes through Mix's compile task", ctx do
    shape = ctx.mods["Shape"]
    Project.write(ctx.project, "lib/shape.ex", "defmodule #{inspect(shape)} do\n  defstruct [:w, :h]\nend\n")

    assert {:ok, report} = DebugReload.reload(server: ctx.server)
    assert report.compiler == :mix
    assert Map.keys(struct(shape)) |> Enum.sort() == [:__struct__, :h, :w]
    assert ctx.mods["Matcher"].width(struct(shape, w: 3)) == 3
  end

  test "compile: :mix always runs Mix's compile task", ctx do
    stop_supervised!(ctx.server)

    start_supervised!(
      {DebugReload, project: ctx.project.root, name: ctx.server, mix_env: "dev", compile: :mix}
    )

    Project.write(ctx.project, "lib/value.ex", value_source(ctx.mods["Value"], 3))

    assert {:ok, %{compiler: :mix}} = DebugReload.reload(server: ctx.server)
    assert interpreted_value(ctx.mods["Value"]) == 3
  end

  test "saves while Mix catches up: every reload runs the last saved text", ctx do
    value = ctx.mods["Value"]

    for v <- 2..6 do
      Project.write(ctx.project, "lib/value.ex", value_source(value, v))
      assert {:ok, _report} = DebugReload.reload(server: ctx.server)
      assert interpreted_value(value) == v
    end

    :ok = DebugReload.await_sync(ctx.server)
    assert {:ok, %{status: :noop}} = DebugReload.reload(server: ctx.server)
  end

  test "the new code loads while the compiler checks it, and the checks' warnings reach the report", ctx do
    value = ctx.mods["Value"]
    missing = Module.concat(value, Missing)

    Project.write(
      ctx.project,
      "lib/value.ex",
      calling(value_source(value, 2), missing)
    )

    assert {:ok, report} = DebugReload.reload(server: ctx.server)
    # Announced: the load waited for the checks before it committed.
    assert is_integer(report.timings[:checks_us])
    assert report.timings.checks_us <= report.timings.load_us
    # The undefined call is found by the checks, after the beams were ready.
    assert [%{severity: :warning, message: message}] = report.diagnostics
    assert message =~ "#{inspect(missing)}.nothing/0 is undefined"
    assert interpreted_value(value) == 2
    assert Report.summary(report) =~ "checks"
  end

  test "an @after_verify callback that raises fails the compile: the load rolls back", ctx do
    value = ctx.mods["Value"]
    beam = Path.join(ctx.project.ebin, "#{value}.beam")
    before = File.read!(beam)
    :ok = :int.break(value, 4)
    on_exit(fn -> :int.no_break(value) end)
    breakpoints = :int.all_breaks(value)

    Project.write(
      ctx.project,
      "lib/value.ex",
      refusing(value_source(value, 2))
    )

    assert {:error, report} = DebugReload.reload(server: ctx.server)
    assert report.compiler == :planned
    assert report.error =~ "rolled back"

    assert report.error =~
             ~r"lib/value.ex:\d+: the compiler crashed: \*\* \(RuntimeError\) refused by after_verify"

    assert [%{severity: :error}] = report.diagnostics
    # The new code was loaded while the checks ran, and taken back.
    assert [%{module: ^value, action: :rolled_back}] = report.modules
    assert :int.all_breaks(value) == breakpoints
    :ok = :int.no_break(value)
    assert interpreted_value(value) == 1
    assert File.read!(beam) == before

    Project.write(ctx.project, "lib/value.ex", value_source(value, 3))
    assert {:ok, _report} = DebugReload.reload(server: ctx.server)
    assert interpreted_value(value) == 3
  end

  test "under Mix's compile task too, a raising @after_verify rejects the edit; the next reload works", ctx do
    stop_supervised!(ctx.server)

    start_supervised!(
      {DebugReload, project: ctx.project.root, name: ctx.server, mix_env: "dev", compile: :mix}
    )

    value = ctx.mods["Value"]
    Project.write(ctx.project, "lib/value.ex", refusing(value_source(value, 2)))

    assert {:error, report} = DebugReload.reload(server: ctx.server)
    assert report.compiler == :mix
    assert report.error =~ "compile worker failed"
    assert report.error =~ "@after_verify"
    assert interpreted_value(value) == 1

    Project.write(ctx.project, "lib/value.ex", value_source(value, 3))
    assert {:ok, %{compiler: :mix}} = DebugReload.reload(server: ctx.server)
    assert interpreted_value(value) == 3
  end

  test "a project whose warnings are errors is not loaded before the checks; a warning rejects the edit" do
    mod = Module.concat(["PcStrict#{System.unique_integer([:positive])}", "Value"])
    project = Project.create(%{"lib/value.ex" => value_source(mod, 1)}, compile: false)
    mix_exs = Project.mix_exs(project.app, [])

    Project.write(
      project,
      "mix.exs",
      String.replace(mix_exs, "deps: []", "deps: [], elixirc_options: [warnings_as_errors: true]")
    )

    {output, 0} = Project.mix(project, ["compile"])
    refute output =~ "warning"
    Code.prepend_path(project.ebin)
    Project.interpret([mod])
    on_exit(fn -> Project.cleanup(project, [mod]) end)

    name = :"planned_strict_#{System.unique_integer([:positive])}"
    start_supervised!({DebugReload, project: project.root, name: name, mix_env: "dev"}, id: name)
    Project.await_boot(name)

    Project.write(project, "lib/value.ex", value_source(mod, 2))
    assert {:ok, report} = DebugReload.reload(server: name)
    assert report.compiler == :planned
    refute Map.has_key?(report.timings, :checks_us)
    assert interpreted_value(mod) == 2

    Project.write(
      project,
      "lib/value.ex",
      calling(value_source(mod, 3), Module.concat(mod, Missing))
    )

    assert {:error, report} = DebugReload.reload(server: name)
    assert Enum.any?(report.diagnostics, &(&1.message =~ "Missing.nothing/0 is undefined"))
    assert interpreted_value(mod) == 2
  end

  test "a compile error leaves the old code running and nothing written", ctx do
    value = ctx.mods["Value"]
    beam = Path.join(ctx.project.ebin, "#{value}.beam")
    before = File.read!(beam)
    Project.write(ctx.project, "lib/value.ex", "defmodule #{inspect(value)} do\n  def value, do: \nend\n")

    assert {:error, report} = DebugReload.reload(server: ctx.server)
    assert report.compiler == :planned
    assert report.error =~ "lib/value.ex"
    assert File.read!(beam) == before
    assert interpreted_value(value) == 1
  end

  test "an edited file that starts defining another file's module is rejected, as under Mix", ctx do
    value = ctx.mods["Value"]
    matcher = File.read!(Path.join(ctx.project.root, "lib/matcher.ex"))
    Project.write(ctx.project, "lib/matcher.ex", matcher <> value_source(value, 7))

    assert {:error, report} = DebugReload.reload(server: ctx.server)
    assert report.error =~ "defined in both"
    assert interpreted_value(value) == 1
  end

  test "Mix's catch-up leaves the edited modules unloaded in the worker; their users still compile",
       ctx do
    macros = ctx.mods["Macros"]
    Project.write(ctx.project, "lib/macros.ex", macros_source(macros, 30))
    assert {:ok, %{compiler: :planned}} = DebugReload.reload(server: ctx.server)
    :ok = DebugReload.await_sync(ctx.server)

    worker = :sys.get_state(ctx.server).worker
    peer = :sys.get_state(worker).peer
    refute :peer.call(peer, :erlang, :module_loaded, [macros])

    # A compile-time user of the unloaded module loads it from the ebin.
    caller = ctx.mods["Caller"]

    Project.write(ctx.project, "lib/caller.ex", """
    defmodule #{inspect(caller)} do
      require #{inspect(macros)}
      def tenfold, do: #{inspect(macros)}.ten() + 1
    end
    """)

    assert {:ok, %{compiler: :planned}} = DebugReload.reload(server: ctx.server)
    assert caller.tenfold() == 31
  end
end
