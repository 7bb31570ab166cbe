defmodule DebugReload.Manifest do
  @moduledoc """
  Reads what Mix recorded about a project's sources and modules, for the
  reload plan: every app's Elixir compile manifest
  (`_build/<env>/lib/<app>/.mix/compile.elixir`, umbrella children and
  `path:` dependencies included), the Erlang sources under its source
  directories with the headers they include, and the modules `.exs` files
  define.

  The Elixir manifest is a private file of `Mix.Compilers.Elixir` whose
  layout changes between Elixir versions. This module is the only place
  that knows it. It is read with Mix's own reader
  (`Mix.Compilers.Elixir.read_manifest/1`, private too, so used only while
  it has the shape known here) and its records checked field by field;
  where that reader is missing or answers nothing (as it does for a
  manifest it cannot read), the file is decoded here, which also names
  what is wrong with it. Elixir 1.14 (manifest version 14) is supported fully;
  versions 15 to 29 (Elixir 1.15 and later) from their published record
  layouts, checked field by field. Anything else (an older or newer
  version, a truncated or corrupt file, a record that does not have the
  expected shape) is `{:error, message}`, never an exception, and the
  planner falls back to recompiling the changed files only.

  The result is plain data, one shape for every version:

      %{root: "/abs/project", apps: [app], sources: [source], modules: [module]}

  with absolute paths; see the types.
  """

  alias DebugReload.Native

  @supported 14..29

  @type app :: %{name: atom(), root: String.t(), source_dirs: [String.t()], deps: [atom()]}
  @type source :: %{
          path: String.t(),
          app: atom(),
          kind: :elixir | :erlang | :header | :script | :resource,
          modules: [module()],
          compile: [module()],
          export: [module()],
          runtime: [module()],
          external: [String.t()],
          includes: [String.t()],
          compile_env: [atom()],
          size: non_neg_integer() | nil,
          digest: binary() | nil
        }
  @type module_record :: %{name: module(), app: atom(), export: binary() | nil, recompile: boolean()}
  @type t :: %{root: String.t(), apps: [app()], sources: [source()], modules: [module_record()]}
  @type delta :: %{
          sources: [source()],
          modules: [module_record()],
          removed_sources: [String.t()],
          removed_modules: [module()]
        }

  @typedoc "An app as `DebugReload.Project` lays it out (`:deps` optional)."
  @type layout :: %{
          required(:app) => atom(),
          required(:root) => String.t(),
          required(:source_dirs) => [String.t()],
          required(:ebin) => String.t(),
          optional(:deps) => [atom()]
        }

  @doc "The Elixir versions' manifest versions this module reads."
  @spec supported_versions() :: Range.t()
  def supported_versions, do: @supported

  @doc """
  Reads the manifests of `apps` (the project's apps and path
  dependencies). `root` is the project root, for display.
  """
  @spec read(String.t(), [layout()]) :: {:ok, t()} | {:error, String.t()}
  def read(root, apps) do
    names = MapSet.new(apps, & &1.app)

    Enum.reduce_while(apps, {:ok, %{root: root, apps: [], sources: [], modules: []}}, fn app, {:ok, acc} ->
      case read_app(app) do
        {:ok, sources, modules} ->
          app_entry = %{
            name: app.app,
            root: app.root,
            source_dirs: app.source_dirs,
            deps: app |> Map.get(:deps, []) |> Enum.filter(&MapSet.member?(names, &1))
          }

          {:cont,
           {:ok,
            %{
              acc
              | apps: acc.apps ++ [app_entry],
                sources: acc.sources ++ sources,
                modules: acc.modules ++ modules
            }}}

        {:error, message} ->
          {:halt, {:error, message}}
      end
    end)
  end

  @doc "Where Mix keeps an app's Elixir compile manifest."
  @spec elixir_manifest(layout()) :: String.t()
  def elixir_manifest(%{ebin: ebin}), do: Path.join([Path.dirname(ebin), ".mix", "compile.elixir"])

  @doc """
  What changed between two reads, for `DebugReload.Native.plan_graph_update/2`.
  """
  @spec delta(t(), t()) :: delta()
  def delta(old, new) do
    old_sources = Map.new(old.sources, &{&1.path, &1})
    new_sources = Map.new(new.sources, &{&1.path, &1})
    old_modules = Map.new(old.modules, &{&1.name, &1})
    new_modules = Map.new(new.modules, &{&1.name, &1})

    %{
      sources: for({path, s} <- new_sources, Map.get(old_sources, path) != s, do: s),
      modules: for({name, m} <- new_modules, Map.get(old_modules, name) != m, do: m),
      removed_sources: for(path <- Map.keys(old_sources), not Map.has_key?(new_sources, path), do: path),
      removed_modules: for(name <- Map.keys(old_modules), not Map.has_key?(new_modules, name), do: name)
    }
  end

  @doc """
  Decodes the contents of an Elixir compile manifest into sources (paths
  still relative to the app root) and module records.
  """
  @spec decode(binary()) :: {:ok, [map()], [map()]} | {:error, String.t()}
  def decode(binary) when is_binary(binary) do
    case safe_binary_to_term(binary) do
      {:ok, term} -> decode_term(term)
      :error -> {:error, "it is not a valid Erlang term file (truncated or corrupt)"}
    end
  end

  # -- one app ------------------------------------------------------------

  defp read_app(app) do
    path = elixir_manifest(app)

    with {:ok, elixir_sources, modules} <- read_elixir(path) do
      sources =
        Enum.map(elixir_sources, &absolute(&1, app)) ++
          erlang_sources(app) ++ script_sources(app)

      modules = Enum.map(modules, &Map.put(&1, :app, app.app))
      {:ok, Enum.map(sources, &Map.put(&1, :app, app.app)), modules}
    end
  end

  # Mix's own reader first; our decoding of the file when that is not
  # available, read nothing, or gave records of a shape we do not know
  # (and then it also says why).
  defp read_elixir(path) do
    with {:ok, modules, sources} <- read_with_mix(path),
         {:ok, sources, modules} <- decode_records(layout_version(modules), modules, sources) do
      {:ok, sources, modules}
    else
      _ -> decode_file(path)
    end
  end

  # `Mix.Compilers.Elixir.read_manifest/1` (Elixir 1.14 and later) is
  # private to Mix: used only while it has the arity and answer shape this
  # adapter knows, `{modules, sources}`. It answers empty lists or maps for
  # a missing, corrupt or unknown manifest alike, so an empty answer is
  # not trusted.
  defp read_with_mix(path) do
    if Code.ensure_loaded?(Mix.Compilers.Elixir) and
         function_exported?(Mix.Compilers.Elixir, :read_manifest, 1) do
      case Mix.Compilers.Elixir.read_manifest(path) do
        {modules, sources} when modules not in [[], %{}] and (is_list(sources) or is_map(sources)) ->
          {:ok, modules, sources}

        _ ->
          :unknown
      end
    else
      :unavailable
    end
  rescue
    _ -> :unknown
  end

  # The record layout of the answer: tagged lists up to version 21, maps
  # from 22 (see `decode_records/3`).
  defp layout_version(modules) when is_map(modules), do: 22
  defp layout_version(_modules), do: 14

  defp decode_file(path) do
    case File.read(path) do
      {:ok, binary} ->
        case decode(binary) do
          {:ok, sources, modules} -> {:ok, sources, modules}
          {:error, reason} -> {:error, "cannot use the compile manifest #{path}: #{reason}"}
        end

      # Never compiled (or cleaned): nothing recorded yet.
      {:error, :enoent} ->
        {:ok, [], []}

      {:error, reason} ->
        {:error, "cannot read the compile manifest #{path}: #{:file.format_error(reason)}"}
    end
  end

  defp safe_binary_to_term(binary) do
    {:ok, :erlang.binary_to_term(binary)}
  rescue
    ArgumentError -> :error
  end

  # -- versions -------------------------------------------------------------

  defp decode_term(term) when is_tuple(term) and tuple_size(term) >= 3 and is_integer(elem(term, 0)) do
    vsn = elem(term, 0)

    if vsn in @supported do
      decode_records(vsn, elem(term, 1), elem(term, 2))
    else
      {:error,
       "manifest version #{vsn} is not one this version of debug_reload knows " <>
         "(#{@supported.first}..#{@supported.last}, Elixir 1.14 and later); " <>
         "update debug_reload or run `mix compile --force` with a supported Elixir"}
    end
  end

  defp decode_term([vsn | _]) when is_integer(vsn),
    do: {:error, "manifest version #{vsn} is from Elixir 1.10 or older, which debug_reload does not support"}

  defp decode_term(_), do: {:error, "it does not look like an Elixir compile manifest"}

  # Versions up to 21 keep lists of records tagged with their key (module
  # name, source path) in the second field; from 22 on, maps from the key
  # to a record without it. Source records end the same way in every
  # version: ..., compile, export, runtime, compile_env, external,
  # warnings (one field, or compile and runtime warnings), modules.
  defp decode_records(vsn, modules, sources) do
    with {:ok, modules} <- entries(modules, :module, vsn),
         {:ok, sources} <- entries(sources, :source, vsn),
         {:ok, modules} <- map_ok(modules, &module_record/1),
         {:ok, sources} <- map_ok(sources, &source_record(&1, vsn)) do
      {:ok, add_module_sources(sources, modules), Enum.map(modules, &Map.delete(&1, :sources))}
    else
      {:error, what} -> {:error, "manifest version #{vsn}: #{what}"}
    end
  end

  defp entries(list, tag, vsn) when is_list(list) and vsn < 22 do
    if Enum.all?(list, &(is_tuple(&1) and tuple_size(&1) > 2 and elem(&1, 0) == tag)) do
      {:ok, Enum.map(list, &{elem(&1, 1), &1 |> Tuple.delete_at(1)})}
    else
      {:error, "unexpected #{tag} records"}
    end
  end

  defp entries(map, tag, vsn) when is_map(map) and vsn >= 22 do
    if Enum.all?(map, fn {_key, record} ->
         is_tuple(record) and tuple_size(record) > 1 and elem(record, 0) == tag
       end) do
      {:ok, Enum.to_list(map)}
    else
      {:error, "unexpected #{tag} records"}
    end
  end

  defp entries(_other, tag, _vsn), do: {:error, "the #{tag}s are not where this version keeps them"}

  # {:module, kind, sources, export, recompile?, ...}
  defp module_record({name, record}) when is_atom(name) and tuple_size(record) >= 5 do
    {sources, export, recompile} = {elem(record, 2), elem(record, 3), elem(record, 4)}

    if is_list(sources) and (is_binary(export) or is_nil(export)) and is_boolean(recompile) do
      {:ok, %{name: name, sources: sources, export: export, recompile: recompile}}
    else
      {:error, "unexpected module record for #{inspect(name)}"}
    end
  end

  defp module_record({name, _}), do: {:error, "unexpected module record for #{inspect(name)}"}

  defp source_record({path, record}, vsn) when is_binary(path) do
    # One warnings field up to version 21, then compile and runtime ones.
    warnings = if vsn < 22, do: 1, else: 2
    size = tuple_size(record)
    from_end = fn n -> elem(record, size - n) end

    with true <- size >= warnings + 8,
         refs = [from_end.(warnings + 6), from_end.(warnings + 5), from_end.(warnings + 4)],
         true <- Enum.all?(refs, &atoms?/1),
         modules = from_end.(1),
         true <- atoms?(modules),
         external when is_list(external) <- from_end.(warnings + 2),
         compile_env when is_list(compile_env) <- from_end.(warnings + 3) do
      [compile, export, runtime] = refs

      {:ok,
       %{
         path: path,
         kind: :elixir,
         modules: modules,
         compile: compile,
         export: export,
         runtime: runtime,
         external: Enum.flat_map(external, &external_path/1),
         includes: [],
         compile_env: compile_env |> Enum.flat_map(&env_app/1) |> Enum.uniq(),
         size: if(is_integer(elem(record, 1)), do: elem(record, 1)),
         digest: Enum.find(Tuple.to_list(record), &(is_binary(&1) and byte_size(&1) in [16, 32, 64]))
       }}
    else
      _ -> {:error, "unexpected source record for #{path}"}
    end
  end

  defp source_record({path, _}, _vsn), do: {:error, "unexpected source record for #{inspect(path)}"}

  defp atoms?(list), do: is_list(list) and Enum.all?(list, &is_atom/1)

  # {path, existed?} (1.14) or {path, {mtime, size}, digest} (later).
  defp external_path(path) when is_binary(path), do: [path]
  defp external_path(entry) when is_tuple(entry) and is_binary(elem(entry, 0)), do: [elem(entry, 0)]
  defp external_path(_), do: []

  defp env_app(entry) when is_tuple(entry) and is_atom(elem(entry, 0)), do: [elem(entry, 0)]
  defp env_app(_), do: []

  # A module lists its sources, a source its modules; Mix uses both.
  defp add_module_sources(sources, modules) do
    by_path =
      for %{name: name, sources: paths} <- modules, path <- paths, reduce: %{} do
        acc -> Map.update(acc, path, [name], &[name | &1])
      end

    Enum.map(sources, fn source ->
      %{source | modules: Enum.uniq(source.modules ++ Enum.reverse(Map.get(by_path, source.path, [])))}
    end)
  end

  defp map_ok(list, fun) do
    Enum.reduce_while(list, {:ok, []}, fn item, {:ok, acc} ->
      case fun.(item) do
        {:ok, value} -> {:cont, {:ok, [value | acc]}}
        {:error, _} = error -> {:halt, error}
      end
    end)
    |> case do
      {:ok, values} -> {:ok, Enum.reverse(values)}
      error -> error
    end
  end

  defp absolute(source, app) do
    %{
      source
      | path: expand(source.path, app.root),
        external: Enum.map(source.external, &expand(&1, app.root))
    }
  end

  # Mix records plain relative paths ("lib/a.ex"): joining them to the
  # (absolute) app root is enough, and the manifest is read after every
  # compile, so the full normalisation is kept for the paths that need it.
  defp expand(path, root) do
    if Path.type(path) == :relative and not dotted?(path),
      do: Path.join(root, path),
      else: Path.expand(path, root)
  end

  defp dotted?(path) do
    path in [".", ".."] or String.starts_with?(path, ["./", "../", "~"]) or
      String.contains?(path, ["/./", "/../", "//"]) or String.ends_with?(path, ["/.", "/.."])
  end

  # -- Erlang -----------------------------------------------------------------

  # Mix's Erlang compiler records only its outputs; the sources say the
  # rest: the module is the file's base name, includes are attributes.
  defp erlang_sources(app) do
    for path <- app.source_dirs |> Native.list_files([".erl"]) |> Enum.uniq() do
      %{
        empty_source(path, :erlang)
        | modules: [path |> Path.basename(".erl") |> String.to_atom()],
          includes: includes(path, app)
      }
    end
  end

  @include ~r/^\s*-include(_lib)?\s*\(\s*"([^"]+)"\s*\)/m

  defp includes(path, app) do
    case File.read(path) do
      {:ok, text} ->
        dirs = [Path.dirname(path), Path.join(app.root, "include") | app.source_dirs]

        for [_, lib, file] <- Regex.scan(@include, text),
            found = resolve_include(file, lib, dirs),
            found != nil,
            uniq: true,
            do: found

      {:error, _} ->
        []
    end
  end

  defp resolve_include(file, "_lib", dirs) do
    # include_lib("app/include/x.hrl"): our own app's headers, or a
    # dependency's, which a reload does not plan.
    local = file |> Path.split() |> Enum.drop(1) |> then(&if(&1 == [], do: nil, else: Path.join(&1)))
    (local && resolve_include(local, "", dirs)) || resolve_include(file, "", dirs)
  end

  defp resolve_include(file, _plain, dirs) do
    dirs
    |> Enum.map(&Path.expand(file, &1))
    |> Enum.find(&File.regular?/1)
  end

  # -- scripts ----------------------------------------------------------------

  # `mix compile` never compiles .exs files, but the modules they define
  # (the MixProject, helpers in config) are part of the picture.
  defp script_sources(app) do
    [Path.join(app.root, "mix.exs")]
    |> Enum.concat(Native.list_files([Path.join(app.root, "config") | app.source_dirs], [".exs"]))
    |> Enum.uniq()
    |> Enum.filter(&File.regular?/1)
    |> Enum.map(&%{empty_source(&1, :script) | modules: defined_modules(&1)})
  end

  defp defined_modules(path) do
    with {:ok, text} <- File.read(path),
         {:ok, ast} <- Code.string_to_quoted(text, file: path) do
      {_, names} =
        Macro.prewalk(ast, [], fn
          {:defmodule, _, [{:__aliases__, _, parts} | _]} = node, acc when is_list(parts) ->
            if Enum.all?(parts, &is_atom/1), do: {node, [Module.concat(parts) | acc]}, else: {node, acc}

          node, acc ->
            {node, acc}
        end)

      Enum.reverse(names)
    else
      _ -> []
    end
  end

  defp empty_source(path, kind) do
    %{
      path: path,
      kind: kind,
      modules: [],
      compile: [],
      export: [],
      runtime: [],
      external: [],
      includes: [],
      compile_env: [],
      size: nil,
      digest: nil
    }
  end
end
