defmodule DebugReload.CompileWorker do
  @moduledoc """
  A warm Mix node, started with OTP's `:peer`, that compiles the debugged
  project out of the debugged VM.

  Compiling in the debugged VM while its modules are interpreted has been
  seen to crash the whole VM, so the debugged VM never compiles. The worker
  runs Mix's own `compile` task (which keeps Mix's manifests consistent, so
  a later `mix compile` has nothing left to do) and writes beams to disk;
  the manager loads them under its own control. Keeping the node alive
  between reloads saves Mix's start-up cost on every edit.

  The peer speaks to us over its standard I/O, so the debugged node need
  not be distributed, and it dies with this process.
  """
  use GenServer

  alias DebugReload.CompileWorker.Remote
  alias DebugReload.Project

  @boot_timeout 60_000

  @type compile_result ::
          {:ok | :noop | :error, [DebugReload.Report.diagnostic()], output :: String.t()}

  def start_link(opts), do: GenServer.start_link(__MODULE__, opts)

  @doc "The project layout, booting the worker node on first use."
  @spec project(GenServer.server()) :: {:ok, Project.t()} | {:error, String.t()}
  def project(worker), do: GenServer.call(worker, :project, @boot_timeout)

  @doc """
  Runs Mix's compile task in the worker node, after compiling the `path:`
  dependencies named in `deps` (`mix deps.compile`).
  """
  @spec compile(GenServer.server(), timeout(), [atom()]) :: compile_result() | {:error, String.t()}
  def compile(worker, timeout, deps \\ []),
    do: GenServer.call(worker, {:compile, timeout, deps}, timeout + 1_000)

  @typedoc "A module a planned compile wrote: its new beam, the beam it replaced, its export digest."
  @type compiled :: %{
          module: module(),
          path: String.t(),
          binary: binary(),
          old_binary: binary() | nil,
          export: binary() | nil
        }

  @typedoc "How a planned compile ended."
  @type planned_result ::
          {:ok, [compiled()], [DebugReload.Report.diagnostic()], String.t()}
          | {:error, [DebugReload.Report.diagnostic()], String.t()}
          | {:fallback, String.t()}
          | {:error, String.t()}

  @doc """
  Compiles the files of `spec` (see `DebugReload.Planner.compile_spec/2`)
  in the worker node. A successful one leaves a sync (Mix's compile task,
  which brings Mix's manifests up to date) to run: `start_sync/1` starts
  it, and any later request runs it first if nothing did.
  `{:fallback, reason}`: the compile needs Mix's task; nothing was written.

  `{:announced, compiled}`: every file compiled and these are the new
  beams, but the compiler is still checking the compiled code (calls to
  undefined or deprecated functions), which only adds warnings; a project
  whose warnings are errors is never announced. The caller may load them
  meanwhile, and must then ask for the result with `planned_result/2`
  before anything else.
  """
  @spec compile_planned(GenServer.server(), map(), timeout()) :: planned_result() | {:announced, [compiled()]}
  def compile_planned(worker, spec, timeout),
    do: GenServer.call(worker, {:compile_planned, spec, timeout}, 2 * timeout + 1_000)

  @doc """
  The result of the planned compile that `compile_planned/3` announced:
  as that function's, but `:ok` carries the compiled modules without their
  binaries (the announcement had them). It stays until the next compile.
  """
  @spec planned_result(GenServer.server(), timeout()) :: planned_result()
  def planned_result(worker, timeout), do: GenServer.call(worker, :planned_result, 2 * timeout + 1_000)

  @doc """
  Starts the sync a planned compile left, in the background. The manager
  calls it once the new code is loaded: on a small machine a sync running
  alongside the load would slow the reload down.
  """
  @spec start_sync(GenServer.server()) :: :ok
  def start_sync(worker), do: GenServer.cast(worker, :start_sync)

  @doc """
  Waits for the sync that followed the last planned compile: its
  `compile/2` result, or `:none` when there was none since the last call.
  """
  @spec await_sync(GenServer.server(), timeout()) :: compile_result() | {:error, String.t()} | :none
  def await_sync(worker, timeout), do: GenServer.call(worker, {:await_sync, timeout}, timeout + 1_000)

  @impl true
  def init(opts) do
    state = %{
      root: Keyword.fetch!(opts, :root),
      env: Keyword.fetch!(opts, :env),
      owner: Keyword.get(opts, :owner),
      peer: nil,
      project: nil,
      sync: nil,
      planned: nil
    }

    {:ok, state, {:continue, :boot}}
  end

  @impl true
  def handle_continue(:boot, state), do: {:noreply, ensure_booted(state) |> elem(1)}

  @impl true
  def handle_call(:project, _from, state) do
    case ensure_booted(state) do
      {:ok, state} -> {:reply, {:ok, state.project}, state}
      {{:error, reason}, state} -> {:reply, {:error, reason}, state}
    end
  end

  def handle_call({:compile, timeout, deps}, _from, state) do
    state = finish_sync(state, timeout)
    {reply, state} = remote(state, :compile, [deps], timeout)
    {:reply, reply, state}
  end

  def handle_call({:compile_planned, spec, timeout}, from, state) do
    state = finish_sync(%{state | planned: nil}, timeout)
    old_binaries = read_beams(spec.ebin, Map.keys(spec.exports))

    case ensure_booted(state) do
      {:ok, state} ->
        tag = System.unique_integer()
        spec = Map.put(spec, :notify, {self(), tag})
        peer = state.peer
        task = Task.async(fn -> call_peer(peer, :compile_planned, [spec], timeout) end)

        case await_planned(task, tag, old_binaries) do
          {:announced, compiled, announced, task} ->
            GenServer.reply(from, {:announced, compiled})
            # Read; the worker would otherwise clear them before its next compile.
            Enum.each(announced, &File.rm/1)
            {result, state} = planned_outcome(await_call(task), spec, timeout, state)
            {:noreply, %{state | planned: without_binaries(result)}}

          {:result, result} ->
            {result, state} = planned_outcome(result, spec, timeout, state)
            {:reply, with_binaries(result, old_binaries), state}
        end

      {{:error, reason}, state} ->
        {:reply, {:error, reason}, state}
    end
  end

  def handle_call(:planned_result, _from, state),
    do: {:reply, state.planned || {:error, "no planned compile was announced"}, state}

  def handle_call({:await_sync, timeout}, _from, state) do
    case finish_sync(state, timeout) do
      %{sync: {:done, result}} = state -> {:reply, result, %{state | sync: nil}}
      state -> {:reply, :none, state}
    end
  end

  @impl true
  def handle_cast(:start_sync, %{sync: {:wanted, timeout, modules}} = state),
    do: {:noreply, start_sync(state, timeout, modules)}

  def handle_cast(:start_sync, state), do: {:noreply, state}

  @impl true
  def handle_info({ref, result}, %{sync: {:running, %Task{ref: ref}}} = state) do
    Process.demonitor(ref, [:flush])
    {:noreply, sync_done(state, result)}
  end

  def handle_info({:EXIT, peer, _reason}, %{peer: peer} = state),
    do: {:noreply, %{state | peer: nil, project: nil}}

  def handle_info(_msg, state), do: {:noreply, state}

  @impl true
  def terminate(_reason, state), do: stop_peer(state)

  # The beams a planned compile replaces, read before it runs.
  defp read_beams(ebin, modules) do
    for module <- modules, {:ok, binary} <- [File.read(Path.join(ebin, "#{module}.beam"))], into: %{} do
      {module, binary}
    end
  end

  # The announcement of the compiled beams, or the compile's result when
  # it comes first (a failed compile, or one that gives way to Mix, sends
  # none). Announced beams that cannot be read are left for the result.
  defp await_planned(%Task{ref: ref} = task, tag, old_binaries) do
    receive do
      {:debug_reload_compiled, ^tag, compiled} ->
        case read_binaries(compiled, :announced, old_binaries) do
          {:ok, read} -> {:announced, read, Enum.map(compiled, & &1.announced), task}
          {:error, _} -> {:result, await_call(task)}
        end

      {^ref, result} ->
        Process.demonitor(ref, [:flush])
        {:result, result}
    end
  end

  defp await_call(task), do: Task.await(task, :infinity)

  # Bounded by the peer call's own timeout; whatever it raises is its
  # result. A call whose process in the worker is killed (an `@after_verify`
  # callback raising under Mix's compile task kills it through a link) is
  # answered with the `badarg` that `erlang:raise/3` returns for a class
  # it does not know: our calls answer tuples, never that atom.
  defp call_peer(peer, function, args, timeout) do
    case :peer.call(peer, Remote, function, args, timeout) do
      :badarg ->
        {:failed, :error,
         RuntimeError.exception("its call was killed, as a raising @after_verify callback does")}

      result ->
        {:ok, result}
    end
  catch
    kind, reason -> {:failed, kind, reason}
  end

  defp planned_outcome({:ok, {:ok, _compiled, _diagnostics, _output} = result}, spec, timeout, state),
    do: {result, %{state | sync: {:wanted, timeout, Map.keys(spec.exports)}}}

  defp planned_outcome(result, _spec, _timeout, state), do: called(result, state)

  defp with_binaries({:ok, compiled, diagnostics, output}, old_binaries) do
    case read_binaries(compiled, :path, old_binaries) do
      {:ok, compiled} -> {:ok, compiled, diagnostics, output}
      {:error, _} = error -> error
    end
  end

  defp with_binaries(result, _old_binaries), do: result

  defp without_binaries({:ok, compiled, diagnostics, output}),
    do: {:ok, Enum.map(compiled, &Map.take(&1, [:module, :path, :export])), diagnostics, output}

  defp without_binaries(result), do: result

  # Each entry's new beam, read from its `field` path, and the beam it
  # replaced.
  defp read_binaries(compiled, field, old_binaries) do
    Enum.reduce_while(compiled, {:ok, []}, fn entry, {:ok, acc} ->
      path = Map.fetch!(entry, field)

      case File.read(path) do
        {:ok, binary} ->
          entry =
            Map.merge(Map.delete(entry, :announced), %{binary: binary, old_binary: old_binaries[entry.module]})

          {:cont, {:ok, [entry | acc]}}

        {:error, reason} ->
          {:halt, {:error, "the new beam #{path} cannot be read: #{:file.format_error(reason)}"}}
      end
    end)
    |> then(fn
      {:ok, entries} -> {:ok, Enum.reverse(entries)}
      error -> error
    end)
  end

  defp remote(state, function, args, timeout) do
    case ensure_booted(state) do
      {:ok, state} -> called(call_peer(state.peer, function, args, timeout), state)
      {{:error, reason}, state} -> {{:error, reason}, state}
    end
  end

  # A crashed or hung worker is replaced on the next request.
  defp called({:ok, result}, state), do: {result, state}

  defp called({:failed, kind, reason}, state) do
    stop_peer(state)
    message = "compile worker failed: #{Exception.format_banner(kind, reason)}"
    {{:error, message}, %{state | peer: nil, project: nil}}
  end

  # The sync runs in a task so that the worker still answers; it is the
  # same `compile` a reload runs, on the same peer. The modules just
  # compiled are those the next edit most likely touches again: the sync
  # leaves them unloaded, ready to be compiled anew.
  defp start_sync(%{peer: peer} = state, timeout, modules) do
    task =
      Task.async(fn ->
        try do
          :peer.call(peer, Remote, :compile, [[], modules], timeout)
        catch
          kind, reason -> {:error, "sync failed: #{Exception.format_banner(kind, reason)}"}
        end
      end)

    %{state | sync: {:running, task}}
  end

  defp finish_sync(%{sync: {:wanted, _, modules}} = state, timeout),
    do: state |> start_sync(timeout, modules) |> finish_sync(timeout)

  defp finish_sync(%{sync: {:running, task}} = state, timeout) do
    result = Task.yield(task, timeout) || Task.shutdown(task) || {:error, "sync timed out"}

    case result do
      {:ok, result} -> sync_done(state, result)
      {:exit, reason} -> sync_done(state, {:error, "sync failed: #{inspect(reason)}"})
      {:error, _} = error -> sync_done(state, error)
    end
  end

  defp finish_sync(state, _timeout), do: state

  defp sync_done(state, result) do
    if state.owner, do: send(state.owner, {:debug_reload_sync_done, self()})
    %{state | sync: {:done, result}}
  end

  defp ensure_booted(%{peer: peer} = state) when is_pid(peer), do: {:ok, state}

  defp ensure_booted(state) do
    Process.flag(:trap_exit, true)

    with {:ok, peer} <- start_peer(state),
         {:ok, layout} <- boot_project(peer, state) do
      project = struct!(Project, layout)
      {:ok, %{state | peer: peer, project: project}}
    else
      {:error, reason} -> {{:error, reason}, state}
    end
  end

  defp start_peer(state) do
    args = Enum.flat_map(code_paths(), &[~c"-pa", String.to_charlist(&1)])

    case :peer.start_link(%{
           connection: :standard_io,
           args: args,
           env: [{~c"MIX_ENV", String.to_charlist(state.env)}],
           wait_boot: @boot_timeout
         }) do
      {:ok, peer} -> {:ok, peer}
      {:ok, peer, _node} -> {:ok, peer}
      {:error, reason} -> {:error, "could not start the compile worker node: #{inspect(reason)}"}
    end
  end

  defp boot_project(peer, state) do
    {:ok, :peer.call(peer, Remote, :boot, [state.root, state.env], @boot_timeout)}
  catch
    kind, reason ->
      :peer.stop(peer)

      {:error,
       "could not load the Mix project at #{state.root} in the compile worker: " <>
         Exception.format_banner(kind, reason)}
  end

  # Elixir, Mix and this library; the project's own paths are Mix's business.
  defp code_paths do
    for app <- [:elixir, :mix, :logger, :eex, :debug_reload],
        dir = app_ebin(app),
        dir != nil,
        do: dir
  end

  defp app_ebin(:debug_reload), do: Path.dirname(:code.which(Remote) |> to_string())

  defp app_ebin(app) do
    case :code.lib_dir(app, :ebin) do
      {:error, _} -> nil
      dir -> to_string(dir)
    end
  end

  defp stop_peer(%{peer: peer}) when is_pid(peer) do
    :peer.stop(peer)
  catch
    _, _ -> :ok
  end

  defp stop_peer(_), do: :ok
end
