defmodule DebugReload.DAP.Stdio do
  @moduledoc """
  A minimal DAP endpoint on standard I/O: reads framed requests, answers
  `initialize`, `reloadCode`/`hotReload` and `disconnect`, and writes framed
  responses and events with adapter-assigned `seq` numbers. It exists to
  test the wire format end to end and as a reference for adapters; a real
  adapter (ElixirLS) calls `DebugReload.DAP.handle_request/2` itself.
  """

  alias DebugReload.DAP
  alias DebugReload.DAP.Wire

  @doc "Serves until `disconnect` or end of input."
  @spec serve(keyword()) :: :ok
  def serve(opts \\ []) do
    :ok = :io.setopts(:standard_io, binary: true, encoding: :latin1)
    keep_logs_off_stdout()
    loop(1, opts)
  end

  # Standard output carries the protocol; a log line there would corrupt it.
  defp keep_logs_off_stdout do
    if Version.match?(System.version(), ">= 1.15.0") do
      :logger.update_handler_config(:default, :config, %{type: :standard_error})
    else
      apply(Logger, :configure_backend, [:console, [device: :standard_error]])
    end
  end

  defp loop(seq, opts) do
    case Wire.read(:stdio) do
      {:ok, message} ->
        case handle_all([message], seq, opts) do
          {:stop, _seq} -> :ok
          {:cont, seq} -> loop(seq, opts)
        end

      :eof ->
        :ok

      {:error, reason} ->
        IO.write(:stderr, "debug_reload stdio: #{reason}\n")
        :ok
    end
  end

  defp handle_all([], seq, _opts), do: {:cont, seq}

  defp handle_all([message | rest], seq, opts) do
    {outgoing, stop?} = handle(message, opts)
    seq = send_all(outgoing, seq)
    if stop?, do: {:stop, seq}, else: handle_all(rest, seq, opts)
  end

  defp handle(%{"type" => "request", "command" => "initialize"} = req, _opts),
    do: {[response(req, DAP.capabilities())], false}

  defp handle(%{"type" => "request", "command" => "disconnect"} = req, _opts),
    do: {[response(req, nil)], true}

  defp handle(%{"type" => "request", "command" => command} = req, opts) do
    if command in DAP.commands() do
      {response, events} = DAP.handle_request(req, opts)
      {[response | events], false}
    else
      {response, _} = DAP.handle_request(req, opts)
      {[response], false}
    end
  end

  defp handle(_other, _opts), do: {[], false}

  defp response(req, body) do
    base = %{
      "type" => "response",
      "request_seq" => req["seq"],
      "command" => req["command"],
      "success" => true
    }

    if body, do: Map.put(base, "body", body), else: base
  end

  defp send_all(messages, seq) do
    Enum.reduce(messages, seq, fn message, seq ->
      IO.binwrite(:stdio, Wire.frame(Map.put(message, "seq", seq)))
      seq + 1
    end)
  end
end
