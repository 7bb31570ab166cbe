defmodule DebugReload.Project do
  @moduledoc """
  The layout of the Mix project being debugged, as Mix itself reports it
  from the compile worker: every app (one, or each app of an umbrella)
  with its source directories and the ebin directory its beams go to, and
  the `path:` dependencies, whose sources are edited alongside the
  project's and reload the same way (Mix builds them into the project's
  build path).
  """

  @type app :: %{
          required(:app) => atom(),
          required(:root) => String.t(),
          required(:source_dirs) => [String.t()],
          required(:ebin) => String.t(),
          optional(:deps) => [atom()]
        }
  @type t :: %__MODULE__{
          root: String.t(),
          env: String.t(),
          build_path: String.t(),
          apps: [app()],
          path_deps: [app()],
          consolidation: [String.t()]
        }

  defstruct [:root, :env, :build_path, apps: [], path_deps: [], consolidation: []]

  @source_extensions [".ex", ".erl", ".hrl"]

  @doc "File name endings that count as sources."
  @spec source_extensions() :: [String.t()]
  def source_extensions, do: @source_extensions

  @doc "Every app a reload compiles: the project's apps, then its `path:` dependencies."
  @spec compiled_apps(t()) :: [app()]
  def compiled_apps(%__MODULE__{apps: apps, path_deps: deps}), do: apps ++ deps

  @doc "Source directories of the project's apps and of its `path:` dependencies."
  @spec source_dirs(t()) :: [String.t()]
  def source_dirs(%__MODULE__{} = project),
    do: project |> compiled_apps() |> Enum.flat_map(& &1.source_dirs) |> Enum.uniq()

  @doc "Directories whose whole tree holds the sources: the root, and path dependencies outside it."
  @spec source_roots(t()) :: [String.t()]
  def source_roots(%__MODULE__{root: root, path_deps: deps} = project),
    do: Enum.uniq([root | for(dep <- deps, not inside?(project, dep.root), do: dep.root)])

  @doc "The `path:` dependencies that `paths` (sources) belong to, as app names."
  @spec path_deps_of(t(), [String.t()]) :: [atom()]
  def path_deps_of(%__MODULE__{path_deps: deps}, paths) do
    for dep <- deps,
        Enum.any?(paths, fn path -> Enum.any?(dep.source_dirs, &within?(path, &1)) end),
        do: dep.app
  end

  @spec ebin_dirs(t()) :: [String.t()]
  def ebin_dirs(%__MODULE__{} = project), do: project |> compiled_apps() |> Enum.map(& &1.ebin) |> Enum.uniq()

  @doc "Where Mix writes consolidated protocols."
  @spec consolidation_dirs(t()) :: [String.t()]
  def consolidation_dirs(%__MODULE__{consolidation: dirs}), do: dirs

  @doc "Every directory whose beams a reload may load: ebins, then consolidated protocols."
  @spec beam_dirs(t()) :: [String.t()]
  def beam_dirs(%__MODULE__{} = project), do: Enum.uniq(ebin_dirs(project) ++ consolidation_dirs(project))

  @doc "True when `path` (absolute) is inside the project root."
  @spec inside?(t(), String.t()) :: boolean()
  def inside?(%__MODULE__{root: root}, path), do: within?(path, root)

  @doc "True when `path` is a source file the project compiles."
  @spec source?(t(), String.t()) :: boolean()
  def source?(%__MODULE__{} = project, path) do
    String.ends_with?(path, @source_extensions) and
      Enum.any?(source_dirs(project), &within?(path, &1))
  end

  defp within?(path, dir), do: path == dir or String.starts_with?(path, dir <> "/")
end
