# The reload plan, side by side in one run: the NIF (Rust, petgraph) and
# the same algorithm in Elixir over :digraph (bench/support), on the same
# synthetic 10,000-module / 100,000-edge manifest. Both must give the same
# plan for every change measured; the ratio of medians is the result.
#
#   MIX_ENV=dev mix run --no-start bench/plan.exs   (make bench-plan)

Code.require_file("support/digraph_planner.ex", __DIR__)

alias DebugReload.Bench.DigraphPlanner
alias DebugReload.{Native, Planner}

defmodule DebugReload.Bench.PlanBench do
  @modules 10_000
  @edges 100_000
  @seed 42
  @changes 64
  @runs 10

  def run do
    manifest = Native.plan_graph_synthetic(@modules, @edges, @seed)
    files = ordinary_files()

    {nif_build, graph} = median_with_result(@runs, fn -> Native.plan_graph_build(manifest) end)

    {digraph_build, planner} =
      median_with_result(3, fn -> DigraphPlanner.build(manifest) end, &DigraphPlanner.delete/1)

    stats = Native.plan_graph_stats(graph)

    agree!(graph, planner, files)

    nif_plan = median(files, fn file -> Planner.plan_graph(graph, request(file), :term) end)
    digraph_plan = median(files, fn file -> DigraphPlanner.plan(planner, [file]) end)
    macro_file = path_of(3)
    nif_macro = median(List.duplicate(macro_file, 5), &Planner.plan_graph(graph, request(&1), :term), 1)
    digraph_macro = median(List.duplicate(macro_file, 3), &DigraphPlanner.plan(planner, [&1]), 1)
    macro_files = length(Native.plan_graph_plan(graph, request(macro_file), nil, :term).files)

    IO.puts("""
    ## Reload plan: NIF vs Elixir over :digraph (same graph, same algorithm)

    Graph: #{stats.files} files, #{stats.modules} modules, #{stats.edges} edges (synthetic, seed #{@seed}).
    Medians over #{@changes} one-file changes (each the mean of 20 calls). Both
    return the same plan (files and modules, definite or conditional, each with
    its explanation), checked for every change measured.

    | step | NIF (Rust) | Elixir :digraph | ratio |
    |---|---|---|---|
    | build the graph from the manifest | #{ms(nif_build)} | #{ms(digraph_build)} | #{ratio(digraph_build, nif_build)} |
    | plan a one-file change | #{ms(nif_plan)} | #{ms(digraph_plan)} | #{ratio(digraph_plan, nif_plan)} |
    | plan a macro-module change (#{macro_files} files) | #{ms(nif_macro)} | #{ms(digraph_macro)} | #{ratio(digraph_macro, nif_macro)} |

    The NIF's figures include decoding the request and encoding the plan as
    terms (a one-file change runs on a normal scheduler, a macro change on a
    dirty one).
    """)
  end

  defp request(file) do
    %{
      changed: [file],
      removed: [],
      stale_modules: [],
      recompile_modules: [],
      config_changed: false,
      locate: false
    }
  end

  # The same files and modules with the same certainty. Explanations are
  # built the same way, but where several causes tie the two graphs'
  # edge orders may pick different (equally valid) ones.
  defp agree!(graph, planner, files) do
    for file <- files ++ [path_of(3)] do
      nif = Native.plan_graph_plan(graph, request(file), nil, :term)
      elixir = DigraphPlanner.plan(planner, [file])
      nif_files = for f <- nif.files, do: {f.path, f.certainty}
      nif_modules = for m <- nif.modules, do: {Atom.to_string(m.module), m.certainty}

      unless nif_files == Enum.map(elixir.files, &{&1.path, &1.certainty}) and
               nif_modules == Enum.map(elixir.modules, &{&1.module, &1.certainty}) and
               Enum.all?(elixir.files ++ elixir.modules, &(&1.explanation != "")) do
        raise "the two planners disagree for #{file}"
      end
    end
  end

  # Ordinary (non-macro) modules' files, spread over the project, as the
  # criterion bench picks them.
  defp ordinary_files do
    pool = div(@modules, 50)
    for i <- 0..(@changes - 1), do: path_of(pool + rem(i * 7_919, @modules - pool))
  end

  defp path_of(i), do: "/synthetic/lib/m#{if rem(i, 25) == 24, do: i - 1, else: i}.ex"

  # Per input, the mean of `reps` back-to-back calls (one call is too short
  # to time alone); then the median over inputs.
  defp median(inputs, fun, reps \\ 20) do
    inputs
    |> Enum.map(fn input ->
      # Results are dropped at once: keeping them would time the GC.
      {time, _} = :timer.tc(fn -> Enum.each(1..reps, fn _ -> fun.(input) end) end)
      div(time, reps)
    end)
    |> middle()
  end

  defp median_with_result(runs, fun, release \\ fn _ -> :ok end) do
    results = for _ <- 1..runs, do: :timer.tc(fun)
    {_, keep} = List.last(results)
    Enum.each(Enum.drop(results, -1), fn {_, r} -> release.(r) end)
    {results |> Enum.map(&elem(&1, 0)) |> middle(), keep}
  end

  defp middle(times), do: times |> Enum.sort() |> Enum.at(div(length(times), 2))

  defp ms(us) when us < 1_000, do: "#{us} µs"
  defp ms(us), do: "#{Float.round(us / 1000, 1)} ms"

  defp ratio(slow, fast), do: "#{Float.round(slow / max(fast, 1), 1)}×"
end

DebugReload.Bench.PlanBench.run()
