defmodule DebugReload.Report do
  @moduledoc """
  What a reload did, or would do, and why.

  Returned by `DebugReload.reload/1` as `{:ok, report}` or `{:error, report}`.
  In iex it prints as a one-screen summary; the fields hold the details.

    * `:status` - `:ok` (code was reloaded), `:noop` (nothing changed),
      `:dry_run` (plan only), `:error` (nothing was loaded, or everything
      loaded was rolled back) or `:deferred` (processes were busy in the
      changed code; nothing was loaded and the manager retries).
    * `:modules` - one map per module touched: `:module`, `:source`,
      `:action` and `:reason`. Actions are `:reinterpreted`, `:interpreted`
      (a new module matching the interpret patterns), `:reloaded` (native),
      `:loaded` (a new native module), `:on_disk` (not loaded yet; the next
      call loads the new beam), `:deleted`, `:deferred`, `:planned` and
      `:rolled_back` (loaded, then put back when a later step failed).
    * `:breakpoints` - one map per breakpoint of a reloaded module:
      `:module`, `:source`, `:old_line`, `:new_line`, `:status`
      (`:kept`, `:moved`, `:relocated`, `:removed`) and `:reason`.
    * `:processes` - processes the reload concerned: `:pid`, `:module`,
      `:status` (`:paused_on_old_code`, `:migrated` or `:migration_failed`)
      and `:detail`.
    * `:diagnostics` - compiler errors and warnings: `:file`, `:line`,
      `:severity`, `:message`.
    * `:warnings` - human-readable strings.
    * `:files` - the source change set that triggered the reload.
    * `:timings` - microseconds: `:total_us` plus, when they ran,
      `:plan_us`, `:compile_us` and `:load_us` (which includes moving
      breakpoints: they move inside the all-or-nothing load; `:breakpoints_us`
      is that part of it: working out where they go and moving them),
      `:checks_us` when the load ran while the compiler was still checking
      the compiled code (undefined or deprecated calls, `@after_verify`;
      `:compile_us` then ends when the beams were ready): the part of
      `:load_us` spent waiting for those checks before committing, and
      `:sync_us` when the reload first waited for Mix's compile task to
      catch up with the previous planned compile.
    * `:compiler` - how the reload compiled: `:planned` (the planned files
      alone, in the worker node) or `:mix` (Mix's compile task); `nil` when
      nothing was compiled.
    * `:total_modules` - modules known to the manager, for the summary.
    * `:error` - for `:error` reports, a one-line reason.
    * `:plan` - the reload plan (see `DebugReload.Planner`): before the
      compile for `:dry_run` reports, resolved after it otherwise. Each
      file and module says why it is there.
  """

  @type status :: :ok | :noop | :dry_run | :error | :deferred
  @type module_entry :: %{
          module: module(),
          source: String.t() | nil,
          action: atom(),
          reason: String.t()
        }
  @type breakpoint_entry :: %{
          module: module(),
          source: String.t() | nil,
          old_line: pos_integer(),
          new_line: pos_integer() | nil,
          status: :kept | :moved | :relocated | :removed,
          reason: String.t()
        }
  @type process_entry :: %{pid: pid(), module: module(), status: atom(), detail: String.t()}
  @type diagnostic :: %{
          file: String.t() | nil,
          line: non_neg_integer() | nil,
          severity: :error | :warning | :information | :hint,
          message: String.t()
        }

  @type t :: %__MODULE__{
          status: status(),
          modules: [module_entry()],
          breakpoints: [breakpoint_entry()],
          processes: [process_entry()],
          diagnostics: [diagnostic()],
          warnings: [String.t()],
          files: %{changed: [String.t()], added: [String.t()], removed: [String.t()]},
          timings: %{required(:total_us) => non_neg_integer(), optional(atom()) => non_neg_integer()},
          total_modules: non_neg_integer(),
          compiler: :planned | :mix | nil,
          error: String.t() | nil,
          plan: DebugReload.Planner.plan() | nil
        }

  defstruct status: :noop,
            compiler: nil,
            modules: [],
            breakpoints: [],
            processes: [],
            diagnostics: [],
            warnings: [],
            files: %{changed: [], added: [], removed: []},
            timings: %{total_us: 0},
            total_modules: 0,
            error: nil,
            plan: nil

  @code_actions [:reinterpreted, :interpreted, :reloaded, :loaded]

  @doc "Modules whose running code changed."
  @spec reloaded_modules(t()) :: [module_entry()]
  def reloaded_modules(%__MODULE__{modules: modules}),
    do: Enum.filter(modules, &(&1.action in @code_actions))

  @doc """
  A one-line summary, e.g. "Reloaded 3 of 120 modules in 41 ms (compile 30,
  interpret 8, breakpoints 1); 1 breakpoint moved".
  """
  @spec summary(t()) :: String.t()
  def summary(%__MODULE__{status: :noop} = r),
    do: "Nothing to reload (#{r.total_modules} modules unchanged) in #{ms(r.timings.total_us)} ms"

  def summary(%__MODULE__{status: :dry_run, plan: %{files: files}} = r),
    do:
      "Dry run: would recompile #{length(files)} #{plural(length(files), "file")} " <>
        "and reload up to #{length(r.modules)} of #{r.total_modules} modules"

  def summary(%__MODULE__{status: :dry_run} = r),
    do: "Dry run: would reload #{length(r.modules)} of #{r.total_modules} modules"

  def summary(%__MODULE__{status: :deferred} = r),
    do: "Reload deferred: #{r.error}"

  def summary(%__MODULE__{status: :error} = r),
    do: "Reload rejected, nothing changed: #{r.error}"

  def summary(%__MODULE__{} = r) do
    t = r.timings

    # The breakpoints' and the checks' times are part of the load's; shown
    # apart, not twice.
    t =
      if t[:load_us],
        do: Map.update!(t, :load_us, &(&1 - Map.get(t, :breakpoints_us, 0) - Map.get(t, :checks_us, 0))),
        else: t

    phases =
      [compile: :compile_us, interpret: :load_us, breakpoints: :breakpoints_us, checks: :checks_us]
      |> Enum.flat_map(fn {label, key} ->
        if Map.has_key?(t, key), do: ["#{label} #{ms(t[key])}"], else: []
      end)

    base =
      "Reloaded #{length(reloaded_modules(r))} of #{r.total_modules} modules in #{ms(t.total_us)} ms" <>
        if(phases == [], do: "", else: " (#{Enum.join(phases, ", ")})")

    [base | breakpoint_phrases(r) ++ process_phrases(r)] |> Enum.join("; ")
  end

  defp breakpoint_phrases(%__MODULE__{breakpoints: bps}) do
    for status <- [:moved, :relocated, :removed],
        count = Enum.count(bps, &(&1.status == status)),
        count > 0 do
      "#{count} #{plural(count, "breakpoint")} #{status}"
    end
  end

  defp process_phrases(%__MODULE__{processes: procs}) do
    case Enum.count(procs, &(&1.status == :paused_on_old_code)) do
      0 -> []
      1 -> ["1 paused process finishes its call on old code"]
      n -> ["#{n} paused processes finish their calls on old code"]
    end
  end

  defp plural(1, word), do: word
  defp plural(_, word), do: word <> "s"

  defp ms(us), do: div(us + 500, 1000)

  defimpl String.Chars do
    def to_string(report), do: DebugReload.Report.summary(report)
  end

  defimpl Inspect do
    import Inspect.Algebra

    def inspect(report, opts) do
      details =
        Enum.map(report.modules, fn m -> "#{inspect(m.module)}: #{m.action} (#{m.reason})" end) ++
          Enum.map(report.breakpoints, fn b ->
            "#{inspect(b.module)}:#{b.old_line} -> #{b.new_line || "none"} #{b.status} (#{b.reason})"
          end) ++
          Enum.map(report.processes, fn p -> "#{inspect(p.pid)} #{p.status}: #{p.detail}" end) ++
          Enum.map(report.diagnostics, fn d ->
            "#{d.severity} #{d.file}:#{d.line}: #{first_line(d.message)}"
          end) ++ Enum.map(report.warnings, &("warning: " <> &1))

      lines = Enum.take(details, 20)
      more = length(details) - length(lines)
      lines = if more > 0, do: lines ++ ["... #{more} more"], else: lines

      concat([
        "#DebugReload.Report<",
        to_doc(DebugReload.Report.summary(report), opts),
        nest(concat(Enum.map(lines, &concat(line(), "  " <> &1))), 2),
        ">"
      ])
    end

    defp first_line(message), do: message |> String.split("\n", parts: 2) |> hd()
  end
end
