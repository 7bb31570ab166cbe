defmodule DebugReload.Bench.MacroReload do
  @moduledoc """
  Scenario 2: an edit to the macro module that up to 100 modules `use`.
  Mix recompiles every user (a compile-time dependency); only the modules
  whose beams actually changed should be re-interpreted.

  Two edits, measured separately:

    * `:expansion` - inside the quoted code: every user's beam changes.
    * `:helper` - a plain function of the macro module: the users are
      recompiled, but to identical beams.

  Recompiled modules are counted from the disk: beams written during the
  reload. Each run starts on a fresh wall-clock second (mtimes have
  one-second resolution), so a beam with an mtime at or after that second
  was written by this reload. Changed beams are counted by content.
  """

  alias DebugReload.Bench.{Generator, Session, Workload}

  @type result :: %{
          total: [non_neg_integer()],
          compile: [non_neg_integer()],
          load: [non_neg_integer()],
          recompiled: [non_neg_integer()],
          changed: [non_neg_integer()],
          reinterpreted: [non_neg_integer()],
          mismatches: non_neg_integer()
        }

  @doc "Runs `runs` reloads per kind of edit."
  @spec run(Workload.t(), atom(), pos_integer()) :: %{expansion: result(), helper: result()}
  def run(workload, server, runs) do
    for {kind, tag} <- [expansion: "expansion", helper: "helper"], into: %{} do
      samples = Enum.map(1..runs, fn _ -> round(workload, server, tag) end)
      {kind, collect(samples)}
    end
  end

  defp round(workload, server, tag) do
    project = workload.project
    before = beam_digests(project.ebin)
    since = next_second()
    Generator.set_constant(project.macro_source, tag, System.unique_integer([:positive, :monotonic]))

    report = Session.reload!(server)

    after_reload = beam_digests(project.ebin)
    changed = for {module, digest} <- after_reload, Map.get(before, module) != digest, do: module
    reinterpreted = Session.reinterpreted(report)

    %{
      total: report.timings.total_us,
      compile: report.timings.compile_us,
      load: report.timings.load_us,
      recompiled: written_since(project.ebin, since),
      changed: length(changed),
      reinterpreted: length(reinterpreted),
      # Re-interpreted modules that did not change, or changed ones left out.
      mismatch: Enum.sort(changed) != Enum.sort(reinterpreted)
    }
  end

  defp collect(samples) do
    %{
      total: Enum.map(samples, & &1.total),
      compile: Enum.map(samples, & &1.compile),
      load: Enum.map(samples, & &1.load),
      recompiled: Enum.map(samples, & &1.recompiled),
      changed: Enum.map(samples, & &1.changed),
      reinterpreted: Enum.map(samples, & &1.reinterpreted),
      mismatches: Enum.count(samples, & &1.mismatch)
    }
  end

  defp beam_digests(ebin) do
    for path <- Path.wildcard(Path.join(ebin, "*.beam")), into: %{} do
      {path |> Path.basename(".beam") |> String.to_atom(), :erlang.md5(File.read!(path))}
    end
  end

  defp written_since(ebin, second) do
    ebin
    |> Path.join("*.beam")
    |> Path.wildcard()
    |> Enum.count(fn path -> File.stat!(path, time: :posix).mtime >= second end)
  end

  # Sleeps to the start of the next wall-clock second and returns it.
  defp next_second do
    now = System.os_time(:millisecond)
    Process.sleep(1000 - rem(now, 1000) + 5)
    System.os_time(:second)
  end
end
