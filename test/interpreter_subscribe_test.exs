defmodule DebugReload.InterpreterSubscribeTest do
  # `:int.subscribe/0` adds its caller to the interpreter server's
  # subscribers on every call, and every copy receives every event: a
  # manager that subscribed on each reload leaving a process on old code
  # got each status event once per such reload.
  use ExUnit.Case, async: false

  alias DebugReload.Interpreter

  test "Interpreter.subscribe/0 subscribes once, where :int.subscribe/0 adds a copy each time" do
    _ = :int.interpreted()

    raw = run_subscribed(fn -> :int.subscribe() end)
    once = run_subscribed(&Interpreter.subscribe/0)

    assert raw == 2
    assert once == 1
  end

  # Subscribes twice from a fresh process; returns how often it is listed.
  defp run_subscribed(subscribe) do
    task =
      Task.async(fn ->
        subscribe.()
        subscribe.()
        {:state, _db, _procs, _breaks, _auto, _stack, subs} = :sys.get_state(:dbg_iserver)
        Enum.count(subs, &(&1 == self()))
      end)

    Task.await(task)
  end
end
