defmodule DebugReload.IntFactsTest do
  @moduledoc """
  The behaviours of OTP's interpreter that the design rests on, checked on
  the running OTP. If an OTP release changes one, this file says which.
  """
  use ExUnit.Case, async: false

  alias DebugReload.Test.Project

  setup do
    mod = Module.concat(["IntFact#{System.unique_integer([:positive])}", Srv])
    project = Project.create(%{"lib/srv.ex" => source(mod, :v1)})
    Project.interpret([mod])
    on_exit(fn -> Project.cleanup(project, [mod]) end)
    %{mod: mod, project: project}
  end

  defp source(mod, tag) do
    """
    defmodule #{inspect(mod)} do
      use GenServer
      def start_link, do: GenServer.start_link(__MODULE__, nil)
      def init(nil), do: {:ok, nil}

      def handle_call(:tag, _from, s) do
        tag = #{inspect(tag)}
        {:reply, tag, s}
      end

      def tag, do: #{inspect(tag)}
    end
    """
  end

  defp recompile(project, mod, tag) do
    Project.write(project, "lib/srv.ex", source(mod, tag))
    # Same size and same second as the last compile: force Mix to see it.
    {_, 0} = Project.mix(project, ["compile", "--force"])
  end

  defp mod_db_count(mod) do
    {:state, db, _, _, _, _, _} = :sys.get_state(:dbg_iserver)
    [{_, dbs}] = :ets.lookup(db, {mod, :refs})
    length(dbs)
  end

  test "re-running :int.ni keeps breakpoints at the old {Module, Line}", %{mod: mod, project: p} do
    :ok = :int.break(mod, 7)
    recompile(p, mod, :v2)
    {:module, ^mod} = :int.ni(mod)
    assert [{{^mod, 7}, _}] = :int.all_breaks(mod)
  end

  test ":int.ni alone leaves a GenServer that already ran the module on old code", %{mod: mod, project: p} do
    {:ok, pid} = mod.start_link()
    assert GenServer.call(pid, :tag) == :v1
    recompile(p, mod, :v2)
    {:module, ^mod} = :int.ni(mod)
    # A process that never ran the module sees the new code ...
    assert Task.async(fn -> mod.tag() end) |> Task.await() == :v2
    # ... but one that did (like the GenServer, or this test process) does not.
    assert GenServer.call(pid, :tag) == :v1
    assert mod.tag() == :v1
  end

  test ":int.nn then :int.ni moves such processes but kills one paused in the module",
       %{mod: mod, project: p} do
    {:ok, idle} = mod.start_link()
    assert GenServer.call(idle, :tag) == :v1
    {:ok, server} = mod.start_link()
    Process.unlink(server)
    :ok = :int.break(mod, 7)
    spawn(fn -> GenServer.call(server, :tag, :infinity) end)
    Project.await_break(server)
    ref = Process.monitor(server)

    recompile(p, mod, :v2)
    :int.nn(mod)
    {:module, ^mod} = :int.ni(mod)

    assert_receive {:DOWN, ^ref, :process, ^server, :killed}, 5_000
    assert :int.all_breaks() == []
    # OTP bug: nn does not remove the breakpoint from live meta processes,
    # so the idle GenServer still stops at the "deleted" breakpoint...
    caller = Task.async(fn -> GenServer.call(idle, :tag, :infinity) end)
    assert {^mod, 7} = Project.await_break(idle)
    :int.continue(idle)
    # ... and runs the new code.
    assert Task.await(caller) == :v2
  end

  test "our swap leaves no ghost breakpoint behind a later delete", %{mod: mod, project: p} do
    {:ok, idle} = mod.start_link()
    assert GenServer.call(idle, :tag) == :v1
    :ok = :int.break(mod, 7)

    recompile(p, mod, :v2)
    beam = Path.join(p.ebin, "#{mod}.beam")
    source = Project.path(p, "lib/srv.ex")

    assert {:ok, %{mode: :clean}} =
             DebugReload.Interpreter.swap(mod, source, beam, File.read!(beam), busy_timeout: 1_000)

    :ok = :int.delete_break(mod, 7)

    assert GenServer.call(idle, :tag, 2_000) == :v2
  end

  test "loading new native code does not kill a process paused at a breakpoint", %{mod: mod, project: p} do
    :ok = :int.break(mod, 7)
    {:ok, server} = mod.start_link()
    spawn(fn -> GenServer.call(server, :tag, :infinity) end)
    Project.await_break(server)

    recompile(p, mod, :v2)
    beam = Path.join(p.ebin, "#{mod}.beam")
    monitor = Process.monitor(server)
    {:module, ^mod} = :code.load_binary(mod, String.to_charlist(beam), File.read!(beam))
    refute_receive {:DOWN, ^monitor, _, _, _}, 500
    assert {^mod, 7} = Project.await_break(server)
  end

  test "each re-interpretation with :int.ni leaks a module database; our clean swap does not",
       %{mod: mod, project: p} do
    {:ok, pid} = mod.start_link()
    assert GenServer.call(pid, :tag) == :v1
    before = mod_db_count(mod)

    recompile(p, mod, :v2)
    {:module, ^mod} = :int.ni(mod)
    assert mod_db_count(mod) == before + 1

    recompile(p, mod, :v3)
    beam = Path.join(p.ebin, "#{mod}.beam")
    source = Project.path(p, "lib/srv.ex")

    assert {:ok, %{mode: :clean}} =
             DebugReload.Interpreter.swap(mod, source, beam, File.read!(beam), busy_timeout: 1_000)

    assert mod_db_count(mod) == 1
    assert GenServer.call(pid, :tag) == :v3
  end
end
