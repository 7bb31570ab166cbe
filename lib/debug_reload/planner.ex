defmodule DebugReload.Planner do
  @moduledoc """
  The reload plan of a project: which files Mix will recompile for a set
  of changed files, which modules then need reloading, and why.

  A planner owns the project's dependency graph (a NIF resource built from
  `DebugReload.Manifest`) and the manifest it was built from. Before a
  compile, `plan/3` answers from the graph alone: a definite part, and a
  conditional part that depends on which exports the compile changes.
  After the compile, `resolve/4` reads the new manifests, resolves the
  conditions with the new exports, says which recompiled modules actually
  changed (from their beams), and updates the graph with what changed, so
  the next plan starts from Mix's new state.

  When the manifests cannot be read (an Elixir version whose format this
  library does not know, a corrupt file) the planner still answers: the
  changed files only, with a warning saying why.

  A plan is a map:

    * `:resolved` - true after the compile
    * `:files` - files to recompile: `:path`, `:app`, `:kind`,
      `:certainty` (`:definite` or `:conditional`), `:conditions` (modules
      whose export change would recompile it), `:why` and `:explanation`
    * `:modules` - modules: `:module`, `:name`, `:path`, `:app`, `:action`
      (`:recompile` before the compile; `:reload`, `:unchanged`, `:new` or
      `:delete` after), `:certainty`, `:conditions`, `:why`, `:explanation`
    * `:unknown` - requested paths the project does not compile, with why
    * `:warnings`

  `:why` is the chain of steps back to an edit (`:subject`,
  `:subject_kind`, `:relation`, `:detail`, `:path`, `:line`);
  `:explanation` the same as one line of text.
  """

  alias DebugReload.{Manifest, Native, Project, Staleness}

  defstruct [:root, :layouts, :manifest, :graph, :error, index: %{}]

  @typedoc """
  Lookups into the manifest, built once per manifest rather than on every
  reload: source path => source, module => export digest, module => the
  source that defines it, and the modules that define `__mix_recompile__?/0`.
  """
  @type index :: %{
          sources: %{String.t() => map()},
          exports: %{module() => binary() | nil},
          defined_in: %{module() => String.t()},
          recompile: [module()]
        }

  @type t :: %__MODULE__{
          root: String.t(),
          layouts: [Manifest.layout()],
          manifest: Manifest.t() | nil,
          graph: reference() | nil,
          error: String.t() | nil,
          index: index() | %{}
        }
  @type changes :: %{changed: [String.t()], added: [String.t()], removed: [String.t()]}
  @type beams :: %{changed: [module()], added: [module()], removed: [module()]}
  @type stats :: %{
          apps: non_neg_integer(),
          files: non_neg_integer(),
          modules: non_neg_integer(),
          edges: non_neg_integer()
        }
  @type plan :: %{
          resolved: boolean(),
          files: [map()],
          modules: [map()],
          unknown: [%{path: String.t(), reason: String.t()}],
          warnings: [String.t()]
        }

  @doc "A planner for the project's apps and path dependencies."
  @spec new(Project.t()) :: t()
  def new(%Project{} = project), do: new(project.root, project.apps ++ project.path_deps)

  @spec new(String.t(), [Manifest.layout()]) :: t()
  def new(root, layouts) do
    planner = %__MODULE__{root: root, layouts: layouts}

    case Manifest.read(root, layouts) do
      {:ok, manifest} -> %{with_manifest(planner, manifest) | graph: Native.plan_graph_build(manifest)}
      {:error, message} -> %{planner | error: message}
    end
  end

  @spec stats(t()) :: stats() | nil
  def stats(%__MODULE__{graph: nil}), do: nil
  def stats(%__MODULE__{graph: graph}), do: Native.plan_graph_stats(graph)

  @doc """
  A digest of the graph's content (nodes, their attributes, labelled
  edges), equal for equal graphs however they were built.
  """
  @spec fingerprint(t()) :: String.t()
  def fingerprint(%__MODULE__{graph: graph}), do: Native.plan_graph_fingerprint(graph)

  @doc """
  The plan before compiling `changes` (absolute paths).

  Options: `:format` (`:term`, the default, or `:json`) and `:locate`
  (read sources to find the line of each reference; default true).
  """
  @spec plan(t(), changes(), keyword()) :: plan() | binary()
  def plan(planner, changes, opts \\ [])

  def plan(%__MODULE__{graph: nil} = planner, changes, opts),
    do: planner |> fallback(changes) |> format(Keyword.get(opts, :format, :term))

  def plan(%__MODULE__{} = planner, changes, opts) do
    plan_graph(planner.graph, request(planner, changes, opts), Keyword.get(opts, :format, :term))
  end

  @doc """
  Plans `request` on `graph`: on the calling scheduler when the NIF can
  tell the plan is small, else on a dirty scheduler.
  """
  @spec plan_graph(reference(), map(), :term | :json) :: plan() | binary()
  def plan_graph(graph, request, format) do
    case Native.plan_graph_try_plan(graph, request, format) do
      :dirty -> Native.plan_graph_plan(graph, request, nil, format)
      plan -> plan
    end
  end

  @doc """
  After a successful compile of `changes`: the resolved plan, and the
  planner updated to the manifests the compile wrote. `beams` are the
  modules whose beam changed, appeared or disappeared.
  """
  @spec resolve(t(), changes(), beams(), keyword()) :: {plan() | binary(), t()}
  def resolve(planner, changes, beams, opts \\ [])

  def resolve(%__MODULE__{graph: nil} = planner, changes, _beams, opts) do
    # The manifests may be readable now (a first compile wrote them).
    {planner |> fallback(changes) |> format(Keyword.get(opts, :format, :term)),
     new(planner.root, planner.layouts)}
  end

  def resolve(%__MODULE__{} = planner, changes, beams, opts) do
    case Manifest.read(planner.root, planner.layouts) do
      {:ok, manifest} ->
        delta = Manifest.delta(planner.manifest, manifest)
        format = Keyword.get(opts, :format, :term)

        if delta == %{sources: [], modules: [], removed_sources: [], removed_modules: []} do
          # Mix compiled nothing (a retried reload whose compile already
          # ran): an honest resolved plan is empty.
          {format(%{resolved: true, files: [], modules: [], unknown: [], warnings: []}, format), planner}
        else
          planner = with_manifest(planner, manifest)
          outcome = outcome(delta, planner, beams)
          plan = Native.plan_graph_plan(planner.graph, request(planner, changes, opts), outcome, format)
          Native.plan_graph_update(planner.graph, delta)
          {plan, planner}
        end

      {:error, message} ->
        planner = %{planner | graph: nil, manifest: nil, index: %{}, error: message}
        {planner |> fallback(changes) |> format(Keyword.get(opts, :format, :term)), planner}
    end
  end

  @doc """
  What a compile of `plan`'s files must know to stand in for Mix's
  compile task: the definite files (Elixir sources of one app that Mix
  has compiled before), the modules they define with the export digests
  Mix recorded, the app's ebin, and the modules whose export change would
  recompile the plan's conditional files. `{:error, reason}` when only
  Mix's compile task can do the compile.
  """
  @spec compile_spec(t(), plan()) :: {:ok, map()} | {:error, String.t()}
  def compile_spec(%__MODULE__{manifest: nil}, _plan), do: {:error, "no dependency information"}

  def compile_spec(%__MODULE__{} = planner, plan) do
    definite = for %{certainty: :definite} = file <- plan.files, do: file
    sources = planner.index.sources
    apps = definite |> Enum.map(& &1.app) |> Enum.uniq()

    cond do
      plan.unknown != [] or plan.warnings != [] -> {:error, "the plan is incomplete"}
      definite == [] -> {:error, "nothing to compile"}
      Enum.any?(definite, &(&1.kind != :elixir)) -> {:error, "not only Elixir sources"}
      length(apps) != 1 -> {:error, "files of more than one app"}
      not Enum.all?(definite, &Map.has_key?(sources, &1.path)) -> {:error, "a file Mix never compiled"}
      true -> {:ok, spec(planner, plan, definite, sources, hd(apps))}
    end
  end

  defp spec(planner, plan, definite, sources, app) do
    exports = planner.index.exports
    modules = Enum.flat_map(definite, &sources[&1.path].modules)

    conditions =
      for %{certainty: :conditional, conditions: names} <- plan.files,
          name <- names,
          into: MapSet.new(),
          do: module_named(name)

    %{
      app: app,
      ebin: Enum.find_value(planner.layouts, &(&1.app == app && &1.ebin)),
      files: Enum.map(definite, & &1.path),
      exports: Map.new(modules, &{&1, exports[&1]}),
      conditions: conditions
    }
  end

  # The plan names modules as Elixir writes them: `Foo.Bar`, `:erlang_mod`.
  defp module_named(":" <> atom), do: String.to_atom(atom)
  defp module_named(name), do: String.to_atom("Elixir." <> name)

  @doc """
  The resolved plan after a compile of `compile_spec/2`'s files: `exports`
  are the compiled modules' new export digests, `beams` the modules whose
  beam changed. The graph is left as it is: Mix's manifests catch up
  later, and `refresh/1` then updates it.
  """
  @spec resolve_compiled(t(), changes(), %{module() => binary() | nil}, beams()) :: plan()
  def resolve_compiled(%__MODULE__{} = planner, changes, exports, beams) do
    delta = %{modules: for({name, export} <- exports, do: %{name: name, export: export}), removed_modules: []}
    outcome = outcome(delta, planner, beams)
    Native.plan_graph_plan(planner.graph, request(planner, changes, []), outcome, :term)
  end

  @doc """
  The files the project's compiled code was built from besides its
  sources: every `@external_resource` Mix's manifests record (absolute,
  sorted).
  """
  @spec external_resources(t()) :: [String.t()]
  def external_resources(%__MODULE__{manifest: nil}), do: []

  def external_resources(%__MODULE__{manifest: manifest}),
    do: manifest.sources |> Enum.flat_map(& &1.external) |> Enum.uniq() |> Enum.sort()

  @doc "The sources that declare `resource` as an `@external_resource`, per Mix's manifests."
  @spec declaring(t(), String.t()) :: [String.t()]
  def declaring(%__MODULE__{manifest: nil}, _resource), do: []

  def declaring(%__MODULE__{manifest: manifest}, resource),
    do: for(%{path: path, external: external} <- manifest.sources, resource in external, do: path)

  @doc """
  Whether a module of the project asks to be recompiled though none of
  its files changed: `__mix_recompile__?/0` returns true (Phoenix's
  templates do when a template is added), which Mix asks before every
  compile.
  """
  @spec recompile_wanted?(t()) :: boolean()
  def recompile_wanted?(%__MODULE__{index: %{recompile: [_ | _]}} = planner),
    do: recompile_modules(planner) != []

  def recompile_wanted?(%__MODULE__{}), do: false

  @doc "Reads the manifests again and updates the graph, after a compile nobody planned."
  @spec refresh(t()) :: t()
  def refresh(%__MODULE__{graph: nil} = planner), do: new(planner.root, planner.layouts)

  def refresh(%__MODULE__{} = planner) do
    case Manifest.read(planner.root, planner.layouts) do
      {:ok, manifest} ->
        Native.plan_graph_update(planner.graph, Manifest.delta(planner.manifest, manifest))
        with_manifest(planner, manifest)

      {:error, message} ->
        %{planner | graph: nil, manifest: nil, index: %{}, error: message}
    end
  end

  @doc """
  Files changed since the last compile, as Mix decides it: sources whose
  size changed, or that are newer than the manifest and whose content
  differs; sources the manifest does not know; sources that went away.
  """
  @spec changed_since_compile(t()) :: changes()
  def changed_since_compile(%__MODULE__{manifest: nil} = planner) do
    %{changed: [], added: all_sources(planner), removed: []}
  end

  def changed_since_compile(%__MODULE__{} = planner) do
    known = Map.new(planner.manifest.sources, &{&1.path, &1})
    manifest_mtimes = Map.new(planner.layouts, &{&1.app, Staleness.mtime(Manifest.elixir_manifest(&1))})

    ebins = Map.new(planner.layouts, &{&1.app, &1.ebin})

    changed =
      for source <- planner.manifest.sources,
          File.exists?(source.path),
          edited?(source, manifest_mtimes[source.app], ebins[source.app]),
          do: source.path

    # As Mix does, an external resource newer than the manifest.
    resources =
      for source <- planner.manifest.sources,
          manifest_mtime = manifest_mtimes[source.app],
          is_integer(manifest_mtime),
          path <- source.external,
          (Staleness.mtime(path) || 0) > manifest_mtime,
          uniq: true,
          do: path

    %{
      changed: Enum.uniq(changed ++ Enum.sort(resources)),
      added: Enum.reject(all_sources(planner), &Map.has_key?(known, &1)),
      removed: for(%{kind: :elixir, path: path} <- planner.manifest.sources, not File.exists?(path), do: path)
    }
  end

  @doc """
  The plan as JSON-ready maps: camelCase string keys, atoms as strings.
  The same structure as `format: :json`, which the DAP body embeds.
  """
  @spec to_map(plan()) :: map()
  def to_map(plan) do
    %{
      "resolved" => plan.resolved,
      "files" => Enum.map(plan.files, &file_map/1),
      "modules" => Enum.map(plan.modules, &module_map/1),
      "unknown" => Enum.map(plan.unknown, &%{"path" => &1.path, "reason" => &1.reason}),
      "warnings" => plan.warnings
    }
  end

  @doc "Entries for `DebugReload.Report`'s `:modules`, one per planned module or new file."
  @spec report_entries(plan()) :: [DebugReload.Report.module_entry()]
  def report_entries(plan) do
    known = MapSet.new(plan.modules, & &1.path)

    for(m <- plan.modules, do: %{module: m.module, source: m.path, action: :planned, reason: m.explanation}) ++
      for %{path: path} = f <- plan.files,
          not MapSet.member?(known, path),
          f.why |> List.last() |> Map.get(:relation) == :added,
          do: %{module: nil, source: path, action: :planned, reason: f.explanation}
  end

  defp file_map(f) do
    %{
      "path" => f.path,
      "app" => string(f.app),
      "kind" => string(f.kind),
      "certainty" => string(f.certainty),
      "conditions" => f.conditions,
      "why" => Enum.map(f.why, &step_map/1),
      "explanation" => f.explanation
    }
  end

  defp module_map(m) do
    %{
      "module" => string(m.module),
      "name" => m.name,
      "path" => m.path,
      "app" => string(m.app),
      "action" => string(m.action),
      "certainty" => string(m.certainty),
      "conditions" => m.conditions,
      "why" => Enum.map(m.why, &step_map/1),
      "explanation" => m.explanation
    }
  end

  defp step_map(step) do
    %{
      "subject" => step.subject,
      "subjectKind" => string(step.subject_kind),
      "relation" => string(step.relation),
      "detail" => step.detail,
      "path" => step.path,
      "line" => step.line
    }
  end

  defp string(nil), do: nil
  defp string(atom) when is_atom(atom), do: Atom.to_string(atom)
  defp string(text) when is_binary(text), do: text

  # -- request ----------------------------------------------------------------

  defp request(planner, changes, opts) do
    touched = changes.changed ++ changes.added

    %{
      changed: touched,
      removed: changes.removed,
      stale_modules: stale_modules(planner, touched ++ changes.removed),
      recompile_modules: recompile_modules(planner),
      config_changed: Enum.any?(touched ++ changes.removed, &config?(planner, &1)),
      locate: Keyword.get(opts, :locate, true)
    }
  end

  # Mix recompiles what calls Mix.Project at compile time when mix.exs changed.
  defp stale_modules(planner, paths) do
    if Enum.any?(paths, &(Path.basename(&1) == "mix.exs" and Path.dirname(&1) in roots(planner))),
      do: [{Mix.Project, "mix.exs changed"}],
      else: []
  end

  defp config?(planner, path) do
    Enum.any?(roots(planner), &String.starts_with?(path, Path.join(&1, "config") <> "/")) and
      String.ends_with?(path, ".exs")
  end

  defp roots(planner), do: Enum.uniq([planner.root | Enum.map(planner.layouts, & &1.root)])

  # As Mix does before compiling: ask modules that define
  # __mix_recompile__?/0 whether they must be recompiled.
  defp recompile_modules(%{index: index}) do
    for module <- index.recompile,
        Code.ensure_loaded?(module),
        function_exported?(module, :__mix_recompile__?, 0),
        ask_recompile(module),
        do: module
  end

  defp ask_recompile(module) do
    module.__mix_recompile__?() == true
  rescue
    _ -> false
  end

  defp with_manifest(planner, manifest) do
    index = %{
      sources: Map.new(manifest.sources, &{&1.path, &1}),
      exports: Map.new(manifest.modules, &{&1.name, &1.export}),
      defined_in:
        for(
          %{path: path, modules: modules} <- manifest.sources,
          module <- modules,
          into: %{},
          do: {module, path}
        ),
      recompile: for(%{recompile: true, name: module} <- manifest.modules, do: module)
    }

    %{planner | manifest: manifest, index: index}
  end

  defp outcome(delta, planner, beams) do
    defined_in = planner.index.defined_in

    %{
      modules: for(%{name: name, export: export} <- delta.modules, do: {name, export, defined_in[name]}),
      gone: delta.removed_modules,
      beams_changed: Map.get(beams, :changed, []),
      beams_added: Map.get(beams, :added, []),
      beams_removed: Map.get(beams, :removed, [])
    }
  end

  # -- without a graph --------------------------------------------------------

  defp fallback(planner, changes) do
    files =
      for path <- Enum.sort(changes.changed ++ changes.added) do
        rel = Path.relative_to(path, planner.root)
        step = %{subject: rel, subject_kind: :file, relation: :changed, detail: nil, path: rel, line: nil}

        %{
          path: path,
          app: nil,
          kind: kind(path),
          certainty: :definite,
          conditions: [],
          why: [step],
          explanation: "#{rel} changed"
        }
      end

    %{
      resolved: false,
      files: files,
      modules: [],
      unknown: [],
      warnings: [
        "no dependency information (#{planner.error}); planned the changed files only, " <>
          "Mix may recompile more"
      ]
    }
  end

  defp format(plan, :term), do: plan
  defp format(plan, :json), do: plan |> to_map() |> Native.encode_json()

  defp kind(path) do
    case Path.extname(path) do
      ".erl" -> :erlang
      ".hrl" -> :header
      ".exs" -> :script
      _ -> :elixir
    end
  end

  defp all_sources(planner) do
    planner.layouts
    |> Enum.flat_map(& &1.source_dirs)
    |> Enum.flat_map(&Path.wildcard(Path.join(&1, "**/*.{ex,erl}")))
    |> Enum.uniq()
  end

  # Mix's Erlang compiler: the source or a header it includes is newer
  # than the beam.
  defp edited?(%{kind: :erlang, modules: [module]} = source, _manifest_mtime, ebin) do
    beam = Staleness.mtime(Path.join(ebin, "#{module}.beam"))
    beam == nil or Enum.any?([source.path | source.includes], &((Staleness.mtime(&1) || 0) > beam))
  end

  defp edited?(%{kind: :elixir, size: size, digest: digest} = source, manifest_mtime, _ebin) do
    case File.stat(source.path, time: :posix) do
      {:ok, %{size: ^size, mtime: mtime}} ->
        is_integer(manifest_mtime) and mtime > manifest_mtime and not same_digest?(source.path, digest)

      {:ok, _} ->
        true

      {:error, _} ->
        false
    end
  end

  defp edited?(_source, _manifest_mtime, _ebin), do: false

  # Elixir 1.14 records an md5; later versions another hash, where any
  # newer file counts as edited.
  defp same_digest?(path, digest) when byte_size(digest) == 16 do
    case File.read(path) do
      {:ok, bytes} -> :erlang.md5(bytes) == digest
      _ -> false
    end
  end

  defp same_digest?(_path, _digest), do: false
end
