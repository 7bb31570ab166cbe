defmodule DebugReload.InterpreterSubscribeTest do
  # A live subscriber of the interpreter server slows every call that
  # enters interpreted code (two status events per call), and
  # `:int.subscribe/0` has no way back. `Interpreter.forward_events/1`
  # subscribes a relay that the server drops again once it is stopped.
  use ExUnit.Case, async: false

  alias DebugReload.Interpreter
  alias DebugReload.Test.Project

  setup do
    mod = Module.concat(["Sub#{System.unique_integer([:positive])}", Value])
    project = Project.create(%{"lib/value.ex" => Project.value_source(mod, 1)})
    Project.interpret([mod])
    on_exit(fn -> Project.cleanup(project, [mod]) end)
    %{mod: mod}
  end

  defp subscribers do
    {:state, _db, _procs, _breaks, _auto, _stack, subs} = :sys.get_state(:dbg_iserver)
    subs
  end

  defp call_in_process(mod) do
    task = Task.async(fn -> mod.value() end)
    assert Task.await(task) == 1
    task.pid
  end

  test "the relay forwards the interpreter's events to its owner until stopped, then is unsubscribed", ctx do
    relay = Interpreter.forward_events(self())
    assert Enum.count(subscribers(), &(&1 == relay)) == 1
    refute self() in subscribers()

    pid = call_in_process(ctx.mod)
    assert_receive {:int, {:new_status, ^pid, _status, _info}}, 5_000

    :ok = Interpreter.stop_forwarding(relay)
    # The server was linked to the relay: it drops the subscription.
    Project.await(fn -> relay not in subscribers() end, 1_000)

    flush = fn flush -> receive do: ({:int, _} -> flush.(flush)), after: (50 -> :ok) end
    flush.(flush)
    call_in_process(ctx.mod)
    refute_receive {:int, _}, 100
  end

  test "the relay ends, and its owner is told, when the interpreter server stops" do
    Process.flag(:trap_exit, true)
    relay = Interpreter.forward_events(self())
    monitor = Process.monitor(relay)
    # What the relay receives when the server it is linked to stops (the
    # real one stays up for the other tests).
    send(relay, {:EXIT, Process.whereis(:dbg_iserver), :shutdown})
    assert_receive {:DOWN, ^monitor, :process, ^relay, :normal}, 5_000
    assert_receive {:EXIT, ^relay, :normal}, 5_000
  end
end
