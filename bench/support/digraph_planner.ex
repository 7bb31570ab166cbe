defmodule DebugReload.Bench.DigraphPlanner do
  @moduledoc """
  The planning algorithm of `debug_reload_core::plan`, in Elixir over
  `:digraph`, for the side-by-side benchmark (bench/plan.exs): the same
  graph (file and module vertices, labelled edges), the same relevance
  pruning, the same passes (Mix's fixed point with per-pass staleness and
  export cascades), the lower and upper runs, and a cause per decision.
  It covers what the synthetic workload has: one app, Elixir sources. It
  builds no explanation text (the NIF does), so the comparison favours it.
  """

  @doc "Builds the graph from a manifest as `DebugReload.Manifest` produces it."
  def build(manifest) do
    g = :digraph.new()

    for source <- manifest.sources do
      file = {:file, source.path}
      :digraph.add_vertex(g, file)

      for module <- source.modules do
        :digraph.add_vertex(g, {:module, module})
        :digraph.add_edge(g, file, {:module, module}, :defines)
      end

      own = MapSet.new(source.modules)

      for {label, targets} <- [compile: source.compile, export: source.export, runtime: source.runtime],
          target <- targets,
          not MapSet.member?(own, target) do
        :digraph.add_vertex(g, {:module, target})
        :digraph.add_edge(g, file, {:module, target}, label)
      end
    end

    %{graph: g, relevant: relevance(g)}
  end

  def delete(%{graph: g}), do: :digraph.delete(g)

  # Modules whose staleness can recompile something: compile-time targets
  # and what they reach through runtime references.
  defp relevance(g) do
    roots =
      for {:module, _} = v <- :digraph.vertices(g),
          Enum.any?(in_edges(g, v), &(elem(&1, 1) == :compile)),
          do: v

    grow(g, roots, MapSet.new(roots))
  end

  defp grow(_g, [], seen), do: seen

  defp grow(g, [module | rest], seen) do
    reached =
      for {file, :defines} <- in_edges(g, module),
          {target, :runtime} <- out_edges(g, file),
          not MapSet.member?(seen, target),
          uniq: true,
          do: target

    grow(g, reached ++ rest, Enum.reduce(reached, seen, &MapSet.put(&2, &1)))
  end

  @doc """
  The plan for a change of `paths`: files and modules, each definite or
  conditional, with the explanation the NIF gives (references not located).
  """
  def plan(planner, paths, root \\ "/synthetic") do
    # As in Rust: one app, so the definite part is the first pass.
    run = simulate(planner, paths, true)
    definite? = fn module -> elem(Map.fetch!(run.recompiled, module), 1) <= 1 end

    files =
      for {file, cause} <- run.files do
        definite = match?({:root, _}, cause) or definite?.(elem(cause, 1))
        {:file, path} = file
        %{path: path, certainty: certainty(definite), explanation: render(walk(run, {:file, file}, root))}
      end

    modules =
      for {module, _} <- run.recompiled do
        {:module, name} = module
        explanation = render(walk(run, {:recompiled, module}, root))
        %{module: Atom.to_string(name), certainty: certainty(definite?.(module)), explanation: explanation}
      end

    %{files: Enum.sort_by(files, & &1.path), modules: Enum.sort_by(modules, & &1.module)}
  end

  defp certainty(true), do: :definite
  defp certainty(false), do: :conditional

  defp simulate(planner, paths, assume_changed?) do
    run = %{recompiled: %{}, files: %{}, stale: %{}, export_stale: %{}, export_only: MapSet.new(), pass: 0}
    files = for path <- paths, do: {{:file, path}, {:root, :changed}}
    {run, recompiled} = pass(planner, run, files, [])
    cascade(planner, run, recompiled, assume_changed?)
  end

  defp cascade(planner, run, recompiled, assume_changed?) do
    pending =
      if assume_changed?,
        do: Enum.reject(recompiled, &MapSet.member?(run.export_only, &1)),
        else: []

    case pending do
      [] ->
        run

      _ ->
        export_stale = Enum.reduce(pending, run.export_stale, &Map.put_new(&2, &1, :may_change))
        {run, recompiled} = pass(planner, %{run | export_stale: export_stale}, [], pending)
        cascade(planner, run, recompiled, assume_changed?)
    end
  end

  defp pass(planner, run, files, export_stale) do
    run = %{run | pass: run.pass + 1}
    g = planner.graph

    exported =
      for target <- export_stale,
          {file, :export} <- in_edges(g, target),
          {module, :defines} <- out_edges(g, file),
          do: {:recompile, module, {:ref, :export, target, file}}

    queue = :queue.from_list(Enum.map(files, fn {f, c} -> {:file, f, c} end) ++ exported)
    drain(planner, run, queue, MapSet.new(), [])
  end

  defp drain(planner, run, queue, stale, recompiled) do
    case :queue.out(queue) do
      {:empty, _} ->
        {run, recompiled}

      {{:value, event}, queue} ->
        {run, queue, stale, recompiled} = handle(planner, event, run, queue, stale, recompiled)
        drain(planner, run, queue, stale, recompiled)
    end
  end

  defp handle(planner, {:file, file, cause}, run, queue, stale, recompiled) do
    if Map.has_key?(run.files, file) do
      {run, queue, stale, recompiled}
    else
      events = for {m, :defines} <- out_edges(planner.graph, file), do: {:recompile, m, {:defined_in, file}}
      {%{run | files: Map.put(run.files, file, cause)}, enqueue(queue, events), stale, recompiled}
    end
  end

  defp handle(planner, {:recompile, module, cause}, run, queue, stale, recompiled) do
    export_only = export_only?(cause, run)

    case run.recompiled do
      %{^module => {_, pass}} ->
        run =
          if pass == run.pass and export_only == false,
            do: %{run | export_only: MapSet.delete(run.export_only, module)},
            else: run

        {run, queue, stale, recompiled}

      _ ->
        run = %{
          run
          | recompiled: Map.put(run.recompiled, module, {cause, run.pass}),
            export_only:
              if(export_only == true, do: MapSet.put(run.export_only, module), else: run.export_only)
        }

        files = for {f, :defines} <- in_edges(planner.graph, module), do: {:file, f, {:file_of, module}}
        {queue, stale} = mark_stale(planner, module, enqueue(queue, files), stale, run)
        {run, queue, stale, [module | recompiled]}
    end
  end

  defp handle(planner, {:stale, module, cause}, run, queue, stale, recompiled) do
    if Map.has_key?(run.recompiled, module) or MapSet.member?(stale, module) do
      {run, queue, stale, recompiled}
    else
      run = %{run | stale: Map.put_new(run.stale, {module, run.pass}, cause)}
      {queue, stale} = mark_stale(planner, module, queue, stale, run)
      {run, queue, stale, recompiled}
    end
  end

  defp export_only?({:ref, :export, _, _}, _run), do: true

  defp export_only?({:defined_in, file}, run) do
    case run.files do
      %{^file => {:file_of, _}} -> nil
      _ -> false
    end
  end

  defp export_only?(_cause, _run), do: false

  defp mark_stale(planner, module, queue, stale, run) do
    if MapSet.member?(stale, module) do
      {queue, stale}
    else
      stale = MapSet.put(stale, module)

      events =
        for {file, label} <- in_edges(planner.graph, module),
            label in [:compile, :runtime],
            {referrer, :defines} <- out_edges(planner.graph, file),
            label == :compile or
              (MapSet.member?(planner.relevant, referrer) and not MapSet.member?(stale, referrer) and
                 not Map.has_key?(run.recompiled, referrer)) do
          cause = {:ref, label, module, file}
          if label == :compile, do: {:recompile, referrer, cause}, else: {:stale, referrer, cause}
        end

      {enqueue(queue, events), stale}
    end
  end

  defp enqueue(queue, events), do: Enum.reduce(events, queue, &:queue.in/2)

  # -- explanations, as explain.rs walks and renders them ----------------------

  defp walk(run, start, root), do: walk(run, start, root, MapSet.new(), [])

  defp walk(_run, :done, _root, _seen, steps), do: Enum.reverse(steps)

  defp walk(run, cursor, root, seen, steps) do
    if length(steps) >= 64 or MapSet.member?(seen, cursor) do
      Enum.reverse([%{subject: "", kind: :module, relation: :truncated, path: nil, detail: nil} | steps])
    else
      {next, new_steps} = step(run, cursor, root)
      walk(run, next, root, MapSet.put(seen, cursor), Enum.reverse(new_steps) ++ steps)
    end
  end

  defp step(run, {:recompiled, module}, root) do
    {cause, pass} = Map.fetch!(run.recompiled, module)
    module_step(run, module, cause, pass, root)
  end

  defp step(run, {:stale_in, module, pass}, root) do
    case run.stale do
      %{{^module, ^pass} => cause} -> module_step(run, module, cause, pass, root)
      _ -> {{:recompiled, module}, []}
    end
  end

  defp step(run, {:file, file}, root) do
    {:file, path} = file
    subject = rel(path, root)

    case Map.fetch!(run.files, file) do
      {:root, relation} ->
        {:done, [%{subject: subject, kind: :file, relation: relation, path: subject, detail: nil}]}

      {:file_of, module} ->
        {{:recompiled, module},
         [%{subject: subject, kind: :file, relation: :defines, path: subject, detail: nil}]}
    end
  end

  defp module_step(run, {:module, name} = module, cause, pass, root) do
    subject = display(name)

    case cause do
      {:defined_in, {:file, path} = file} ->
        case Map.fetch!(run.files, file) do
          {:root, relation} ->
            {:done,
             [%{subject: subject, kind: :module, relation: relation, path: rel(path, root), detail: nil}]}

          {:file_of, other} when other != module ->
            step = %{
              subject: subject,
              kind: :module,
              relation: :same_file,
              path: rel(path, root),
              detail: nil
            }

            {{:recompiled, other}, [step]}

          _ ->
            {:done, []}
        end

      {:ref, edge, target, {:file, path}} ->
        relation = %{compile: :compile_time, export: :export, runtime: :runtime}[edge]
        ref = %{subject: subject, kind: :module, relation: relation, path: rel(path, root), detail: nil}

        if edge == :export do
          export_step(run, target, ref)
        else
          {stale_target(run, target, pass), [ref]}
        end
    end
  end

  defp export_step(run, {:module, name} = target, ref) do
    case Map.get(run.export_stale, target) do
      :may_change ->
        {:done,
         [
           ref,
           %{subject: display(name), kind: :module, relation: :exports_may_change, path: nil, detail: nil}
         ]}

      nil ->
        {{:recompiled, target}, [ref]}
    end
  end

  defp stale_target(run, target, pass) do
    cond do
      Map.has_key?(run.stale, {target, pass}) -> {:stale_in, target, pass}
      Map.has_key?(run.recompiled, target) -> {:recompiled, target}
      true -> :done
    end
  end

  defp render(steps), do: Enum.map_join(steps, " ← ", &render_step/1)

  defp render_step(%{relation: relation} = step) do
    s = if step.kind == :module, do: "`#{step.subject}`", else: step.subject

    case {relation, step.kind} do
      {:changed, :module} -> "#{s} changed (#{step.path})"
      {:changed, :file} -> "#{s} changed"
      {:defines, :file} -> s
      {:same_file, _} -> "#{s} ← same file (#{step.path})"
      {:compile_time, _} -> "#{s} ← compile-time (in #{step.path})"
      {:export, _} -> "#{s} ← export (in #{step.path})"
      {:runtime, _} -> "#{s} ← runtime (in #{step.path})"
      {:exports_may_change, _} -> "if the exports of `#{step.subject}` change"
      {:truncated, _} -> "…"
    end
  end

  defp display(module), do: inspect(module)

  defp rel(path, root), do: String.replace_prefix(path, root <> "/", "")

  defp in_edges(g, v) do
    for e <- :digraph.in_edges(g, v), {_, from, _, label} = :digraph.edge(g, e), do: {from, label}
  end

  defp out_edges(g, v) do
    for e <- :digraph.out_edges(g, v), {_, _, to, label} = :digraph.edge(g, e), do: {to, label}
  end
end
