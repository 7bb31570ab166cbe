defmodule DebugReload.Bench.Session do
  @moduledoc """
  The DebugReload manager of a benchmark workload: started as a debugger
  integration would start it, and reloads that must succeed.
  """

  alias DebugReload.Bench.Workload

  @doc "Starts a manager for the workload and waits until its compile worker is warm."
  @spec start(Workload.t()) :: atom()
  def start(%Workload{project: project}) do
    name = :"bench_reload_#{project.size}"

    {:ok, _pid} =
      DebugReload.start_link(
        project: project.root,
        interpret: ["#{project.namespace}.*"],
        name: name,
        mix_env: "dev"
      )

    # Nothing changed yet: this waits for the worker node to boot.
    {:ok, %{status: :noop}} = DebugReload.reload(server: name)
    name
  end

  @spec stop(atom()) :: :ok
  def stop(name), do: GenServer.stop(name)

  @doc "Reloads and raises unless the reload succeeded with `status`."
  @spec reload!(atom(), atom()) :: DebugReload.Report.t()
  def reload!(name, status \\ :ok) do
    case DebugReload.reload(server: name) do
      {:ok, %{status: ^status} = report} ->
        # Mix's background catch-up after a planned compile, timed apart:
        # the next reload would wait for it, a person editing would not.
        {catch_up_us, :ok} = :timer.tc(fn -> DebugReload.await_sync(name) end)
        put_in(report.timings[:catch_up_us], catch_up_us)

      {_, report} ->
        raise "expected a #{status} reload, got #{report.status}: #{report.error} #{inspect(report.warnings)}"
    end
  end

  @doc "Modules the report says were re-interpreted."
  @spec reinterpreted(DebugReload.Report.t()) :: [module()]
  def reinterpreted(report), do: for(%{action: :reinterpreted, module: m} <- report.modules, do: m)
end
