defmodule DebugReload.Bench.Goals do
  @moduledoc """
  The targets of issue #7, checked against one run's results. Every check
  returns the figure it judged, so the report can show what was measured
  next to the verdict.
  """

  alias DebugReload.Bench.Stats

  @bare_ratio 1.25
  @restart_ratio 20
  @noop_ms 10
  # Growth allowed between the start and the end of the endurance run for
  # figures that are not counts (memory): a leak of one module database
  # per reload would grow it by hundreds of KiB over 500 reloads.
  @memory_slack 0.05

  @type verdict :: %{goal: String.t(), met: boolean(), detail: String.t()}

  def bare_ratio_goal, do: @bare_ratio
  def restart_ratio_goal, do: @restart_ratio
  def noop_goal_ms, do: @noop_ms

  @doc "reload / bare compile, median over median, for one size and edit size."
  @spec bare_ratio(map(), pos_integer()) :: float()
  def bare_ratio(size_result, k) do
    edits = size_result.edits[k]
    Stats.median(edits.total) / Stats.median(edits.bare)
  end

  @doc """
  The first and third quartiles of each run's own reload / bare compile
  ratio (the two are timed back to back in a run): how far the machine's
  noise moves the ratio the goal is judged on.
  """
  @spec bare_ratio_quartiles(map(), pos_integer()) :: {float(), float()}
  def bare_ratio_quartiles(size_result, k) do
    edits = size_result.edits[k]
    ratios = Enum.zip_with(edits.total, edits.bare, &(&1 / &2))
    {Stats.percentile(ratios, 25), Stats.percentile(ratios, 75)}
  end

  @doc """
  The restart a reload is judged against: a new debug session in a new VM
  (`DebugReload.Bench.FreshRestart`), what people do today. Results saved
  before it was measured fall back to the warm-VM lower bound.
  """
  @spec restart_total(map(), pos_integer()) :: [non_neg_integer()]
  def restart_total(size_result, k) do
    case size_result[:fresh_restart] do
      %{^k => %{total: total}} -> total
      _ -> size_result.restart[k].total
    end
  end

  @doc "restart / reload, median over median, after the same edit."
  @spec restart_ratio(map(), pos_integer()) :: float()
  def restart_ratio(size_result, k) do
    Stats.median(restart_total(size_result, k)) / Stats.median(size_result.edits[k].total)
  end

  @doc """
  The warm-VM restart (`DebugReload.Bench.Restart`, no VM or Mix start-up)
  / reload: a lower bound of `restart_ratio/2`.
  """
  @spec warm_restart_ratio(map(), pos_integer()) :: float()
  def warm_restart_ratio(size_result, k) do
    Stats.median(size_result.restart[k].total) / Stats.median(size_result.edits[k].total)
  end

  @doc """
  restart / bare compile: the ratio a reload would reach if it cost no more
  than compiling the edited files, the ceiling of `restart_ratio/2`.
  """
  @spec restart_ceiling(map(), pos_integer()) :: float()
  def restart_ceiling(size_result, k) do
    Stats.median(restart_total(size_result, k)) / Stats.median(size_result.edits[k].bare)
  end

  @doc "All verdicts for a run."
  @spec verdicts(map()) :: [verdict()]
  def verdicts(results) do
    bare_verdicts(results.sizes) ++
      restart_verdicts(results.sizes) ++
      noop_verdicts(results.sizes) ++
      macro_verdicts(results.sizes) ++
      endurance_verdicts(results[:endurance]) ++
      correctness_verdicts(results[:saturated], "saturated server")
  end

  defp bare_verdicts(sizes) do
    for s <- sizes, k <- Map.keys(s.edits) |> Enum.sort() do
      ratio = bare_ratio(s, k)
      {low, high} = bare_ratio_quartiles(s, k)

      %{
        goal: "reload ≤ #{@bare_ratio}× bare compile (#{s.size} modules, #{plural(k, "module")} edited)",
        met: ratio <= @bare_ratio,
        detail:
          "#{Stats.times(ratio)} (each run's own ratio: quartiles #{Stats.times(low)}–#{Stats.times(high)})"
      }
    end
  end

  defp restart_verdicts(sizes) do
    for k <- sizes |> Enum.flat_map(&Map.keys(&1.edits)) |> Enum.uniq() |> Enum.sort(),
        ratios = for(s <- sizes, into: %{}, do: {s.size, restart_ratio(s, k)}),
        {size, ratio} <- Enum.sort(ratios),
        size >= 200 do
      smaller = for {other, r} <- ratios, other < size and other >= 200, do: r

      s = Enum.find(sizes, &(&1.size == size))

      %{
        goal:
          "reload ≥ #{@restart_ratio}× faster than a restart (#{size} modules, #{plural(k, "module")} edited)" <>
            if(smaller != [], do: ", and more than at smaller sizes", else: ""),
        met: ratio >= @restart_ratio and Enum.all?(smaller, &(ratio > &1)),
        detail:
          "#{Stats.times(ratio)}#{if s[:fresh_restart], do: " against a new debug session", else: ""} " <>
            "(a reload costing only the bare compile would reach #{Stats.times(restart_ceiling(s, k))}; " <>
            "against the warm-VM lower bound: #{Stats.times(warm_restart_ratio(s, k))})"
      }
    end
  end

  defp noop_verdicts(sizes) do
    case Enum.max_by(sizes, & &1.size, fn -> nil end) do
      %{size: size, noop: samples} when size >= 1000 ->
        median = Stats.median(samples)

        [
          %{
            goal: "no-op reload < #{@noop_ms} ms median (#{size} modules)",
            met: median < @noop_ms * 1000,
            detail: Stats.ms(median)
          }
        ]

      _ ->
        []
    end
  end

  defp macro_verdicts(sizes) do
    for s <- sizes, {kind, m} <- Enum.sort(s.macro) do
      %{
        goal: "macro edit (#{kind}, #{s.size} modules): only modules whose beams changed are re-interpreted",
        met: m.mismatches == 0,
        detail: "#{m.mismatches} of #{length(m.total)} runs differed"
      }
    end
  end

  defp endurance_verdicts(nil), do: []

  defp endurance_verdicts(e) do
    first = hd(e.samples)
    last = List.last(e.samples)
    # Memory is judged over the second half: what the first reloads allocate
    # once (code, caches) is not growth; a leak grows with every reload.
    # The interpreter server is judged by what it holds (its state): its
    # process memory, shown too, moves in heap-size steps after a collection.
    from = Enum.at(e.samples, 1, first)

    flat? =
      last.ets_tables <= first.ets_tables and last.processes <= first.processes and
        grew_at_most?(from.iserver_state, last.iserver_state) and
        grew_at_most?(from.vm_memory, last.vm_memory) and
        (is_nil(last[:os_rss]) or grew_at_most?(from.os_rss, last.os_rss))

    [
      %{
        goal:
          "endurance: ETS tables, processes, dbg_iserver, VM and OS memory flat over #{e.reloads} reloads",
        met: flat?,
        detail:
          "ETS #{first.ets_tables}→#{last.ets_tables}, processes #{first.processes}→#{last.processes}; " <>
            "over the second half: dbg_iserver state #{Stats.bytes(from.iserver_state)}→" <>
            "#{Stats.bytes(last.iserver_state)} (process #{Stats.bytes(from.iserver_memory)}→" <>
            "#{Stats.bytes(last.iserver_memory)}), VM #{Stats.bytes(from.vm_memory)}→#{Stats.bytes(last.vm_memory)}" <>
            if(last[:os_rss], do: ", RSS #{Stats.bytes(from.os_rss)}→#{Stats.bytes(last.os_rss)}", else: "")
      }
    ] ++ correctness_verdicts(e, "endurance")
  end

  defp correctness_verdicts(nil, _label), do: []

  defp correctness_verdicts(e, label) do
    [
      %{
        goal: "#{label}: every call answered by the latest reload's code, none failed (#{e.reloads} reloads)",
        met: e.failures == 0 and e.stale == 0 and e.ahead == 0,
        detail: "#{Stats.thousands(e.calls)} calls, #{e.failures} failed, #{e.stale} stale"
      }
    ]
  end

  defp grew_at_most?(first, last), do: last <= first * (1 + @memory_slack)

  defp plural(1, word), do: "1 #{word}"
  defp plural(n, word), do: "#{n} #{word}s"
end
