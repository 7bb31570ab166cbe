defmodule DebugReload.Breakpoints do
  @moduledoc """
  Carries the breakpoints of a re-interpreted module across an edit.

  The plan comes from the Rust remapper (`DebugReload.Native.remap_breakpoints/5`):
  a text diff of the source snapshot against the new source, snapped onto
  the lines where the interpreter can actually stop. Applying it moves each
  `:int` breakpoint with its status, trigger action and condition.
  """

  alias DebugReload.{Interpreter, Native}

  @type planned :: %{
          module: module(),
          source: String.t() | nil,
          old_line: pos_integer(),
          new_line: pos_integer() | nil,
          status: :kept | :moved | :relocated | :removed,
          reason: String.t(),
          options: list(),
          from_module: module()
        }

  @doc """
  Plans where each of `breaks` (`{line, options}`) goes. `origin` says
  where the breakpoints live now when it is not `module` itself:
  `{:renamed, old_module}` when the module was renamed, or
  `{:restored, module}` when its file was deleted and came back (its
  breakpoints were deleted with it and are set again).
  """
  @spec plan(module(), String.t() | nil, map(), [Interpreter.breakpoint()], origin) :: [planned()]
        when origin: nil | {:renamed, module()} | {:restored, module()}
  def plan(module, source, edit, breaks, origin \\ nil)
  def plan(_module, _source, _edit, [], _origin), do: []

  def plan(module, source, edit, breaks, origin) do
    lines = Enum.map(breaks, &elem(&1, 0))
    from = if origin, do: elem(origin, 1), else: module

    Native.remap_breakpoints(edit.old_text, edit.new_text, edit.old_statements, edit.new_statements, lines)
    |> Enum.zip(breaks)
    |> Enum.map(fn {remap, {_line, options}} ->
      remap
      |> Map.merge(%{module: module, source: source, options: options, from_module: from})
      |> carried(origin)
    end)
  end

  # Breakpoints that do not exist on `module` yet must be set even where
  # their line did not change.
  defp carried(planned, nil), do: planned
  defp carried(%{status: :removed} = planned, _origin), do: planned

  defp carried(planned, {:renamed, from}),
    do: %{planned | status: :moved, reason: "module renamed from #{inspect(from)}; " <> planned.reason}

  defp carried(planned, {:restored, _module}),
    do: %{planned | status: :moved, reason: "restored with its file; " <> planned.reason}

  @doc "Moves the interpreter's breakpoints as planned."
  @spec apply_plan([planned()]) :: :ok
  def apply_plan(planned) do
    for %{status: status} = bp <- planned, status != :kept do
      Interpreter.delete_breakpoint(bp.from_module, bp.old_line)
    end

    # Two breakpoints that land on one line share it; the first one's
    # options win, as the interpreter allows one breakpoint per line.
    planned
    |> Enum.filter(&(&1.status != :kept and &1.new_line))
    |> Enum.uniq_by(&{&1.module, &1.new_line})
    |> Enum.each(&Interpreter.set_breakpoint(&1.module, &1.new_line, &1.options))
  end

  @doc "Drops the internal options field for the report."
  @spec to_report([planned()]) :: [DebugReload.Report.breakpoint_entry()]
  def to_report(planned), do: Enum.map(planned, &Map.drop(&1, [:options, :from_module]))
end
