defmodule DebugReload.PlanParityTest do
  @moduledoc """
  The acceptance test of the reload plan: random projects, random edits,
  and for each edit the plan compared with what a real `mix compile
  --verbose` compiled ("Compiled lib/..." lines), in a warm Mix node.

  For every case:

    * the resolved plan (after the compile, with the new exports) names
      exactly the files Mix compiled;
    * before the compile, definite ⊆ Mix's files ⊆ definite ∪ conditional;
    * the modules the plan reloads are exactly those whose beam changed;
    * the graph updated incrementally equals one built from scratch.

  Reproduce a failure with the seed it prints: `PARITY_SEED=... mix test
  test/plan_parity_test.exs`.
  """
  use ExUnit.Case, async: false

  alias DebugReload.{Planner, Project, Staleness}
  alias DebugReload.Test.{MixNode, ParityProject}
  alias DebugReload.Test.Project, as: Fixture

  @projects 20
  @edits 11

  @moduletag timeout: 900_000

  setup_all do
    %{peer: MixNode.start()}
  end

  test "plans recompile exactly the files mix compile does (#{@projects * @edits} random edits)", %{
    peer: peer
  } do
    seed = seed()

    coverage =
      Enum.flat_map(1..@projects, fn p ->
        :rand.seed(:exsss, {seed, p, 17})
        run_project(peer, seed, p)
      end)

    assert length(coverage) == @projects * @edits

    # The generator must have exercised each rule, or passing proves little.
    for rule <- [:propagated, :conditions_held, :conditions_dropped, :identical_beams, :deletions] do
      assert Enum.any?(coverage, & &1[rule]), "no case exercised #{rule} (PARITY_SEED=#{seed})"
    end
  end

  defp seed do
    case System.get_env("PARITY_SEED") do
      nil -> ExUnit.configuration()[:seed]
      value -> String.to_integer(value)
    end
  end

  defp run_project(peer, seed, p) do
    spec = ParityProject.generate("Parity#{seed}P#{p}")
    fixture = Fixture.create(ParityProject.render(spec), compile: false)
    layout = layout(fixture)
    context = %{peer: peer, seed: seed, project: p, fixture: fixture, layout: layout}

    try do
      {:ok, _} = compile!(context, [], "initial compile", spec)
      planner = Planner.new(fixture.root, [layout])
      if planner.error, do: flunk("planner: #{planner.error}")

      {_spec, _planner, coverage} =
        Enum.reduce(1..@edits, {spec, planner, []}, fn edit, {spec, planner, coverage} ->
          {spec, planner, covered} = run_case(Map.put(context, :edit, edit), spec, planner)
          {spec, planner, [covered | coverage]}
        end)

      coverage
    after
      File.rm_rf(fixture.root)
    end
  end

  defp run_case(context, spec, planner) do
    {new_spec, description} = ParityProject.edit(spec)
    changes = write_edit(context.fixture, ParityProject.render(spec), ParityProject.render(new_spec))
    context = Map.merge(context, %{description: description, spec: new_spec, changes: changes})

    before = Planner.plan(planner, changes, locate: false)
    beams_before = beam_digests(context.layout.ebin)

    Staleness.ensure_visible(project(context.fixture), changes.changed ++ changes.added)
    output = compile!(context, ["--verbose"], "compile", new_spec)
    compiled = compiled_files(output, context.fixture.root)

    beams = beam_changes(beams_before, beam_digests(context.layout.ebin))
    {resolved, planner} = Planner.resolve(planner, changes, beams, locate: false)

    check(context, "the resolved plan is Mix's set", paths(resolved, :definite), compiled, resolved)
    check_bounds(context, before, compiled)
    check_reloads(context, resolved, beams)
    check_incremental(context, planner)
    {new_spec, planner, coverage(before, compiled, resolved, changes)}
  end

  # What the case exercised, so the test can show it covered every rule.
  defp coverage(before, compiled, resolved, changes) do
    edited = changes.changed ++ changes.added

    %{
      propagated: Enum.any?(compiled, &(&1 not in edited)),
      conditions_held: length(compiled) > length(paths(before, :definite)),
      conditions_dropped:
        length(paths(before, :conditional)) > length(compiled) - length(paths(before, :definite)),
      identical_beams: Enum.any?(resolved.modules, &(&1.action == :unchanged)),
      deletions: changes.removed != []
    }
  end

  # -- checks ---------------------------------------------------------------

  defp check(context, what, planned, compiled, plan) do
    if planned != compiled do
      flunk(
        failure(context, what, """
        planned:  #{inspect(rel(context, planned))}
        compiled: #{inspect(rel(context, compiled))}
        #{explain(plan)}
        """)
      )
    end
  end

  defp check_bounds(context, before, compiled) do
    definite = paths(before, :definite)
    upper = Enum.sort(definite ++ paths(before, :conditional))

    unless MapSet.subset?(MapSet.new(definite), MapSet.new(compiled)) and
             MapSet.subset?(MapSet.new(compiled), MapSet.new(upper)) do
      flunk(
        failure(context, "definite ⊆ compiled ⊆ definite ∪ conditional", """
        definite:    #{inspect(rel(context, definite))}
        conditional: #{inspect(rel(context, paths(before, :conditional)))}
        compiled:    #{inspect(rel(context, compiled))}
        #{explain(before)}
        """)
      )
    end
  end

  defp check_reloads(context, resolved, beams) do
    reloaded = for %{action: action, module: m} <- resolved.modules, action in [:reload, :new], do: m
    changed = Enum.sort(beams.changed ++ beams.added)

    if Enum.sort(reloaded) != changed do
      flunk(
        failure(context, "reloaded modules are those whose beam changed", """
        plan reloads:  #{inspect(Enum.sort(reloaded))}
        beams changed: #{inspect(changed)}
        #{explain(resolved)}
        """)
      )
    end
  end

  defp check_incremental(context, planner) do
    fresh = Planner.new(context.fixture.root, [context.layout])

    # Every node, attribute and labelled edge, not only their counts.
    if {Planner.stats(planner), Planner.fingerprint(planner)} !=
         {Planner.stats(fresh), Planner.fingerprint(fresh)} do
      flunk(
        failure(context, "the updated graph equals a fresh one", """
        updated: #{inspect(Planner.stats(planner))} #{Planner.fingerprint(planner)}
        fresh:   #{inspect(Planner.stats(fresh))} #{Planner.fingerprint(fresh)}
        """)
      )
    end
  end

  defp failure(context, what, details) do
    files =
      context.spec
      |> ParityProject.render()
      |> Enum.sort()
      |> Enum.map_join("\n", fn {path, text} -> "# #{path}\n#{text}" end)

    """
    #{what}: failed for PARITY_SEED=#{context.seed}, project #{context.project}, edit #{context.edit}
    edit: #{Enum.join(context.description, "; ")}
    changes: #{inspect(rel_changes(context))}
    #{details}
    project after the edit:
    #{files}
    """
  end

  defp explain(plan) do
    Enum.map_join(plan.files, "\n", &"  #{&1.certainty} #{&1.explanation}")
  end

  # -- the project --------------------------------------------------------------

  defp layout(fixture) do
    %{
      app: fixture.app,
      root: fixture.root,
      source_dirs: [Path.join(fixture.root, "lib")],
      ebin: fixture.ebin,
      deps: []
    }
  end

  defp project(fixture) do
    %Project{
      root: fixture.root,
      env: "dev",
      build_path: Path.join(fixture.root, "_build/dev"),
      apps: [
        %{
          app: fixture.app,
          root: fixture.root,
          source_dirs: [Path.join(fixture.root, "lib")],
          ebin: fixture.ebin
        }
      ]
    }
  end

  defp write_edit(fixture, old_files, new_files) do
    changed = for {rel, text} <- new_files, Map.has_key?(old_files, rel), old_files[rel] != text, do: rel
    added = for {rel, _} <- new_files, not Map.has_key?(old_files, rel), do: rel
    removed = for {rel, _} <- old_files, not Map.has_key?(new_files, rel), do: rel

    Enum.each(changed ++ added, &Fixture.write(fixture, &1, new_files[&1]))
    Enum.each(removed, &File.rm!(Fixture.path(fixture, &1)))

    abs = fn rels -> rels |> Enum.sort() |> Enum.map(&Fixture.path(fixture, &1)) end
    %{changed: abs.(changed), added: abs.(added), removed: abs.(removed)}
  end

  defp compile!(context, args, what, spec) do
    case MixNode.compile(context.peer, context.fixture.app, context.fixture.root, args) do
      {{status, _diagnostics}, output} when status in [:ok, :noop] ->
        if what == "initial compile", do: {:ok, output}, else: output

      {other, output} ->
        flunk(
          failure(
            Map.merge(%{edit: 0, description: [], changes: nil, spec: spec}, context),
            "#{what} failed",
            """
            #{inspect(other, limit: 5)}
            #{output}
            """
          )
        )
    end
  end

  defp compiled_files(output, root) do
    ~r/^Compiled (\S+\.ex)$/m
    |> Regex.scan(output, capture: :all_but_first)
    |> Enum.map(fn [rel] -> Path.join(root, rel) end)
    |> Enum.sort()
    |> Enum.uniq()
  end

  defp beam_digests(ebin) do
    for path <- Path.wildcard(Path.join(ebin, "*.beam")), into: %{} do
      {path |> Path.basename(".beam") |> String.to_atom(), :erlang.md5(File.read!(path))}
    end
  end

  defp beam_changes(before, later) do
    %{
      changed: for({m, d} <- later, Map.has_key?(before, m), before[m] != d, do: m),
      added: for({m, _} <- later, not Map.has_key?(before, m), do: m),
      removed: for({m, _} <- before, not Map.has_key?(later, m), do: m)
    }
  end

  defp paths(plan, certainty) do
    for(%{certainty: ^certainty, kind: :elixir, path: path} <- plan.files, do: path) |> Enum.sort()
  end

  defp rel(context, paths), do: Enum.map(paths, &Path.relative_to(&1, context.fixture.root))

  defp rel_changes(%{changes: nil}), do: nil

  defp rel_changes(context) do
    Map.new(context.changes, fn {k, paths} -> {k, rel(context, paths)} end)
  end
end
