defmodule DebugReload.Test.Project do
  @moduledoc """
  Real, temporary Mix projects for tests: written to disk, compiled by a
  fresh `mix compile` OS process, and put on this VM's code path the way a
  debug session sees them.
  """

  defstruct [:root, :app, :ebin]

  @type t :: %__MODULE__{root: String.t(), app: atom(), ebin: String.t()}

  # Per OS process, so two test runs on one machine never share fixtures.
  defp base, do: Path.join([System.tmp_dir!(), "debug_reload_test", System.pid()])

  @doc "Creates and compiles a project with `files` (relative path => source)."
  def create(files, opts \\ []) do
    id = System.unique_integer([:positive])
    app = :"reload_fixture_#{id}"
    root = Path.join(base(), "#{app}")
    File.rm_rf!(root)
    File.mkdir_p!(root)
    File.write!(Path.join(root, "mix.exs"), mix_exs(app, Keyword.get(opts, :deps, [])))
    Enum.each(files, fn {rel, body} -> write(%__MODULE__{root: root}, rel, body) end)
    project = %__MODULE__{root: root, app: app, ebin: Path.join(root, "_build/dev/lib/#{app}/ebin")}

    if Keyword.get(opts, :compile, true) do
      {output, status} = mix(project, ["compile"])
      status == 0 || raise "fixture compile failed:\n#{output}"
      Code.prepend_path(project.ebin)
    end

    project
  end

  def mix_exs(app, deps) do
    """
    defmodule #{Macro.camelize(to_string(app))}.MixProject do
      use Mix.Project

      def project do
        [app: #{inspect(app)}, version: "0.1.0", elixir: "~> 1.14", deps: #{inspect(deps)}]
      end

      def application, do: [extra_applications: [:logger]]
    end
    """
  end

  @doc "Writes a file (its mtime may stay in the second it had)."
  def write(project, rel, body) do
    path = Path.join(project.root, rel)
    File.mkdir_p!(Path.dirname(path))
    File.write!(path, body)
    path
  end

  def path(project, rel), do: Path.join(project.root, rel)

  @doc """
  A module whose `value/0` returns `value` from a statement of its own on
  line 3 (a place for breakpoints), with `extra` code before it.
  """
  def value_source(mod, value, extra \\ "") do
    """
    defmodule #{inspect(mod)} do
    #{extra}  def value do
        x = #{value}
        x
      end
    end
    """
  end

  @doc "Runs mix in a fresh OS process in the project."
  def mix(project, args) do
    System.cmd("mix", args,
      cd: project.root,
      stderr_to_stdout: true,
      env: [{"MIX_ENV", "dev"}, {"MIX_EXS", nil}, {"MIX_BUILD_PATH", nil}]
    )
  end

  @doc "Interprets the modules and returns them."
  def interpret(modules) do
    Enum.each(modules, fn m -> {:module, ^m} = :int.ni(m) end)
    modules
  end

  @doc "Stops interpreting and unloads `modules`, removes the code path."
  def cleanup(project, modules) do
    for m <- modules do
      if m in :int.interpreted(), do: :int.nn(m)
      :code.purge(m)
      :code.delete(m)
      :code.purge(m)
    end

    Code.delete_path(project.ebin)
    File.rm_rf(project.root)
  end

  @doc "Waits until `pid` is paused at a breakpoint; returns `{module, line}`."
  def await_break(pid, timeout \\ 5_000) do
    deadline = System.monotonic_time(:millisecond) + timeout

    Stream.repeatedly(fn ->
      Enum.find_value(:int.snapshot(), fn
        {^pid, _, :break, {m, l}} -> {m, l}
        _ -> nil
      end)
    end)
    |> Enum.find(fn
      nil ->
        if System.monotonic_time(:millisecond) > deadline, do: raise("#{inspect(pid)} never hit a breakpoint")
        Process.sleep(5)
        false

      _ ->
        true
    end)
  end

  @doc "Waits until `condition` returns true; raises after `timeout` ms."
  def await(condition, timeout \\ 10_000),
    do: await_until(condition, System.monotonic_time(:millisecond) + timeout)

  defp await_until(condition, deadline) do
    cond do
      condition.() -> :ok
      System.monotonic_time(:millisecond) > deadline -> raise "condition not met in time"
      true -> Process.sleep(10) && await_until(condition, deadline)
    end
  end

  @doc """
  Waits until the manager has booted: its compile worker loads the
  project first, which takes seconds on a loaded machine.
  """
  def await_boot(server), do: DebugReload.pending(server, 120_000) && :ok

  @doc "Waits until the manager has no process left on old code."
  def await_no_pending(server, timeout \\ 5_000) do
    deadline = System.monotonic_time(:millisecond) + timeout

    Stream.repeatedly(fn -> DebugReload.pending(server) end)
    |> Enum.find(fn pending ->
      cond do
        pending == %{} -> true
        System.monotonic_time(:millisecond) > deadline -> raise "still pending: #{inspect(pending)}"
        true -> Process.sleep(5) && false
      end
    end)
  end
end
