defmodule DebugReload.Bench.CallOverhead do
  @moduledoc """
  Scenario 5: what a running DebugReload manager costs interpreted code.

  A subscriber to the interpreter's events gets a status message whenever
  an interpreted process starts or finishes a call from native code; the
  manager subscribes only while processes run old code, so an idle one
  should cost nothing. The same interpreted function is called with and
  without a manager, alternating in rounds:

    * `:entry` - a native loop calling the interpreted function, so every
      call enters and leaves the interpreter (two status events each);
    * `:nested` - one call into an interpreted function that recurses, so
      the calls stay inside the interpreter (no events).

  Without a manager the session is a plain `:int.ni/1` one; the benchmark
  checks that nothing live is subscribed to the interpreter either way.
  """

  @settle_ms 1_500

  @type result :: %{
          entry: %{plain: [float()], manager: [float()]},
          nested: %{plain: [float()], manager: [float()]}
        }

  @doc """
  Measures calls per second of `module.step/1` (entry) and of
  `module.sum_steps/1` (nested) for `seconds` per measurement, over
  `rounds` rounds; `start_manager` returns a running manager's name.
  """
  @spec run(module(), (() -> atom()), pos_integer(), number()) :: result()
  def run(module, start_manager, rounds, seconds) do
    samples =
      for round <- 1..rounds, condition <- order(round) do
        manager = if condition == :manager, do: start_manager.()
        await_subscribers(0)
        # Starting or stopping a manager boots or stops its compile node,
        # an OS process that competes for the CPU for a moment.
        Process.sleep(@settle_ms)

        entry = in_fresh_process(fn -> entry_rate(module, seconds) end)
        nested = in_fresh_process(fn -> nested_rate(module, seconds) end)
        if manager, do: GenServer.stop(manager)
        {condition, entry, nested}
      end

    for kind <- [:entry, :nested], into: %{} do
      index = if kind == :entry, do: 1, else: 2

      {kind,
       for condition <- [:plain, :manager], into: %{} do
         {condition, for(s <- samples, elem(s, 0) == condition, do: elem(s, index))}
       end}
    end
  end

  defp order(round), do: if(rem(round, 2) == 1, do: [:plain, :manager], else: [:manager, :plain])

  defp entry_rate(module, seconds) do
    # Warm: the first interpreted call attaches a meta process.
    module.step(1)

    deadline =
      System.monotonic_time() + System.convert_time_unit(round(seconds * 1000), :millisecond, :native)

    start = System.monotonic_time()
    calls = entry_loop(module, deadline, 0)
    calls / elapsed_seconds(start)
  end

  defp entry_loop(module, deadline, calls) do
    Enum.each(1..100, &module.step/1)

    if System.monotonic_time() < deadline,
      do: entry_loop(module, deadline, calls + 100),
      else: calls + 100
  end

  # Calibrates a recursion depth to about `seconds`, then times it.
  defp nested_rate(module, seconds) do
    module.sum_steps(10)
    {probe_us, _} = :timer.tc(fn -> module.sum_steps(2_000) end)
    depth = max(round(2_000 * seconds * 1_000_000 / max(probe_us, 1)), 2_000)
    {us, _} = :timer.tc(fn -> module.sum_steps(depth) end)
    # sum_steps(n) makes n recursive calls and n calls to step/1.
    2 * depth / (us / 1_000_000)
  end

  defp elapsed_seconds(start),
    do: System.convert_time_unit(System.monotonic_time() - start, :native, :microsecond) / 1_000_000

  defp in_fresh_process(fun) do
    task = Task.async(fun)
    Task.await(task, :infinity)
  end

  # Live subscribers only: the interpreter server keeps a subscriber that
  # exited unless it was linked to it (events to it are then dropped).
  defp await_subscribers(expected, attempts \\ 200) do
    case DebugReload.Bench.Interpreter.subscribers() |> Enum.count(&Process.alive?/1) do
      ^expected -> :ok
      other when attempts == 0 -> raise "#{other} live interpreter subscribers, expected #{expected}"
      _ -> Process.sleep(5) && await_subscribers(expected, attempts - 1)
    end
  end
end
