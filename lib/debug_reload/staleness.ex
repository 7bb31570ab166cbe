defmodule DebugReload.Staleness do
  @moduledoc """
  Makes sure Mix sees every edit that our content digests saw.

  Mix (1.14) decides a source is stale when its mtime, in whole seconds, is
  newer than the manifest's, or when its size changed. An edit that keeps
  the size within the second of the last compile is invisible to it. We
  never touch the user's sources (editors watch their mtimes); instead the
  build artefacts Mix compares against are dated one second before the
  oldest such edit. Mix versions that also check digests are unaffected:
  this only widens what they consider, never narrows it.
  """

  alias DebugReload.Project

  @doc "Back-dates manifests (and Erlang beams) so that `changed` files are stale."
  @spec ensure_visible(Project.t(), [String.t()]) :: :ok
  def ensure_visible(_project, []), do: :ok

  def ensure_visible(%Project{} = project, changed) do
    {erl, ex} = Enum.split_with(changed, &String.ends_with?(&1, ".erl"))
    backdate_elixir_manifests(project, ex)
    Enum.each(erl, &backdate_erlang_beam(project, &1))
  end

  @doc "The `paths` modified after the project's last Elixir compile (all, if never compiled)."
  @spec edited_since_compile(Project.t(), [String.t()]) :: [String.t()]
  def edited_since_compile(project, paths) do
    case project |> elixir_manifests() |> Enum.map(&mtime/1) |> Enum.reject(&is_nil/1) do
      [] -> paths
      times -> Enum.filter(paths, &((mtime(&1) || 0) > Enum.min(times)))
    end
  end

  defp elixir_manifests(project) do
    project.build_path
    |> Path.join("lib/*/.mix/compile.elixir")
    |> Path.wildcard(match_dot: true)
  end

  defp backdate_elixir_manifests(_project, []), do: :ok

  defp backdate_elixir_manifests(project, sources) do
    case sources |> Enum.map(&mtime/1) |> Enum.reject(&is_nil/1) do
      [] ->
        :ok

      times ->
        target = Enum.min(times) - 1

        project
        |> elixir_manifests()
        |> Enum.each(&backdate(&1, target))
    end
  end

  defp backdate_erlang_beam(project, source) do
    beam = Path.basename(source, ".erl") <> ".beam"

    with time when is_integer(time) <- mtime(source) do
      project
      |> Project.ebin_dirs()
      |> Enum.map(&Path.join(&1, beam))
      |> Enum.filter(&File.exists?/1)
      |> Enum.each(&backdate(&1, time - 1))
    end

    :ok
  end

  defp backdate(path, target) do
    case mtime(path) do
      current when is_integer(current) and current > target -> File.touch(path, target)
      _ -> :ok
    end
  end

  @doc "A file's mtime in POSIX seconds (Mix's resolution), or nil if it cannot be read."
  @spec mtime(String.t()) :: integer() | nil
  def mtime(path) do
    case File.stat(path, time: :posix) do
      {:ok, %{mtime: mtime}} -> mtime
      _ -> nil
    end
  end
end
