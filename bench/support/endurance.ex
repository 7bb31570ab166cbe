defmodule DebugReload.Bench.Endurance do
  @moduledoc """
  Scenario 4: many consecutive reloads of one GenServer module while a
  caller keeps calling the running server through the module's own client
  function (so the caller runs the module's interpreted code too).

  The caller either pauses `pace_ms` between calls (a busy server: about a
  thousand calls a second at 1 ms) or calls back to back (`pace_ms: 0`, a
  saturated server). A reload swaps the interpreted code only at a moment
  when no process is inside the module; a saturated server leaves few such
  moments, so its reloads show how long the swap waits for one.

  Reload `i` sets the reply of the server's `:value` call to `i`. The
  caller reads the number of the last reload that returned before each
  call and checks that the reply is at least that: a call made after a
  reload returned must run that reload's code (or a newer one). Calls that
  raise or exit count as failures. Both must stay at zero.

  The VM is sampled at the start, the middle and the end (after a full
  garbage collection, so the figures are live data): ETS tables, the
  interpreter server's memory, the manager's memory, total VM memory, the
  OS process's resident memory and the process count. `:int.ni/1` alone leaves a module database behind on
  every re-interpretation; these numbers show whether that happens.
  """

  alias DebugReload.Bench.{Generator, Session, Workload}

  @type sample :: %{
          reloads: non_neg_integer(),
          ets_tables: non_neg_integer(),
          iserver_memory: non_neg_integer(),
          iserver_state: non_neg_integer(),
          iserver_subscribers: non_neg_integer(),
          live_subscribers: non_neg_integer(),
          manager_memory: non_neg_integer(),
          vm_memory: non_neg_integer(),
          os_rss: non_neg_integer() | nil,
          processes: non_neg_integer()
        }

  @type result :: %{
          reloads: non_neg_integer(),
          pace_ms: non_neg_integer(),
          samples: [sample()],
          reload_us: [non_neg_integer()],
          calls: non_neg_integer(),
          failures: non_neg_integer(),
          stale: non_neg_integer(),
          ahead: non_neg_integer()
        }

  @spec run(Workload.t(), atom(), pos_integer(), non_neg_integer()) :: result()
  def run(workload, server, reloads, pace_ms) do
    project = workload.project
    module = project.endurance_module
    file = Generator.source(project, module)

    # Start from a version no reload below uses, served by a running,
    # interpreted server.
    base = System.unique_integer([:positive, :monotonic]) * 1_000_000
    Generator.set_constant(file, "edit", base)
    Session.reload!(server)
    {:ok, pid} = module.start_link([])
    ^base = module.value(pid)

    versions = :atomics.new(2, signed: false)
    :atomics.put(versions, 1, base)
    :atomics.put(versions, 2, base)
    counts = :counters.new(4, [])
    caller = spawn_link(fn -> call_loop(module, pid, versions, counts, pace_ms) end)
    await_calls(counts, 20)

    first = sample(0, server)

    {times, middle} =
      Enum.map_reduce(1..reloads, nil, fn i, middle ->
        # Written before the reload, published after it returns.
        :atomics.put(versions, 2, base + i)
        Generator.set_constant(file, "edit", base + i)
        report = Session.reload!(server)
        module in Session.reinterpreted(report) || raise "reload #{i} did not re-interpret #{inspect(module)}"
        :atomics.put(versions, 1, base + i)
        middle = if i == div(reloads, 2), do: sample(i, server), else: middle
        {report.timings.total_us, middle}
      end)

    await_calls(counts, :counters.get(counts, 1) + 20)
    last = sample(reloads, server)
    send(caller, :stop)
    last_version = base + reloads
    ^last_version = module.value(pid)
    GenServer.stop(pid)

    %{
      reloads: reloads,
      pace_ms: pace_ms,
      samples: Enum.uniq([first, middle, last]),
      reload_us: times,
      calls: :counters.get(counts, 1),
      failures: :counters.get(counts, 2),
      stale: :counters.get(counts, 3),
      ahead: :counters.get(counts, 4)
    }
  end

  # counters: 1 calls, 2 failures, 3 stale replies, 4 replies newer than written
  defp call_loop(module, pid, versions, counts, pace_ms) do
    receive do
      :stop -> :ok
    after
      pace_ms ->
        published = :atomics.get(versions, 1)

        try do
          reply = module.value(pid)
          written = :atomics.get(versions, 2)
          if reply < published, do: :counters.add(counts, 3, 1)
          if reply > written, do: :counters.add(counts, 4, 1)
        catch
          _, _ -> :counters.add(counts, 2, 1)
        end

        :counters.add(counts, 1, 1)
        call_loop(module, pid, versions, counts, pace_ms)
    end
  end

  defp await_calls(counts, n) do
    if :counters.get(counts, 1) < n do
      Process.sleep(5)
      await_calls(counts, n)
    end
  end

  defp sample(reloads, server) do
    Enum.each(Process.list(), &:erlang.garbage_collect/1)

    %{
      reloads: reloads,
      ets_tables: length(:ets.all()),
      iserver_memory: memory(Process.whereis(:dbg_iserver)),
      iserver_state: state_size(:dbg_iserver),
      iserver_subscribers: length(DebugReload.Bench.Interpreter.subscribers()),
      live_subscribers: Enum.count(DebugReload.Bench.Interpreter.subscribers(), &Process.alive?/1),
      manager_memory: memory(Process.whereis(server)),
      vm_memory: :erlang.memory(:total),
      os_rss: os_rss(),
      processes: :erlang.system_info(:process_count)
    }
  end

  # Resident memory of the OS process: unlike the VM's own figure it also
  # counts what the Rust NIF allocates (the planner's graph, for one).
  defp os_rss do
    with {:ok, status} <- File.read("/proc/self/status"),
         [_, kb] <- Regex.run(~r/VmRSS:\s*(\d+) kB/, status) do
      String.to_integer(kb) * 1024
    else
      _ -> nil
    end
  end

  # What the interpreter server keeps (its module databases are ETS
  # tables, counted apart): unlike the process's memory, which moves in
  # heap-size steps after a collection, this grows only with what it holds.
  defp state_size(name),
    do: name |> :sys.get_state() |> :erts_debug.flat_size() |> Kernel.*(:erlang.system_info(:wordsize))

  defp memory(pid) do
    {:memory, bytes} = :erlang.process_info(pid, :memory)
    bytes
  end
end
