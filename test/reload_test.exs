defmodule DebugReload.ReloadTest do
  # Real :int, real files, real compilation in a worker node.
  use ExUnit.Case, async: false

  alias DebugReload.Test.Project

  setup context do
    n = System.unique_integer([:positive])
    ns = "Fx#{n}"

    mods = %{
      calc: Module.concat([ns, Calc]),
      server: Module.concat([ns, Server]),
      util: Module.concat([ns, Util])
    }

    project =
      Project.create(%{
        "lib/calc.ex" => calc_source(mods.calc, "a + b"),
        "lib/server.ex" => server_source(mods.server, mods.calc),
        "lib/util.ex" => util_source(mods.util, "1")
      })

    Project.interpret([mods.calc, mods.server])
    Code.ensure_loaded!(mods.util)

    name = :"manager_#{n}"

    start_supervised!(
      {DebugReload, project: project.root, name: name, mix_env: "dev", interpret: ["#{ns}.*"]}
    )

    on_exit(fn -> Project.cleanup(project, Map.values(mods) ++ Map.get(context, :extra_modules, [])) end)
    %{project: project, mods: mods, server: name, ns: ns}
  end

  def calc_source(mod, expr) do
    """
    defmodule #{inspect(mod)} do
      def add(a, b) do
        result = #{expr}
        result
      end

      def version, do: 1
    end
    """
  end

  def server_source(mod, calc) do
    """
    defmodule #{inspect(mod)} do
      use GenServer

      def start_link(arg), do: GenServer.start_link(__MODULE__, arg)

      @impl true
      def init(arg), do: {:ok, arg}

      @impl true
      def handle_call({:add, a, b}, _from, state) do
        value = #{inspect(calc)}.add(a, b)
        {:reply, value, state}
      end

      def handle_call(:tag, _from, state) do
        {:reply, :v1, state}
      end
    end
    """
  end

  def util_source(mod, value) do
    """
    defmodule #{inspect(mod)} do
      def value, do: #{value}
    end
    """
  end

  test "changed interpreted and native modules run their new code", %{project: p, mods: m, server: s} do
    assert m.calc.add(1, 2) == 3
    assert m.util.value() == 1

    Project.write(p, "lib/calc.ex", calc_source(m.calc, "a * b"))
    Project.write(p, "lib/util.ex", util_source(m.util, "2"))
    assert {:ok, report} = DebugReload.reload(server: s)

    assert report.status == :ok
    actions = Map.new(report.modules, &{&1.module, &1.action})
    assert actions[m.calc] == :reinterpreted
    assert actions[m.util] == :reloaded
    refute Map.has_key?(actions, m.server)
    assert m.calc.add(3, 4) == 12
    assert m.util.value() == 2
    assert m.calc in :int.interpreted()
    assert to_string(report) =~ ~r/Reloaded 2 of \d+ modules in \d+ ms/
  end

  test "a GenServer that already ran the module gets the new code", %{project: p, mods: m, server: s} do
    {:ok, pid} = m.server.start_link(:state)
    assert GenServer.call(pid, {:add, 2, 3}) == 5
    assert GenServer.call(pid, :tag) == :v1

    Project.write(p, "lib/calc.ex", calc_source(m.calc, "a - b"))
    Project.write(p, "lib/server.ex", server_source(m.server, m.calc) |> String.replace(":v1", ":v2"))
    assert {:ok, _report} = DebugReload.reload(server: s)

    assert GenServer.call(pid, {:add, 2, 3}) == -1
    assert GenServer.call(pid, :tag) == :v2
    assert Process.alive?(pid)
  end

  test "a process paused at a breakpoint survives, finishes on old code, then runs new code",
       %{project: p, mods: m, server: s} do
    :ok = :int.break(m.calc, 3)
    test = self()

    pid =
      spawn(fn ->
        send(test, {:first, m.calc.add(1, 2)})

        receive do
          :again -> send(test, {:second, m.calc.add(1, 2)})
        end
      end)

    assert {m.calc, 3} == Project.await_break(pid)
    # An idle manager listens to no interpreter event (each costs calls).
    assert live_subscribers() == []

    Project.write(p, "lib/calc.ex", calc_source(m.calc, "a * 10 + b"))
    assert {:ok, report} = DebugReload.reload(server: s)

    assert Process.alive?(pid)
    assert [%{pid: ^pid, module: mod, status: :paused_on_old_code}] = report.processes
    assert mod == m.calc
    assert {m.calc, 3} == Project.await_break(pid)
    assert [{{_, 3}, _}] = :int.all_breaks(m.calc)
    # While the process is on old code, the manager listens for it.
    assert [_relay] = live_subscribers()

    :ok = :int.delete_break(m.calc, 3)
    :int.continue(pid)
    assert_receive {:first, 3}, 5_000

    Project.await_no_pending(s)
    send(pid, :again)
    assert_receive {:second, 12}, 5_000
    assert live_subscribers() == []
  end

  # The interpreter server keeps subscribers that exited unlinked; only
  # live ones receive (and cost) its events.
  defp live_subscribers do
    {:state, _db, _procs, _breaks, _auto, _stack, subs} = :sys.get_state(:dbg_iserver)
    Enum.filter(subs, &Process.alive?/1)
  end

  test "breakpoints keep their options and still trigger", %{project: p, mods: m, server: s} do
    :ok = :int.break(m.calc, 3)
    :ok = :int.test_at_break(m.calc, 3, {__MODULE__, :always})
    :ok = :int.action_at_break(m.calc, 3, :disable)
    :ok = :int.break(m.calc, 4)
    :ok = :int.disable_break(m.calc, 4)
    before = :int.all_breaks(m.calc) |> Enum.sort()

    Project.write(p, "lib/calc.ex", calc_source(m.calc, "a + b + 100"))
    assert {:ok, report} = DebugReload.reload(server: s)
    assert Enum.sort(:int.all_breaks(m.calc)) == before
    assert Enum.map(report.breakpoints, & &1.status) == [:kept, :kept]

    test = self()
    pid = spawn(fn -> send(test, {:done, m.calc.add(1, 2)}) end)
    assert {m.calc, 3} == Project.await_break(pid)
    :int.continue(pid)
    assert_receive {:done, 103}, 5_000
  end

  def always(_bindings), do: true

  test "several interpreted modules edited at once: each gets its own new code and its own breakpoints",
       %{project: p, mods: m, server: s, ns: ns} do
    extra = for i <- 1..3, do: Module.concat([ns, "Many#{i}"])

    on_exit(fn ->
      for mod <- extra, do: if(mod in :int.interpreted(), do: :int.nn(mod))
      for mod <- extra, do: :code.purge(mod) && :code.delete(mod)
    end)

    for {mod, i} <- Enum.with_index(extra, 1),
        do: Project.write(p, "lib/many#{i}.ex", calc_source(mod, "a + b"))

    assert {:ok, _} = DebugReload.reload(server: s)
    assert Enum.all?(extra, &(&1 in :int.interpreted()))

    # Each module gets a different number of lines above its breakpoint.
    for mod <- [m.calc | extra], do: :ok = :int.break(mod, 3)

    for {mod, i} <- Enum.with_index([m.calc | extra]) do
      source =
        calc_source(mod, "a + b + #{i}")
        |> String.replace("  def add", String.duplicate("  @doc false\n", i) <> "  def add")

      Project.write(p, if(i == 0, do: "lib/calc.ex", else: "lib/many#{i}.ex"), source)
    end

    assert {:ok, report} = DebugReload.reload(server: s)
    assert length(for %{action: :reinterpreted} <- report.modules, do: 1) == 4

    for {mod, i} <- Enum.with_index([m.calc | extra]) do
      assert [{{^mod, line}, _}] = :int.all_breaks(mod)
      assert line == 3 + i
      test = self()
      pid = spawn(fn -> send(test, {:done, mod, mod.add(1, 1)}) end)
      assert {mod, 3 + i} == Project.await_break(pid)
      :int.continue(pid)
      assert_receive {:done, ^mod, value}, 5_000
      assert value == 2 + i
    end
  end

  test "breakpoints follow their statement when lines are inserted above", %{project: p, mods: m, server: s} do
    :ok = :int.break(m.calc, 3)
    :ok = :int.test_at_break(m.calc, 3, {__MODULE__, :always})

    edited = calc_source(m.calc, "a + b") |> String.replace("  def add", "  @doc false\n\n  def add")
    Project.write(p, "lib/calc.ex", edited)
    assert {:ok, report} = DebugReload.reload(server: s)

    assert [%{old_line: 3, new_line: 5, status: :moved, reason: reason}] = report.breakpoints
    assert reason =~ "moved"
    # Their time is reported apart, as a part of the load's.
    assert report.timings.breakpoints_us > 0 and report.timings.breakpoints_us <= report.timings.load_us
    assert [{{_, 5}, [:active, :enable, :null, {__MODULE__, :always}]}] = :int.all_breaks(m.calc)

    test = self()
    pid = spawn(fn -> send(test, {:done, m.calc.add(2, 2)}) end)
    assert {m.calc, 5} == Project.await_break(pid)
    :int.continue(pid)
    assert_receive {:done, 4}, 5_000
  end

  test "a syntax error loads nothing and keeps everything", %{project: p, mods: m, server: s} do
    {:ok, pid} = m.server.start_link(:state)
    assert GenServer.call(pid, {:add, 1, 1}) == 2
    :ok = :int.break(m.calc, 3)
    before = :int.all_breaks()

    Project.write(p, "lib/util.ex", util_source(m.util, "2"))

    Project.write(
      p,
      "lib/calc.ex",
      "defmodule #{inspect(m.calc)} do\n  def add(a, b) do\n    a +\n  end\nend\n"
    )

    assert {:error, report} = DebugReload.reload(server: s)

    assert report.status == :error
    assert [%{severity: :error, file: file, line: line} | _] = report.diagnostics
    assert file =~ "lib/calc.ex"
    assert is_integer(line)
    assert report.error =~ "lib/calc.ex"
    assert m.util.value() == 1
    assert :int.all_breaks() == before
    :ok = :int.delete_break(m.calc, 3)
    assert GenServer.call(pid, {:add, 1, 1}) == 2
    assert Process.alive?(pid)

    Project.write(p, "lib/calc.ex", calc_source(m.calc, "a * b"))
    assert {:ok, _} = DebugReload.reload(server: s)
    assert m.util.value() == 2
    assert GenServer.call(pid, {:add, 3, 3}) == 9
  end

  test "nothing changed is a noop, decided by content not mtime", %{project: p, mods: m, server: s} do
    assert {:ok, %{status: :noop}} = DebugReload.reload(server: s)
    Project.write(p, "lib/calc.ex", File.read!(Project.path(p, "lib/calc.ex")))
    assert {:ok, %{status: :noop} = report} = DebugReload.reload(server: s)
    assert to_string(report) =~ "Nothing to reload"
    assert m.calc.add(1, 2) == 3
  end

  @tag extra_modules: []
  test "new files are compiled and loaded, deleted ones reported and purged",
       %{project: p, mods: m, server: s, ns: ns} do
    new_mod = Module.concat([ns, Fresh])
    Project.write(p, "lib/fresh.ex", util_source(new_mod, "42"))
    File.rm!(Project.path(p, "lib/util.ex"))

    assert {:ok, report} = DebugReload.reload(server: s)
    actions = Map.new(report.modules, &{&1.module, &1.action})
    assert actions[new_mod] == :interpreted
    assert actions[m.util] == :deleted
    assert new_mod in :int.interpreted()
    assert new_mod.value() == 42
    assert :code.is_loaded(m.util) == false
    assert report.files.added == [Project.path(p, "lib/fresh.ex")]
    :int.nn(new_mod)
  end

  test "a deleted interpreted file that comes back is interpreted again with its breakpoints",
       %{project: p, mods: m, server: s} do
    original = File.read!(Project.path(p, "lib/calc.ex"))
    :ok = :int.break(m.calc, 3)
    :ok = :int.disable_break(m.calc, 3)
    File.rm!(Project.path(p, "lib/calc.ex"))
    File.rm!(Project.path(p, "lib/server.ex"))

    assert {:ok, report} = DebugReload.reload(server: s)
    assert Enum.find(report.modules, &(&1.module == m.calc)).action == :deleted
    refute m.calc in :int.interpreted()

    Project.write(p, "lib/calc.ex", original)
    assert {:ok, report} = DebugReload.reload(server: s)
    assert %{action: :interpreted, reason: reason} = Enum.find(report.modules, &(&1.module == m.calc))
    assert reason =~ "came back"
    assert m.calc in :int.interpreted()
    assert [{{_, 3}, [:inactive | _]}] = :int.all_breaks(m.calc)
    assert [%{old_line: 3, new_line: 3, status: :moved}] = report.breakpoints
  end

  test "the Mix manifest stays consistent: a fresh mix compile has nothing to do",
       %{project: p, mods: m, server: s} do
    Project.write(p, "lib/calc.ex", calc_source(m.calc, "a * b"))
    assert {:ok, _} = DebugReload.reload(server: s)
    # After a planned compile, Mix's own compile catches up in the worker.
    :ok = DebugReload.await_sync(s)
    {output, 0} = Project.mix(p, ["compile", "--verbose"])
    refute output =~ "Compil", output
  end

  test "paths limit the reload and bad paths are named", %{project: p, mods: m, server: s} do
    Project.write(p, "lib/calc.ex", calc_source(m.calc, "a * b"))
    Project.write(p, "lib/util.ex", util_source(m.util, "7"))

    assert {:ok, report} = DebugReload.reload(server: s, paths: ["lib/util.ex"])
    assert Enum.map(report.modules, & &1.module) == [m.util]
    assert m.util.value() == 7
    assert m.calc.add(2, 3) == 5

    assert {:error, r1} = DebugReload.reload(server: s, paths: ["/etc/passwd"])
    assert r1.error =~ "/etc/passwd"
    assert r1.error =~ "outside the project"
    assert {:error, r2} = DebugReload.reload(server: s, paths: ["lib/missing.ex"])
    assert r2.error =~ "lib/missing.ex"

    assert {:ok, report} = DebugReload.reload(server: s)
    assert Enum.map(report.modules, & &1.module) == [m.calc]
    assert m.calc.add(2, 3) == 6
  end

  test "dry run plans without touching anything", %{project: p, mods: m, server: s} do
    Project.write(p, "lib/calc.ex", calc_source(m.calc, "a * b"))
    assert {:ok, %{status: :dry_run} = report} = DebugReload.reload(server: s, dry_run: true)
    assert [%{module: mod, action: :planned}] = report.modules
    assert mod == m.calc
    assert m.calc.add(2, 3) == 5
    assert {:ok, %{status: :ok}} = DebugReload.reload(server: s)
    assert m.calc.add(2, 3) == 6
  end

  test "force reloads unchanged files", %{mods: m, server: s} do
    assert {:ok, report} = DebugReload.reload(server: s, force: true, paths: ["lib/calc.ex"])
    assert [%{module: mod, action: :reinterpreted}] = report.modules
    assert mod == m.calc
  end

  test "concurrent reloads are serialized and consistent", %{project: p, mods: m, server: s} do
    Project.write(p, "lib/calc.ex", calc_source(m.calc, "a * b"))
    tasks = for _ <- 1..2, do: Task.async(fn -> DebugReload.reload(server: s) end)
    results = Enum.map(tasks, &Task.await(&1, 120_000))
    statuses = results |> Enum.map(fn {:ok, r} -> r.status end) |> Enum.sort()
    assert statuses == [:noop, :ok]
    assert m.calc.add(2, 3) == 6
  end
end
