defmodule DebugReload.DAP.Wire do
  @moduledoc """
  DAP's base protocol: each message is `Content-Length: N\\r\\n\\r\\n` followed
  by N bytes of UTF-8 JSON.
  """

  alias DebugReload.Native

  @spec frame(map()) :: iodata()
  def frame(message) do
    json = Native.encode_json(message)
    ["Content-Length: ", Integer.to_string(byte_size(json)), "\r\n\r\n", json]
  end

  @doc """
  Splits complete messages off `buffer`. Returns the decoded messages and
  the unconsumed rest; a malformed header or body is an error.
  """
  @spec parse(binary()) :: {:ok, [map()], binary()} | {:error, String.t()}
  def parse(buffer), do: parse(buffer, [])

  defp parse(buffer, acc) do
    case :binary.split(buffer, "\r\n\r\n") do
      [header, rest] ->
        with {:ok, length} <- content_length(header) do
          case rest do
            <<json::binary-size(length), more::binary>> ->
              case Native.decode_json(json) do
                {:ok, message} -> parse(more, [message | acc])
                {:error, reason} -> {:error, "malformed JSON body: #{reason}"}
              end

            _incomplete ->
              {:ok, Enum.reverse(acc), buffer}
          end
        end

      [_incomplete] ->
        {:ok, Enum.reverse(acc), buffer}
    end
  end

  @doc """
  Reads one message from an IO device (blocking): header lines up to the
  blank line, then exactly Content-Length bytes.
  """
  @spec read(IO.device()) :: {:ok, map()} | :eof | {:error, String.t()}
  def read(device) do
    with {:ok, header} <- read_header(device, []),
         {:ok, length} <- content_length(header) do
      case IO.binread(device, length) do
        json when is_binary(json) and byte_size(json) == length -> Native.decode_json(json)
        :eof -> :eof
        _ -> {:error, "truncated message body"}
      end
    end
  end

  defp read_header(device, lines) do
    case IO.binread(device, :line) do
      :eof -> :eof
      {:error, reason} -> {:error, inspect(reason)}
      line when line in ["\r\n", "\n"] -> {:ok, lines |> Enum.reverse() |> Enum.join("\r\n")}
      line -> read_header(device, [String.trim_trailing(line) | lines])
    end
  end

  defp content_length(header) do
    header
    |> String.split("\r\n")
    |> Enum.find_value(fn line ->
      case String.split(line, ":", parts: 2) do
        [name, value] -> if String.downcase(String.trim(name)) == "content-length", do: String.trim(value)
        _ -> nil
      end
    end)
    |> case do
      nil ->
        {:error, "missing Content-Length header"}

      value ->
        case Integer.parse(value) do
          {n, ""} when n >= 0 -> {:ok, n}
          _ -> {:error, "bad Content-Length #{inspect(value)}"}
        end
    end
  end
end
