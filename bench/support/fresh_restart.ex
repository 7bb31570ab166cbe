defmodule DebugReload.Bench.FreshRestart do
  @moduledoc """
  A restart as a person debugging does it today: the debug session ends
  and a new one starts in a new VM. As a debug adapter launching a session
  (ElixirLS, for one), the new VM starts Mix, runs Mix's compile task
  (which compiles the edit), interprets every module matching the
  patterns, sets the breakpoints and starts the application.

  Timed from the `mix run` OS process's spawn until its script reports the
  session ready (the VM's shutdown afterwards is not timed). Compared with
  `DebugReload.Bench.Restart`, the lower bound in a warm VM, this adds the
  VM boot, Mix's start-up and a cold compiler, which are what a restart
  costs beyond the interpretation.
  """

  alias DebugReload.Bench.{Generator, Stats, Workload}
  alias DebugReload.Staleness

  @type samples :: %{
          total: [non_neg_integer()],
          start_and_compile: [non_neg_integer()],
          interpret: [non_neg_integer()],
          breakpoints_and_app: [non_neg_integer()]
        }

  # Runs in the new VM, after `mix run` compiled the project and loaded its
  # paths: what a debug adapter does before it lets the program run.
  @session_script """
  [namespace, breakpoints_file] = System.argv()
  script_started = :erlang.monotonic_time(:microsecond)
  app = Mix.Project.config()[:app]
  # `mix run` has loaded it (it only starts it without --no-start).
  {:error, {:already_loaded, ^app}} = Application.load(app)
  prefix = namespace <> "."
  modules = for m <- Application.spec(app, :modules), String.starts_with?(inspect(m), prefix), do: m
  Enum.each(modules, fn m -> {:module, ^m} = :int.ni(m) end)
  interpreted = :erlang.monotonic_time(:microsecond)
  breakpoints = breakpoints_file |> File.read!() |> :erlang.binary_to_term()
  Enum.each(breakpoints, fn {m, line} -> :ok = :int.break(m, line) end)
  {:ok, _} = Application.ensure_all_started(app)
  ready = :erlang.monotonic_time(:microsecond)
  IO.puts("debug session ready \#{length(modules)} \#{interpreted - script_started} \#{ready - interpreted}")
  """

  @doc """
  Runs `runs` fresh restarts after a body-only edit to the same 1 and 5
  modules the reload benchmark edits; no manager may be running (the new
  VM's compile writes the project's build). Returns samples (µs) per edit
  size.
  """
  @spec run(Workload.t(), pos_integer(), [pos_integer()]) :: %{pos_integer() => samples()}
  def run(workload, runs, edit_sizes \\ [1, 5]) do
    project = workload.project
    dir = Path.join(project.root, ".bench_restart")
    File.mkdir_p!(dir)
    script = Path.join(dir, "session.exs")
    File.write!(script, @session_script)
    breakpoints = Path.join(dir, "breakpoints.etf")
    File.write!(breakpoints, :erlang.term_to_binary(workload.breakpoints))

    results =
      for k <- edit_sizes, into: %{} do
        files = project.edit_targets |> Enum.take(k) |> Enum.map(&Generator.source(project, &1))

        samples = for _ <- 1..runs, do: measure(project, files, {script, breakpoints})

        {k, Stats.columns(samples, [:total, :start_and_compile, :interpret, :breakpoints_and_app])}
      end

    File.rm_rf!(dir)
    results
  end

  defp measure(project, files, session) do
    Workload.edit_visibly(project, files)
    restart(project, session, files)
  end

  defp timestamps(project, files) do
    "now #{System.os_time(:second)}, manifest #{inspect(Staleness.mtime(Workload.elixir_manifest(project)))}, " <>
      "edited #{inspect(Enum.map(files, &Staleness.mtime/1))}"
  end

  defp restart(project, {script, breakpoints}, files) do
    started = System.monotonic_time(:microsecond)

    port =
      Port.open({:spawn_executable, System.find_executable("mix")}, [
        :binary,
        :exit_status,
        :stderr_to_stdout,
        {:line, 4096},
        cd: project.root,
        args: ["run", "--no-start", script, project.namespace, breakpoints],
        env: [{~c"MIX_ENV", ~c"dev"}, {~c"MIX_EXS", false}, {~c"MIX_BUILD_PATH", false}]
      ])

    {ready_at, lines} = await_ready(port, [])
    await_exit(port, lines)

    [count, interpret, rest] =
      lines |> hd() |> String.split() |> Enum.take(-3) |> Enum.map(&String.to_integer/1)

    check!(project, lines, files, count)
    total = ready_at - started

    %{
      total: total,
      start_and_compile: total - interpret - rest,
      interpret: interpret,
      breakpoints_and_app: rest
    }
  end

  defp await_ready(port, lines) do
    receive do
      {^port, {:data, {:eol, "debug session ready " <> _ = line}}} ->
        {System.monotonic_time(:microsecond), [line | lines]}

      {^port, {:data, {_, line}}} ->
        await_ready(port, [line | lines])

      {^port, {:exit_status, status}} ->
        raise "fresh restart exited (#{status}) before the session was ready:\n#{output(lines)}"
    after
      600_000 -> raise "fresh restart not ready after 10 minutes:\n#{output(lines)}"
    end
  end

  defp await_exit(port, lines) do
    receive do
      {^port, {:data, _}} -> await_exit(port, lines)
      {^port, {:exit_status, 0}} -> :ok
      {^port, {:exit_status, status}} -> raise "fresh restart exited (#{status}):\n#{output(lines)}"
    after
      120_000 -> raise "fresh restart did not exit:\n#{output(lines)}"
    end
  end

  # The measurement must be of a restart that compiled the edit and
  # interpreted the whole project.
  defp check!(project, lines, files, count) do
    compiled = compiled(lines)

    compiled == [Integer.to_string(length(files))] ||
      raise "fresh restart compiled #{inspect(compiled)} files, expected #{length(files)}, " <>
              "#{timestamps(project, files)}:\n#{output(lines)}"

    count == length(project.modules) ||
      raise "fresh restart interpreted #{count} modules, expected #{length(project.modules)}"
  end

  defp compiled(lines),
    do: Enum.find_value(lines, &Regex.run(~r/^Compiling (\d+) files? \(\.ex\)/, &1, capture: :all_but_first))

  defp output(lines), do: lines |> Enum.reverse() |> Enum.join("\n")
end
