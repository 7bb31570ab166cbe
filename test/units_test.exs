defmodule DebugReload.UnitsTest do
  use ExUnit.Case, async: true

  alias DebugReload.{Beam, ExecutableLines, Patterns, Report}

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

  describe "Beam.differing_from_loaded/1" do
    @tag :tmp_dir
    test "names the beams whose module runs other code than the file holds", %{tmp_dir: dir} do
      n = System.unique_integer([:positive])

      [same, rewritten, elsewhere, never] =
        for name <- ~w(Same Rewritten Elsewhere Never), do: :"Elixir.BeamProbe#{n}#{name}"

      write = fn module, value, to -> write_probe(module, value, Path.join(dir, to)) end

      for m <- [same, rewritten, elsewhere],
          do: :code.load_abs(String.to_charlist(write.(m, 1, "ebin") |> Path.rootname()))

      # `elsewhere` runs the copy in another directory; `never` was never loaded.
      :code.purge(elsewhere) && :code.delete(elsewhere) && :code.purge(elsewhere)

      {:module, ^elsewhere} =
        :code.load_abs(String.to_charlist(write.(elsewhere, 1, "other") |> Path.rootname()))

      write.(elsewhere, 2, "ebin")
      write.(rewritten, 2, "ebin")
      write.(never, 2, "ebin")
      on_exit(fn -> for m <- [same, rewritten, elsewhere], do: :code.purge(m) && :code.delete(m) end)

      paths = Path.wildcard(Path.join(dir, "ebin/*.beam"))
      assert [%{module: ^rewritten, path: path, source: source}] = Beam.differing_from_loaded(paths)
      assert path == Path.join(dir, "ebin/#{rewritten}.beam")
      assert source == "/probe/probe.erl"
    end
  end

  # Compiled without loading it (Code.compile_string/2 would load it).
  defp write_probe(module, value, dir) do
    forms = [
      {:attribute, 1, :module, module},
      {:attribute, 1, :export, [value: 0]},
      {:function, 1, :value, 0, [{:clause, 1, [], [], [{:integer, 1, value}]}]}
    ]

    {:ok, ^module, beam} = :compile.forms(forms, [:binary, {:source, ~c"/probe/probe.erl"}])
    path = Path.join(dir, "#{module}.beam")
    File.mkdir_p!(dir)
    File.write!(path, beam)
    path
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
