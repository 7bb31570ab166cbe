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
          options: list()
        }

  @doc "Plans where each of `breaks` (`{line, options}`) goes."
  @spec plan(module(), String.t() | nil, map(), [Interpreter.breakpoint()]) :: [planned()]
  def plan(_module, _source, _edit, []), do: []

  def plan(module, source, edit, breaks) do
    lines = Enum.map(breaks, &elem(&1, 0))

    Native.remap_breakpoints(edit.old_text, edit.new_text, edit.old_executable, edit.new_executable, lines)
    |> Enum.zip(breaks)
    |> Enum.map(fn {remap, {_line, options}} ->
      Map.merge(remap, %{module: module, source: source, options: options})
    end)
  end

  @doc "Moves the interpreter's breakpoints as planned."
  @spec apply_plan([planned()]) :: :ok
  def apply_plan(planned) do
    for %{status: status} = bp <- planned, status != :kept do
      Interpreter.delete_breakpoint(bp.module, bp.old_line)
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
  def to_report(planned), do: Enum.map(planned, &Map.delete(&1, :options))
end
