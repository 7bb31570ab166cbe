defmodule DebugReload.Bench.BareCompiler do
  @moduledoc """
  The unavoidable work of a reload: the edited files compiled alone with
  `Kernel.ParallelCompiler`, in a warm `:peer` node of their own, with the
  project's ebin on its code path for their compile-time dependencies.

  Like the reload's compile worker, it runs outside the debugged VM and is
  warm (Elixir started, compiler loaded) before anything is timed. Time is
  taken inside the node around the compile alone, so the peer round trip
  is not counted against the baseline.

  It writes the beams Mix would: files are compiled by their path relative
  to the project root, with the project's application as Logger's
  compile-time application (Logger calls compiled into the beams carry
  both), so the baseline does the same work as the reload, byte for byte.

  It sees the project as Mix leaves it before recompiling files: their
  beams are gone from the ebin and their modules unloaded, so a file that
  needs one of them at compile time waits until it is compiled again
  (with the old beams in reach it would use those instead, and do less
  than the reload or Mix must). The node has an ebin of its own for that,
  a copy of the project's kept up to date by its own compiles.
  """

  defstruct [:peer, :ebin]

  @type t :: %__MODULE__{peer: pid(), ebin: String.t()}

  @doc "Starts the node in the project's root, with a copy of its `ebin` on the code path."
  @spec start(DebugReload.Bench.Generator.t()) :: t()
  def start(project) do
    ebin = Path.join(project.root, "_bench_bare_ebin")
    File.rm_rf!(ebin)
    File.cp_r!(project.ebin, ebin)
    args = Enum.flat_map([ebin | elixir_paths()], &[~c"-pa", String.to_charlist(&1)])

    peer =
      case :peer.start_link(%{connection: :standard_io, args: args, wait_boot: 60_000}) do
        {:ok, peer} -> peer
        {:ok, peer, _node} -> peer
      end

    {:ok, _} = :peer.call(peer, :application, :ensure_all_started, [:elixir])
    # The project's own beams are on the path (for compile-time
    # dependencies), so each recompiled module would otherwise warn that
    # it redefines the version on disk; Mix avoids it by deleting them.
    :peer.call(peer, Code, :put_compiler_option, [:ignore_module_conflict, true])
    :ok = :peer.call(peer, File, :cd, [project.root])
    :ok = :peer.call(peer, Application, :put_env, [:logger, :compile_time_application, project.app])
    %__MODULE__{peer: peer, ebin: ebin}
  end

  @doc """
  Compiles `files` (absolute paths), which define `modules`, into the
  node's ebin; returns the microseconds the compile took. As Mix does
  before it recompiles a file, the modules' beams are removed and their
  previous versions unloaded first (untimed), so each compile is a first
  definition.
  """
  @spec compile(t(), [String.t()], [module()]) :: non_neg_integer()
  def compile(%__MODULE__{peer: peer, ebin: ebin}, files, modules) do
    root = :peer.call(peer, File, :cwd!, [])
    files = Enum.map(files, &Path.relative_to(&1, root))

    Enum.each(modules, fn module ->
      File.rm!(Path.join(ebin, "#{module}.beam"))
      :peer.call(peer, :code, :purge, [module])
      :peer.call(peer, :code, :delete, [module])
      :peer.call(peer, :code, :purge, [module])
    end)

    {us, result} =
      :peer.call(
        peer,
        :timer,
        :tc,
        [Kernel.ParallelCompiler, :compile_to_path, [files, ebin, []]],
        120_000
      )

    case result do
      {:ok, _modules, _warnings} -> us
      {:error, errors, _warnings} -> raise "bare compile of #{inspect(files)} failed: #{inspect(errors)}"
    end
  end

  @spec stop(t()) :: :ok
  def stop(%__MODULE__{peer: peer}), do: :peer.stop(peer)

  defp elixir_paths do
    for app <- [:elixir, :logger], dir = :code.lib_dir(app, :ebin), is_list(dir), do: to_string(dir)
  end
end
