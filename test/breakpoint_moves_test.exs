defmodule DebugReload.BreakpointMovesTest do
  # Issue #4's cases, each on a real compiled module with real :int
  # breakpoints: after the reload the breakpoint must trigger where its
  # statement now is.
  use ExUnit.Case, async: false

  alias DebugReload.Test.Project

  @alpha """
    def alpha(x) do
      a = x + 1
      Process.put(:alpha_trace, a)
      b = a * 2
      b - 3
    end
  """
  @beta """
    def beta(y) do
      y * 10
    end
  """
  @base "defmodule MOD do\n" <> @alpha <> "\n" <> @beta <> "end\n"

  # {name, [{old_line, expected_new_line | nil, status}], new source, call}
  @cases [
    {"lines inserted above follow their statement", [{5, 7, :moved}],
     String.replace(@base, "  def alpha", "  @doc false\n  # a comment\n  def alpha"), {:alpha, [1]}},
    {"an edited line keeps its breakpoint", [{5, 5, :kept}],
     String.replace(@base, "b = a * 2", "b = a * 2 + 0"), {:alpha, [1]}},
    {"a moved function takes its breakpoints along", [{10, 3, :moved}, {5, 9, :moved}],
     "defmodule MOD do\n" <> @beta <> "\n" <> @alpha <> "end\n", {:beta, [1]}},
    {"a reformatted file keeps breakpoints on their statements", [{5, 8, :moved}, {10, 15, :moved}],
     """
     defmodule MOD do
       def alpha(x) do
         a =
           x +
             1

         Process.put(:alpha_trace, a)
         b =
           a * 2

         b - 3
       end

       def beta(y),
         do: y * 10
     end
     """, {:alpha, [1]}},
    {"a deleted statement relocates to the next one in its clause", [{4, 4, :relocated}],
     String.replace(@base, "    Process.put(:alpha_trace, a)\n", ""), {:alpha, [1]}},
    {"a removed function removes its breakpoints, naming it", [{10, nil, :removed}, {5, 5, :kept}],
     String.replace(@base, "\n  def beta(y) do\n    y * 10\n  end\n", ""), {:alpha, [1]}},
    {"a breakpoint on a line without code moves to the next executable line", [{8, 10, :relocated}],
     String.replace(@base, "y * 10", "y * 100"), {:beta, [1]}}
  ]

  for {{name, _moves, _new_source, _call}, index} <- Enum.with_index(@cases) do
    @tag case_index: index
    test name do
      {_name, moves, new_source, {fun, args}} = Enum.at(@cases, unquote(index))
      run_case(moves, new_source, fun, args)
    end
  end

  def condition(_bindings), do: true

  defp setup_module(suffix) do
    mod = Module.concat(["Moves#{System.unique_integer([:positive])}", suffix])
    source = String.replace(@base, "MOD", inspect(mod))
    project = Project.create(%{"lib/mod.ex" => source})
    Project.interpret([mod])
    name = :"moves_#{System.unique_integer([:positive])}"
    start_supervised!({DebugReload, project: project.root, name: name, mix_env: "dev"}, id: name)
    {mod, project, name}
  end

  defp run_case(moves, new_source, fun, args) do
    {mod, project, server} = setup_module(Calc)
    on_exit(fn -> Project.cleanup(project, [mod]) end)

    for {old, _, _} <- moves do
      :ok = :int.break(mod, old)
      :ok = :int.test_at_break(mod, old, {__MODULE__, :condition})
    end

    Project.write(project, "lib/mod.ex", String.replace(new_source, "MOD", inspect(mod)))
    assert {:ok, report} = DebugReload.reload(server: server)

    for {old, expected, status} <- moves do
      assert [bp] = Enum.filter(report.breakpoints, &(&1.old_line == old)), inspect(report.breakpoints)
      assert {bp.new_line, bp.status} == {expected, status}, inspect(bp)
      assert bp.reason != ""
    end

    expected_breaks =
      for {_, line, _} <- moves,
          line != nil,
          do: {{mod, line}, [:active, :enable, :null, {__MODULE__, :condition}]}

    assert Enum.sort(:int.all_breaks(mod)) == Enum.sort(expected_breaks)

    {_, first_line, _} = hd(moves)
    first_line = first_line || moves |> Enum.find_value(fn {_, l, _} -> l end)
    test = self()
    pid = spawn(fn -> send(test, {:result, apply(mod, fun, args)}) end)
    assert {^mod, ^first_line} = Project.await_break(pid)
    for {_, line, _} <- moves, line, do: :int.delete_break(mod, line)
    :int.continue(pid)
    assert_receive {:result, _}, 5_000
  end

  test "a renamed module carries its breakpoints to the new name" do
    {mod, project, server} = setup_module(Old)
    on_exit(fn -> Project.cleanup(project, [mod]) end)
    renamed = Module.concat([mod |> Module.split() |> hd(), New])
    on_exit(fn -> Project.cleanup(project, [renamed]) end)
    :ok = :int.break(mod, 5)
    :ok = :int.disable_break(mod, 5)

    Project.write(project, "lib/mod.ex", String.replace(@base, "MOD", inspect(renamed)))
    assert {:ok, report} = DebugReload.reload(server: server)

    assert [%{module: ^renamed, old_line: 5, new_line: 5, status: :moved, reason: reason}] =
             report.breakpoints

    assert reason =~ "renamed from #{inspect(mod)}"
    assert renamed in :int.interpreted()
    refute mod in :int.interpreted()
    assert [{{^renamed, 5}, [:inactive | _]}] = :int.all_breaks(renamed)
    assert :int.all_breaks(mod) == []

    :ok = :int.enable_break(renamed, 5)
    test = self()
    pid = spawn(fn -> send(test, {:result, renamed.alpha(1)}) end)
    assert {^renamed, 5} = Project.await_break(pid)
    :int.delete_break(renamed, 5)
    :int.continue(pid)
    assert_receive {:result, 1}, 5_000
  end

  # The file no longer holds the text the breakpoints were set on; the
  # interpreter kept a copy when it interpreted the module. Both for a
  # source edited since the last compile and for a beam compiled since the
  # module was interpreted (the new beam is on disk, never loaded).
  for compiled? <- [false, true] do
    test "an edit made before the manager started carries breakpoints (compiled: #{compiled?})" do
      mod = Module.concat(["Before#{System.unique_integer([:positive])}", Calc])
      project = Project.create(%{"lib/mod.ex" => String.replace(@base, "MOD", inspect(mod))})
      on_exit(fn -> Project.cleanup(project, [mod]) end)
      Project.interpret([mod])
      :ok = :int.break(mod, 5)

      edited = String.replace(@base, "  def alpha", "  @doc false\n  # a comment\n  def alpha")
      Project.write(project, "lib/mod.ex", String.replace(edited, "MOD", inspect(mod)))
      if unquote(compiled?), do: {_, 0} = Project.mix(project, ["compile"])

      name = :"moves_#{System.unique_integer([:positive])}"
      start_supervised!({DebugReload, project: project.root, name: name, mix_env: "dev"}, id: name)
      assert {:ok, report} = DebugReload.reload(server: name)

      assert [%{old_line: 5, new_line: 7, status: :moved}] = report.breakpoints
      assert [{{^mod, 7}, _}] = :int.all_breaks(mod)
    end
  end

  # The manager lists the interpreted modules once, when it starts; a
  # module interpreted later is known from the interpreter's event, and
  # its source text then is what the breakpoints are carried from.
  test "a module interpreted after the manager started carries its breakpoints across an edit" do
    mod = Module.concat(["Late#{System.unique_integer([:positive])}", Calc])
    project = Project.create(%{"lib/mod.ex" => String.replace(@base, "MOD", inspect(mod))})
    on_exit(fn -> Project.cleanup(project, [mod]) end)
    name = :"moves_#{System.unique_integer([:positive])}"
    start_supervised!({DebugReload, project: project.root, name: name, mix_env: "dev"}, id: name)
    assert {:ok, %{status: :noop}} = DebugReload.reload(server: name)

    Project.interpret([mod])
    :ok = :int.break(mod, 5)
    edited = String.replace(@base, "  def alpha", "  @doc false\n  # a comment\n  def alpha")
    Project.write(project, "lib/mod.ex", String.replace(edited, "MOD", inspect(mod)))
    assert {:ok, report} = DebugReload.reload(server: name)

    assert [%{old_line: 5, new_line: 7, status: :moved}] = report.breakpoints
    assert [{{^mod, 7}, _}] = :int.all_breaks(mod)
  end
end
