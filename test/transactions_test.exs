defmodule DebugReload.TransactionsTest do
  # A reload of N modules is all or nothing: a failure injected at each
  # step after compilation leaves every module, interpretation, breakpoint,
  # migrated state and process exactly as before, and the next reload
  # still applies the edit.
  use ExUnit.Case, async: false

  alias DebugReload.Test.Project

  setup do
    n = System.unique_integer([:positive])
    ns = "Tx#{n}"
    interpreted = for i <- 1..3, do: Module.concat([ns, "I#{i}"])
    native = Module.concat([ns, "Native"])
    gone = Module.concat([ns, "Gone"])
    counter = Module.concat([ns, "Counter"])

    files =
      Map.new(Enum.with_index(interpreted, 1), fn {m, i} -> {"lib/i#{i}.ex", Project.value_source(m, 1)} end)
      |> Map.put("lib/native.ex", Project.value_source(native, 1))
      |> Map.put("lib/gone.ex", Project.value_source(gone, 1))
      |> Map.put("lib/counter.ex", counter_source(counter, :v1))

    project = Project.create(files)
    Project.interpret(interpreted)
    for m <- [native, gone, counter], do: {:module, ^m} = Code.ensure_loaded(m)

    name = :"tx_#{n}"
    start_supervised!({DebugReload, project: project.root, name: name, mix_env: "dev"}, id: name)
    Project.await_boot(name)

    [first | _] = interpreted
    :ok = :int.break(first, 3)
    :ok = :int.test_at_break(first, 3, {__MODULE__, :never})
    {:ok, agent} = Agent.start(fn -> first.value() end)
    {:ok, server} = GenServer.start(counter, 5)
    on_exit(fn -> Project.cleanup(project, interpreted ++ [native, gone, counter]) end)

    %{
      project: project,
      server: name,
      interpreted: interpreted,
      stub_md5s: stub_md5s(interpreted),
      native: native,
      gone: gone,
      counter: counter,
      agent: agent,
      counter_pid: server
    }
  end

  def never(_bindings), do: false

  # The native code under each interpreted module: what runs once the
  # session stops interpreting it.
  defp stub_md5s(modules), do: Enum.map(modules, &:erlang.get_module_info(&1, :md5))

  # v1 keeps a bare integer; v2 keeps %{count: n} and migrates v1 state.
  defp counter_source(mod, :v1) do
    """
    defmodule #{inspect(mod)} do
      use GenServer
      def init(n), do: {:ok, n}
      def handle_call(:get, _from, n), do: {:reply, {:v1, n}, n}
    end
    """
  end

  defp counter_source(mod, :v2) do
    """
    defmodule #{inspect(mod)} do
      use GenServer
      def init(n), do: {:ok, %{count: n}}
      def handle_call(:get, _from, %{count: n} = s), do: {:reply, {:v2, n}, s}
      def code_change(_old, n, _extra) when is_integer(n), do: {:ok, %{count: n}}
    end
    """
  end

  defp edit_everything(ctx) do
    for {m, i} <- Enum.with_index(ctx.interpreted, 1),
        do: Project.write(ctx.project, "lib/i#{i}.ex", Project.value_source(m, 2))

    Project.write(ctx.project, "lib/native.ex", Project.value_source(ctx.native, 2))
    Project.write(ctx.project, "lib/counter.ex", counter_source(ctx.counter, :v2))
    File.rm!(Project.path(ctx.project, "lib/gone.ex"))
  end

  defp call(fun), do: Task.await(Task.async(fun))

  defp assert_as_before(ctx) do
    assert Enum.map(ctx.interpreted, fn m -> call(fn -> m.value() end) end) == [1, 1, 1]
    assert Enum.all?(ctx.interpreted, &(&1 in :int.interpreted()))
    assert stub_md5s(ctx.interpreted) == ctx.stub_md5s
    assert ctx.native.value() == 1
    assert ctx.gone.value() == 1
    [first | _] = ctx.interpreted
    assert [{{^first, 3}, [:active, :enable, :null, {__MODULE__, :never}]}] = :int.all_breaks(first)
    assert Process.alive?(ctx.agent)
    assert GenServer.call(ctx.counter_pid, :get) == {:v1, 5}
    assert :sys.get_state(ctx.counter_pid) == 5
    assert {:status, _, _, _} = :sys.get_status(ctx.counter_pid)
  end

  test "a failure injected at each step rolls everything back; the next reload applies the edit", ctx do
    edit_everything(ctx)
    [_, second | _] = ctx.interpreted
    faults = DebugReload.Loader.steps() ++ [{:interpret, second}]

    for fault <- faults do
      result = DebugReload.reload(server: ctx.server, migrate: [ctx.counter_pid], inject_fault: fault)
      assert match?({:error, _}, result), "fault #{inspect(fault)}: #{inspect(result)}"
      {:error, report} = result

      assert report.error =~ "rolled back", "fault #{inspect(fault)}: #{report.error}"
      assert report.error =~ "injected fault"
      assert_as_before(ctx)
    end

    assert {:ok, report} = DebugReload.reload(server: ctx.server, migrate: [ctx.counter_pid])
    assert Enum.map(ctx.interpreted, fn m -> call(fn -> m.value() end) end) == [2, 2, 2]

    assert stub_md5s(ctx.interpreted) ==
             Enum.map(ctx.interpreted, &(&1 |> :code.which() |> File.read!() |> :code.module_md5()))

    refute Enum.any?(Enum.zip(stub_md5s(ctx.interpreted), ctx.stub_md5s), fn {now, before} ->
             now == before
           end)

    assert ctx.native.value() == 2
    refute :code.is_loaded(ctx.gone)
    assert GenServer.call(ctx.counter_pid, :get) == {:v2, 5}
    assert [%{status: :migrated}] = Enum.filter(report.processes, &(&1.pid == ctx.counter_pid))
    [first | _] = ctx.interpreted
    assert [{{^first, 3}, _}] = :int.all_breaks(first)
  end

  test "a failing code_change/3 keeps the process's old state and old code", ctx do
    failing = String.replace(counter_source(ctx.counter, :v2), "{:ok, %{count: n}}", "raise \"no\"")
    Project.write(ctx.project, "lib/counter.ex", failing)
    Project.write(ctx.project, "lib/native.ex", Project.value_source(ctx.native, 2))

    assert {:error, report} = DebugReload.reload(server: ctx.server, migrate: [ctx.counter_pid])
    assert report.error =~ "code_change/3"
    assert [%{status: :migration_failed, detail: detail}] = report.processes
    assert detail =~ "old state and old code"
    assert GenServer.call(ctx.counter_pid, :get) == {:v1, 5}
    assert ctx.native.value() == 1
  end
end
