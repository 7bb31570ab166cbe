defmodule Mix.Tasks.DebugReload.Plan do
  @shortdoc "Shows what a reload would recompile and re-interpret, and why"

  @moduledoc """
  Prints the reload plan for the current project: which files Mix would
  recompile if the given files changed, which modules that concerns, and
  the chain of causes that puts each of them there. Nothing is compiled.

      mix debug_reload.plan lib/my_app/web.ex
      mix debug_reload.plan --format json lib/my_app/web.ex

  With no files, plans the files changed since the last compile (as Mix
  would see them).

  Before compiling, some files are *conditional*: they recompile only if
  the exports (functions, macros, struct) of a module change, which only
  the compile tells. The tree marks them with the condition.

  ## Options

    * `--format` - `text` (default, a tree) or `json` (the structure the
      DAP `reloadCode` body embeds as `plan`)
  """
  use Mix.Task

  alias DebugReload.{Planner, Project}
  alias DebugReload.CompileWorker.Remote

  @impl true
  def run(args) do
    {opts, files} = OptionParser.parse!(args, strict: [format: :string])
    format = Keyword.get(opts, :format, "text")
    format in ["text", "json"] || Mix.raise("--format must be text or json, got: #{format}")

    Mix.Task.run("loadpaths", ["--no-deps-check", "--no-archives-check"])
    root = File.cwd!()
    project = struct!(Project, Remote.layout(root, to_string(Mix.env())))
    planner = Planner.new(project)
    changes = changes(planner, root, files)

    case format do
      "json" -> Mix.shell().info(Planner.plan(planner, changes, format: :json))
      "text" -> planner |> Planner.plan(changes) |> print(changes, root)
    end
  end

  defp changes(planner, _root, []), do: Planner.changed_since_compile(planner)

  defp changes(_planner, root, files) do
    {existing, missing} = files |> Enum.map(&Path.expand(&1, root)) |> Enum.split_with(&File.exists?/1)
    %{changed: existing, added: [], removed: missing}
  end

  # -- the tree -----------------------------------------------------------------

  defp print(plan, changes, root) do
    touched = length(changes.changed ++ changes.added ++ changes.removed)
    {definite, conditional} = Enum.split_with(plan.files, &(&1.certainty == :definite))

    header =
      if touched == 0,
        do: "Nothing changed since the last compile.",
        else:
          "#{count(touched, "changed file")}: #{count(length(definite), "file")} to recompile" <>
            if(conditional == [], do: "", else: ", #{length(conditional)} more if exports change") <>
            if(plan.resolved, do: "", else: " (before compiling)")

    lines =
      [header, ""] ++
        tree_lines(plan) ++
        Enum.map(plan.unknown, &"unknown: #{Path.relative_to(&1.path, root)}: #{&1.reason}") ++
        Enum.map(plan.warnings, &"warning: #{&1}")

    Enum.each(lines, &Mix.shell().info/1)
  end

  defp count(1, noun), do: "1 #{noun}"
  defp count(n, noun), do: "#{n} #{noun}s"

  # Every module's chain, read from the edit to the module, is a path from
  # a root; shared prefixes merge into a tree. A conditional chain starts
  # at its condition, which hangs below the module it names. Files without
  # a known module (new files, the fallback plan) are paths of their own.
  defp tree_lines(plan) do
    known = MapSet.new(plan.modules, & &1.path)
    by_name = Map.new(plan.modules, &{&1.name, &1})

    module_paths = for m <- plan.modules, do: {full_path(m.why, by_name, 0), annotation(m)}

    file_paths =
      for f <- plan.files, not MapSet.member?(known, f.path), do: {full_path(f.why, by_name, 0), ""}

    paths = module_paths ++ file_paths
    annotations = Map.new(paths)

    paths
    |> Enum.map(&elem(&1, 0))
    |> Enum.reduce(%{}, &insert/2)
    |> render([], "", annotations)
  end

  # Labels from the edit to the subject, with a condition's module first.
  defp full_path(why, by_name, depth) do
    reversed = Enum.reverse(why)

    case reversed do
      [%{relation: :exports_may_change, subject: name} | _] when depth < 8 ->
        case by_name do
          %{^name => m} -> full_path(m.why, by_name, depth + 1) ++ Enum.map(reversed, &label/1)
          _ -> Enum.map(reversed, &label/1)
        end

      _ ->
        Enum.map(reversed, &label/1)
    end
  end

  defp insert([], tree), do: tree
  defp insert([label | rest], tree), do: Map.update(tree, label, insert(rest, %{}), &insert(rest, &1))

  defp render(tree, path, prefix, annotations) do
    entries = Enum.sort(tree)
    last = length(entries) - 1

    entries
    |> Enum.with_index()
    |> Enum.flat_map(fn {{label, children}, i} ->
      node = path ++ [label]
      text = label <> Map.get(annotations, node, "")

      {line, continuation} =
        cond do
          path == [] -> {text, ""}
          i == last -> {prefix <> "└─ " <> text, prefix <> "   "}
          true -> {prefix <> "├─ " <> text, prefix <> "│  "}
        end

      [line | render(children, node, continuation, annotations)]
    end)
  end

  defp annotation(m) do
    condition =
      if m.conditions == [], do: "", else: ", if the exports of #{Enum.join(m.conditions, ", ")} change"

    "  [#{m.action}#{condition}]"
  end

  # Each step says how it follows from its parent in the tree.
  defp label(%{subject_kind: :module, subject: s} = step) do
    case step.relation do
      :changed -> "#{s} changed (#{step.path})"
      :added -> "#{s} is new (#{step.path})"
      :deleted -> "#{s} was deleted (#{step.path})"
      :stale -> "#{s} is stale (#{step.detail})"
      :recompile_callback -> "#{s}: __mix_recompile__?/0 returned true"
      :config_changed -> "#{s} reads compile-time configuration, which changed"
      :same_file -> "#{s}  same file (#{step.path})"
      :compile_time -> "#{s}  compile-time#{where(step)}"
      :export -> "#{s}  export#{where(step)}"
      :runtime -> "#{s}  runtime#{where(step)}"
      :exports_changed -> "exports of #{s} changed"
      :exports_may_change -> "if the exports of #{s} change"
      :vanished -> "#{s} is no longer defined"
      :includes -> "#{s}  includes #{step.detail}"
      :external_resource -> "#{s}  external resource #{step.detail}"
      :erlang_recompiled -> "#{s}  stale: an Erlang source of its app was recompiled"
      :dependency -> "#{s}  stale in dependency #{step.detail}"
      :truncated -> "…"
    end
  end

  defp label(%{subject: s} = step) do
    case step.relation do
      :changed -> "#{s} changed"
      :added -> "#{s} is new"
      :deleted -> "#{s} was deleted"
      :defines -> s
      :includes -> "#{s}  includes #{step.detail}"
      :external_resource -> "#{s}  external resource #{step.detail}"
      other -> "#{s}  #{other}"
    end
  end

  defp where(%{detail: nil, path: path}), do: " (in #{path})"
  defp where(%{detail: detail, path: path, line: nil}), do: " (`#{detail}` in #{path})"
  defp where(%{detail: detail, path: path, line: line}), do: " (`#{detail}` at #{path}:#{line})"
end
