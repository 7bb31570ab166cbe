defmodule DebugReload.Watcher.LogForwarder do
  @moduledoc """
  Hands the Rust side's `tracing` events to `Logger`, at their level.

  A debug adapter speaks DAP on stdout, so Rust never prints: the NIF
  queues each event and sends it here as
  `{:debug_reload_log, level, target, message}`. One forwarder serves the
  whole VM; `ensure_started/0` starts it (unlinked, so it outlives the
  caller) and makes it the NIF's receiver. Events emitted while no
  forwarder runs are dropped.
  """
  use GenServer
  require Logger

  @doc "Starts the forwarder unless it runs."
  @spec ensure_started() :: {:ok, pid()} | {:error, String.t()}
  def ensure_started do
    case GenServer.start(__MODULE__, [], name: __MODULE__) do
      {:ok, pid} -> {:ok, pid}
      {:error, {:already_started, pid}} -> {:ok, pid}
      {:error, reason} -> {:error, reason}
    end
  end

  @impl true
  def init([]) do
    case DebugReload.Native.watch_log_forwarder(self()) do
      :ok -> {:ok, nil}
      {:error, reason} -> {:stop, reason}
    end
  end

  @impl true
  def handle_info({:debug_reload_log, level, target, message}, state) do
    Logger.log(level, fn -> "debug_reload: " <> message end, rust_target: target)
    {:noreply, state}
  end

  def handle_info(_other, state), do: {:noreply, state}
end
