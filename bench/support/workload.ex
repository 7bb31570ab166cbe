defmodule DebugReload.Bench.Workload do
  @moduledoc """
  A generated project turned into a debug session in this VM: compiled by
  a fresh `mix compile` OS process (this VM never compiles the project),
  its ebin on the code path, every module interpreted with `:int.ni/1` and
  20 breakpoints set, as a debugger that interprets `Bench<size>.*` would.
  """

  alias DebugReload.Bench.Generator
  alias DebugReload.Staleness

  defstruct [:project, :compile_ms, :interpret_ms, breakpoints: []]

  @type t :: %__MODULE__{
          project: Generator.t(),
          compile_ms: non_neg_integer(),
          interpret_ms: non_neg_integer(),
          breakpoints: [{module(), pos_integer()}]
        }

  @doc "Generates, compiles and interprets a project of `size` modules under `base`."
  @spec setup(String.t(), pos_integer()) :: t()
  def setup(base, size) do
    project = Generator.generate(Path.join(base, "app_#{size}"), size)
    {compile_us, _} = :timer.tc(fn -> mix!(project.root, ["compile"]) end)
    Code.prepend_path(project.ebin)
    {interpret_us, _} = :timer.tc(fn -> interpret(project.modules) end)
    breakpoints = breakpoints(project)
    set_breakpoints(breakpoints)

    %__MODULE__{
      project: project,
      compile_ms: div(compile_us, 1000),
      interpret_ms: div(interpret_us, 1000),
      breakpoints: breakpoints
    }
  end

  @doc "One breakpoint on the tagged statement of each breakpoint target."
  @spec breakpoints(Generator.t()) :: [{module(), pos_integer()}]
  def breakpoints(project) do
    for module <- project.break_targets do
      {module, Generator.tagged_line(Generator.source(project, module))}
    end
  end

  @spec interpret([module()]) :: :ok
  def interpret(modules) do
    Enum.each(modules, fn module ->
      {:module, ^module} = :int.ni(module)
    end)
  end

  @spec set_breakpoints([{module(), pos_integer()}]) :: :ok
  def set_breakpoints(breakpoints) do
    Enum.each(breakpoints, fn {module, line} -> :ok = :int.break(module, line) end)
  end

  @doc "Breakpoints of the session's modules that the interpreter holds now."
  @spec live_breakpoints(t()) :: [{module(), pos_integer()}]
  def live_breakpoints(%__MODULE__{project: project}) do
    ns = project.namespace <> "."
    for {{module, line}, _} <- :int.all_breaks(), String.starts_with?(inspect(module), ns), do: {module, line}
  end

  @doc "Stops interpreting, unloads the modules and deletes the project."
  @spec teardown(t(), keyword()) :: :ok
  def teardown(%__MODULE__{project: project}, opts \\ []) do
    for module <- project.modules do
      if module in :int.interpreted(), do: :int.nn(module)
      :code.purge(module)
      :code.delete(module)
      :code.purge(module)
    end

    Code.delete_path(project.ebin)
    unless Keyword.get(opts, :keep, false), do: File.rm_rf!(project.root)
    :ok
  end

  @doc """
  Waits until a file written now is newer than the project's last Elixir
  compile in Mix's eyes: Mix compares modification times in whole seconds,
  and a person edits seconds after a compile, not within its second.
  """
  @spec await_edit_visible(Generator.t()) :: :ok
  def await_edit_visible(project) do
    case Staleness.mtime(elixir_manifest(project)) do
      nil ->
        :ok

      compiled ->
        wait_ms = (compiled + 1) * 1000 - System.os_time(:millisecond)
        if wait_ms > 0, do: Process.sleep(wait_ms)
        await_file_clock(Path.join(Path.dirname(project.root), ".bench_clock"), compiled)
    end
  end

  # The kernel stamps files from a clock that can lag the system time by a
  # tick: a file written just after the second turned may still carry the
  # compile's second. Only a file actually written tells.
  defp await_file_clock(probe, compiled) do
    File.write!(probe, "")

    if Staleness.mtime(probe) > compiled do
      :ok
    else
      Process.sleep(2)
      await_file_clock(probe, compiled)
    end
  end

  @doc """
  A body-only edit of `files` that Mix will see (see
  `await_edit_visible/1`): a new value for their `edit` constant.
  """
  @spec edit_visibly(Generator.t(), [String.t()]) :: :ok
  def edit_visibly(project, files) do
    await_edit_visible(project)
    version = System.unique_integer([:positive, :monotonic])
    Enum.each(files, &Generator.set_constant(&1, "edit", version))
  end

  @doc "Mix's Elixir manifest of the project, whose mtime is its last compile."
  @spec elixir_manifest(Generator.t()) :: String.t()
  def elixir_manifest(project), do: Path.join([Path.dirname(project.ebin), ".mix", "compile.elixir"])

  @doc "Runs mix in a fresh OS process in `root`; raises with its output on failure."
  @spec mix!(String.t(), [String.t()]) :: String.t()
  def mix!(root, args) do
    case System.cmd("mix", args,
           cd: root,
           stderr_to_stdout: true,
           env: [{"MIX_ENV", "dev"}, {"MIX_EXS", nil}, {"MIX_BUILD_PATH", nil}]
         ) do
      {output, 0} -> output
      {output, status} -> raise "mix #{Enum.join(args, " ")} failed (#{status}) in #{root}:\n#{output}"
    end
  end
end
