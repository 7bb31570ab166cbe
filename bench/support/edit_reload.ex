defmodule DebugReload.Bench.EditReload do
  @moduledoc """
  Scenario 1: a body-only edit to 1 and to 5 modules, reloaded end to end
  through `DebugReload.reload/1`, next to the same files compiled alone by
  `Kernel.ParallelCompiler` in a warm node of their own (the unavoidable
  work). The order of the two alternates between runs so drift on a
  shared machine does not favour either.

  Every reload is checked: status `:ok`, exactly the edited modules
  re-interpreted, and the session's 20 breakpoints still set.
  """

  alias DebugReload.Bench.{BareCompiler, Generator, Session, Workload}

  @type samples :: %{
          total: [non_neg_integer()],
          plan: [non_neg_integer()],
          compile: [non_neg_integer()],
          load: [non_neg_integer()],
          breakpoints: [non_neg_integer()],
          bare: [non_neg_integer()],
          catch_up: [non_neg_integer()],
          planned: non_neg_integer()
        }

  @doc "Runs `runs` rounds for each edit size; returns samples (µs) per edit size."
  @spec run(Workload.t(), atom(), pid(), pos_integer(), [pos_integer()]) :: %{pos_integer() => samples()}
  def run(workload, server, bare, runs, edit_sizes \\ [1, 5]) do
    for k <- edit_sizes, into: %{} do
      targets = Enum.take(workload.project.edit_targets, k)
      samples = Enum.map(1..runs, &round(workload, server, bare, targets, &1))
      {k, collect(samples)}
    end
  end

  defp round(workload, server, bare_compiler, targets, run) do
    project = workload.project
    files = Enum.map(targets, &Generator.source(project, &1))
    version = System.unique_integer([:positive, :monotonic])
    Enum.each(files, &Generator.set_constant(&1, "edit", version))

    reload = fn -> reload(workload, server, targets) end
    bare = fn -> BareCompiler.compile(bare_compiler, files, targets) end

    {report, bare_us} =
      if rem(run, 2) == 0 do
        bare_us = bare.()
        {reload.(), bare_us}
      else
        report = reload.()
        {report, bare.()}
      end

    report.timings |> Map.put(:bare_us, bare_us) |> Map.put(:compiler, report.compiler)
  end

  defp reload(workload, server, targets) do
    report = Session.reload!(server)
    reinterpreted = Session.reinterpreted(report)

    Enum.sort(reinterpreted) == Enum.sort(targets) ||
      raise "expected #{inspect(targets)} re-interpreted, got #{inspect(reinterpreted)}; " <>
              "files #{inspect(report.files)}, modules #{inspect(report.modules)}"

    live = length(Workload.live_breakpoints(workload))
    live == length(workload.breakpoints) || raise "#{live} breakpoints left after a reload"
    report
  end

  defp collect(samples) do
    %{
      total: Enum.map(samples, & &1.total_us),
      plan: Enum.map(samples, &Map.get(&1, :plan_us, 0)),
      compile: Enum.map(samples, &Map.get(&1, :compile_us, 0)),
      load: Enum.map(samples, &Map.get(&1, :load_us, 0)),
      # Part of the load's time.
      breakpoints: for(%{breakpoints_us: us} <- samples, do: us),
      # Part of the load's time too; none when Mix's task compiled.
      checks: Enum.map(samples, &Map.get(&1, :checks_us, 0)),
      bare: Enum.map(samples, & &1.bare_us),
      catch_up: Enum.map(samples, &Map.get(&1, :catch_up_us, 0)),
      planned: Enum.count(samples, &(&1.compiler == :planned))
    }
  end
end
