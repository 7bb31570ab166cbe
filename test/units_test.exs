defmodule DebugReload.UnitsTest do
  use ExUnit.Case, async: true

  alias DebugReload.{ExecutableLines, Patterns, Report}

  describe "Patterns" do
    test "wildcards follow ElixirLS's debugInterpretModulesPatterns" do
      p = Patterns.compile(["MyApp.*", ":my_erl", "Other"])
      assert Patterns.match?(p, MyApp.Repo)
      assert Patterns.match?(p, MyApp.Web.Router)
      refute Patterns.match?(p, MyApp)
      assert Patterns.match?(p, Other)
      refute Patterns.match?(p, OtherThing)
      assert Patterns.match?(p, :my_erl)
      refute Patterns.match?(Patterns.compile([]), MyApp.Repo)
    end

    test "dots and other characters are literal" do
      refute Patterns.match?(Patterns.compile(["My.App"]), MyXApp)
    end

    test "bad patterns are named" do
      assert_raise ArgumentError, ~r/:bad/, fn -> Patterns.compile([:bad]) end
    end
  end

  describe "ExecutableLines" do
    test "lists the lines of body expressions, nested ones included" do
      source = """
      defmodule ExecLinesProbe do
        def f(x) do
          y = x + 1

          case y do
            1 ->
              :one

            _ ->
              fn z ->
                z * 2
              end
          end
        end
      end
      """

      # A beam compiled by Mix, exactly as a debugged project has them.
      project = DebugReload.Test.Project.create(%{"lib/probe.ex" => source}, compile: false)
      {_, 0} = DebugReload.Test.Project.mix(project, ["compile"])
      beam = File.read!(Path.join(project.ebin, "Elixir.ExecLinesProbe.beam"))
      File.rm_rf!(project.root)

      {:ok, lines} = ExecutableLines.from_beam(beam)
      # `:one` is an atom: Elixir gives it the line of its clause, 6.
      assert Enum.all?([3, 5, 6, 10, 11], &(&1 in lines)), inspect(lines)
      refute 4 in lines
      refute 8 in lines
    end

    test "a beam without debug info is an error" do
      {:ok, _mod, beam} = :compile.forms([{:attribute, 1, :module, :no_dbg_probe}], [:binary])
      assert {:error, _} = ExecutableLines.from_beam(beam)
    end
  end

  describe "Report" do
    test "prints a one-line summary and a short inspect" do
      report = %Report{
        status: :ok,
        total_modules: 120,
        modules: [
          %{module: A, source: "a.ex", action: :reinterpreted, reason: "beam changed"},
          %{module: B, source: "b.ex", action: :reloaded, reason: "beam changed"},
          %{module: C, source: "c.ex", action: :on_disk, reason: "not loaded"}
        ],
        breakpoints: [
          %{module: A, source: "a.ex", old_line: 3, new_line: 5, status: :moved, reason: "lines above"}
        ],
        timings: %{total_us: 41_000, compile_us: 30_000, load_us: 8_000, breakpoints_us: 1_000}
      }

      assert to_string(report) ==
               "Reloaded 2 of 120 modules in 41 ms (compile 30, interpret 7, breakpoints 1); 1 breakpoint moved"

      assert inspect(report) =~ "A:3 -> 5 moved"
      assert to_string(%Report{status: :noop, total_modules: 3}) =~ "Nothing to reload"
      assert to_string(%Report{status: :error, error: "boom"}) =~ "boom"
    end
  end
end
