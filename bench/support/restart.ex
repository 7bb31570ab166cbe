defmodule DebugReload.Bench.Restart do
  @moduledoc """
  What users do today instead of a reload: restart the debug session.
  That recompiles the project and interprets every module matching the
  patterns again, then sets the breakpoints again.

  Measured as a lower bound, in the same VM and with the same warm compile
  node a reload uses: Mix's incremental compile of the edit, `:int.ni/1`
  of every module, and the 20 breakpoints. A real restart also boots a new
  VM, starts Mix and the application, which this leaves out; tearing the
  old session down (`:int.nn/1` here) is not timed either.
  """

  alias DebugReload.Bench.{Generator, Stats, Workload}
  alias DebugReload.CompileWorker

  @type samples :: %{
          total: [non_neg_integer()],
          compile: [non_neg_integer()],
          interpret: [non_neg_integer()],
          breakpoints: [non_neg_integer()]
        }

  @doc """
  Runs `runs` restarts after a body-only edit to the same 1 and 5 modules
  the reload benchmark edits; no manager may be running. Returns samples
  (µs) per edit size.
  """
  @spec run(Workload.t(), pos_integer(), [pos_integer()]) :: %{pos_integer() => samples()}
  def run(workload, runs, edit_sizes \\ [1, 5]) do
    project = workload.project
    {:ok, worker} = CompileWorker.start_link(root: project.root, env: "dev")
    {:ok, _} = CompileWorker.project(worker)

    results =
      for k <- edit_sizes, into: %{} do
        files = project.edit_targets |> Enum.take(k) |> Enum.map(&Generator.source(project, &1))

        samples =
          for _ <- 1..runs do
            Workload.edit_visibly(project, files)
            Enum.each(project.modules, &:int.nn/1)
            restart(workload, worker)
          end

        {k, Stats.columns(samples, [:total, :compile, :interpret, :breakpoints])}
      end

    GenServer.stop(worker)
    results
  end

  defp restart(workload, worker) do
    {compile, {status, _diagnostics, output}} = :timer.tc(fn -> CompileWorker.compile(worker, 600_000) end)
    # :noop would time a restart that compiled nothing.
    status == :ok || raise "restart compile did not compile the edit (#{status}): #{output}"
    {interpret, :ok} = :timer.tc(fn -> Workload.interpret(workload.project.modules) end)
    {breakpoints, :ok} = :timer.tc(fn -> Workload.set_breakpoints(workload.breakpoints) end)

    %{
      total: compile + interpret + breakpoints,
      compile: compile,
      interpret: interpret,
      breakpoints: breakpoints
    }
  end
end
