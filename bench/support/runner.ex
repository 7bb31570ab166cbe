defmodule DebugReload.Bench.Runner do
  @moduledoc """
  `make bench`'s reload benchmarks, side by side in one run, and the page
  and chart they produce.

  Environment:

    * `BENCH_QUICK=1` - small projects and few runs, for development; the
      results go to `bench/out/` instead of `docs/`
    * `BENCH_SIZES` - comma-separated module counts (default `50,200,1000`)
    * `BENCH_RUNS` - runs per figure (default 10, quick 3)
    * `BENCH_ENDURANCE` - reloads in the endurance run (default 500, quick 20);
      a short run with a saturated server follows it (20 reloads, quick 3)
    * `BENCH_OUT` - directory for `benchmarks.md` and the chart
    * `BENCH_KEEP=1` - keep the generated projects

  With `--render FILE` it only rewrites the page and chart from the raw
  results a previous run saved (`bench/out/reload_results.etf`).
  """

  alias DebugReload.Bench.{
    BareCompiler,
    CallOverhead,
    Chart,
    Criterion,
    EditReload,
    Endurance,
    FreshRestart,
    Goals,
    MacroReload,
    Markdown,
    NoopReload,
    Restart,
    Session,
    Stats,
    Workload
  }

  @repo Path.expand("../..", __DIR__)

  def main(["--render", file]) do
    file |> File.read!() |> :erlang.binary_to_term() |> publish(config())
  end

  def main([]) do
    config = config()
    started = System.monotonic_time(:second)
    load_before = load_average()
    base = Path.join([System.tmp_dir!(), "debug_reload_bench", System.pid()])

    log(
      "reload benchmarks: sizes #{inspect(config.sizes, charlists: :as_lists)}, #{config.runs} runs, out #{config.out}"
    )

    sizes = Enum.map(config.sizes, &measure_size(base, &1, config))
    unless config.keep, do: File.rm_rf(base)

    results = %{
      meta: meta(config, load_before, System.monotonic_time(:second) - started),
      sizes: Enum.map(sizes, & &1.size_result),
      endurance: Enum.find_value(sizes, & &1[:endurance]),
      saturated: Enum.find_value(sizes, & &1[:saturated]),
      overhead: Enum.find_value(sizes, & &1[:overhead]),
      criterion: Criterion.read(Path.join(@repo, "target"))
    }

    raw = Path.join(@repo, "bench/out/reload_results.etf")
    File.mkdir_p!(Path.dirname(raw))
    File.write!(raw, :erlang.term_to_binary(results))
    publish(results, config)
  end

  defp config do
    quick? = System.get_env("BENCH_QUICK") in ["1", "true"]

    %{
      quick: quick?,
      sizes: env_list("BENCH_SIZES", if(quick?, do: [50, 120], else: [50, 200, 1000])),
      runs: env_int("BENCH_RUNS", if(quick?, do: 3, else: 10)),
      endurance: env_int("BENCH_ENDURANCE", if(quick?, do: 20, else: 500)),
      saturated: if(quick?, do: 3, else: 20),
      overhead_rounds: if(quick?, do: 2, else: 6),
      overhead_seconds: if(quick?, do: 0.3, else: 1.0),
      out: System.get_env("BENCH_OUT") || Path.join(@repo, if(quick?, do: "bench/out", else: "docs")),
      keep: System.get_env("BENCH_KEEP") in ["1", "true"]
    }
  end

  # -- one project size -------------------------------------------------

  defp measure_size(base, size, config) do
    log("#{size} modules: generating and compiling")
    workload = Workload.setup(base, size)
    project = workload.project
    log("#{size} modules: compiled in #{workload.compile_ms} ms, interpreted in #{workload.interpret_ms} ms")

    server = Session.start(workload)
    bare = BareCompiler.start(project)
    # Warm both compilers and the reload path before anything is timed.
    EditReload.run(workload, server, bare, 1)

    log("#{size} modules: body-only edits")
    edits = EditReload.run(workload, server, bare, config.runs)
    BareCompiler.stop(bare)

    log("#{size} modules: no-op reloads")
    noop = NoopReload.run(server, max(config.runs * 3, 30))

    log("#{size} modules: macro module edits")
    macro = MacroReload.run(workload, server, config.runs)

    extras = if size == Enum.min(config.sizes), do: extras(workload, server, config), else: %{}
    Session.stop(Map.get(extras, :server, server))

    settle(size)
    log("#{size} modules: restarts in this VM")
    restart = Restart.run(workload, config.runs)
    log("#{size} modules: restarts in a new VM")
    fresh_restart = FreshRestart.run(workload, config.runs)
    Workload.teardown(workload, keep: config.keep)

    size_result = %{
      size: size,
      files: project.sources |> Map.values() |> Enum.uniq() |> length(),
      macro_users: length(project.macro_users),
      setup: %{compile_ms: workload.compile_ms, interpret_ms: workload.interpret_ms},
      edits: edits,
      noop: noop,
      macro: macro,
      restart: restart,
      fresh_restart: fresh_restart
    }

    log("#{size} modules: done")
    Map.put(Map.delete(extras, :server), :size_result, size_result)
  end

  # Call overhead needs moments without any manager; endurance runs last.
  defp extras(workload, server, config) do
    size = workload.project.size
    Session.stop(server)
    log("#{size} modules: interpreted-call overhead")

    overhead =
      workload.project.hot_module
      |> CallOverhead.run(fn -> Session.start(workload) end, config.overhead_rounds, config.overhead_seconds)
      |> Map.merge(%{size: size, seconds: config.overhead_seconds})

    server = Session.start(workload)
    log("#{size} modules: endurance, #{config.endurance} reloads, a call every millisecond")
    endurance = workload |> Endurance.run(server, config.endurance, 1) |> Map.put(:size, size)
    log("#{size} modules: #{config.saturated} reloads, calls back to back")
    saturated = workload |> Endurance.run(server, config.saturated, 0) |> Map.put(:size, size)
    %{overhead: overhead, endurance: endurance, saturated: saturated, server: server}
  end

  # Work the earlier phases left behind in this VM (the interpreter server
  # answering a backlog of a saturated run's events, a collection) would
  # slow the restarts, which run here or beside it: wait, boundedly, until
  # no process is runnable, and say what was busy.
  defp settle(size, timeout_ms \\ 120_000) do
    busiest = busiest_queue()
    {waited_us, _} = :timer.tc(fn -> await_quiet(System.monotonic_time(:millisecond) + timeout_ms) end)

    if waited_us > 400_000 do
      log(
        "#{size} modules: waited #{div(waited_us, 1000)} ms for this VM to settle (longest queue before: #{inspect(busiest)})"
      )
    end
  end

  # Quiet: at most this process runnable, at two readings 200 ms apart.
  defp await_quiet(deadline) do
    quiet? = fn -> :erlang.statistics(:total_run_queue_lengths_all) <= 1 end

    cond do
      System.monotonic_time(:millisecond) > deadline -> :timeout
      quiet?.() and (Process.sleep(200) == :ok and quiet?.()) -> :ok
      true -> Process.sleep(50) && await_quiet(deadline)
    end
  end

  defp busiest_queue do
    Process.list()
    |> Enum.map(&{&1, Process.info(&1, [:registered_name, :message_queue_len])})
    |> Enum.reject(fn {_, info} -> is_nil(info) end)
    |> Enum.max_by(fn {_, info} -> info[:message_queue_len] end)
  end

  # -- output -----------------------------------------------------------

  defp publish(results, config) do
    File.mkdir_p!(config.out)
    page_path = Path.join(config.out, "benchmarks.md")
    source_page = if File.exists?(page_path), do: page_path, else: Path.join(@repo, "docs/benchmarks.md")
    File.write!(page_path, Markdown.update(File.read!(source_page), results))
    File.write!(Path.join(config.out, "bench_reload_vs_restart.svg"), chart(results))
    summary(results)
    log("wrote #{page_path} and the chart")
  end

  defp chart(%{sizes: sizes}) do
    series = [
      {"restart, 5 modules", "#e67e22", false, &Goals.restart_total(&1, 5)},
      {"restart, 1 module", "#c0392b", false, &Goals.restart_total(&1, 1)},
      {"warm-VM restart, 1 module", "#c0392b", true, fn s -> s.restart[1].total end},
      {"reload, 5 modules", "#2471a3", false, fn s -> s.edits[5].total end},
      {"reload, 1 module", "#1e8449", false, fn s -> s.edits[1].total end},
      {"bare compile, 1 module", "#7f8c8d", true, fn s -> s.edits[1].bare end}
    ]

    Chart.render(
      "Body-only edit: reload vs restarting the session",
      for {label, color, dashed, samples} <- series do
        %{
          label: label,
          color: color,
          dashed: dashed,
          points: for(s <- sizes, do: {s.size, Stats.median(samples.(s)) / 1000})
        }
      end
    )
  end

  defp summary(results) do
    IO.puts("modules edited     reload      plan   compile      load        bp      bare   restart warm rest")

    for s <- results.sizes, k <- s.edits |> Map.keys() |> Enum.sort() do
      e = s.edits[k]

      cells = [
        e.total,
        e.plan,
        e.compile,
        e.load,
        e.breakpoints,
        e.bare,
        Goals.restart_total(s, k),
        s.restart[k].total
      ]

      IO.puts(
        String.pad_leading("#{s.size}", 7) <> String.pad_leading("#{k}", 7) <> Enum.map_join(cells, &cell/1)
      )
    end

    for v <- Goals.verdicts(results) do
      IO.puts("#{if v.met, do: "met   ", else: "MISSED"}  #{v.goal}: #{v.detail}")
    end
  end

  defp cell([]), do: String.pad_leading("—", 10)
  defp cell(samples), do: samples |> Stats.median() |> Stats.ms() |> String.pad_leading(10)

  defp meta(config, load_before, duration_s) do
    %{
      date: Date.utc_today(),
      cores: :erlang.system_info(:logical_processors_available),
      cpu: cpu_model(),
      memory: memory_total(),
      otp: System.otp_release(),
      elixir: System.version(),
      command: if(config.quick, do: "BENCH_QUICK=1 make bench", else: "make bench"),
      runs: config.runs,
      load_before: load_before,
      load_after: load_average(),
      duration_s: duration_s
    }
  end

  defp cpu_model do
    with {:ok, text} <- File.read("/proc/cpuinfo"),
         [_, model] <- Regex.run(~r/model name\s*:\s*(.+)/, text) do
      String.trim(model)
    else
      _ -> "unknown CPU"
    end
  end

  defp memory_total do
    with {:ok, text} <- File.read("/proc/meminfo"),
         [_, kb] <- Regex.run(~r/MemTotal:\s*(\d+) kB/, text) do
      "#{round(String.to_integer(kb) / 1_048_576)} GiB"
    else
      _ -> "unknown memory"
    end
  end

  defp load_average do
    case File.read("/proc/loadavg") do
      {:ok, text} -> text |> String.split() |> hd()
      _ -> "?"
    end
  end

  defp env_int(name, default) do
    case System.get_env(name) do
      nil -> default
      value -> String.to_integer(value)
    end
  end

  defp env_list(name, default) do
    case System.get_env(name) do
      nil -> default
      value -> value |> String.split(",", trim: true) |> Enum.map(&String.to_integer(String.trim(&1)))
    end
  end

  defp log(message), do: IO.puts(:stderr, "[bench] #{message}")
end
