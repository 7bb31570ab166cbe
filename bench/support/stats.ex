defmodule DebugReload.Bench.Stats do
  @moduledoc "Medians, ratios and the few number formats the benchmark report uses."

  @doc "The median of a non-empty list of numbers (mean of the middle two for an even count)."
  @spec median([number()]) :: float()
  def median([]), do: raise(ArgumentError, "median of no samples")

  def median(samples) do
    sorted = Enum.sort(samples)
    n = length(sorted)
    mid = div(n, 2)

    if rem(n, 2) == 1,
      do: Enum.at(sorted, mid) * 1.0,
      else: (Enum.at(sorted, mid - 1) + Enum.at(sorted, mid)) / 2
  end

  @doc "Per key, the values of `samples` (maps with those keys), in order."
  @spec columns([map()], [atom()]) :: %{atom() => [number()]}
  def columns(samples, keys), do: Map.new(keys, fn key -> {key, Enum.map(samples, &Map.fetch!(&1, key))} end)

  @doc "The `p`-th percentile (0..100), nearest rank."
  @spec percentile([number()], number()) :: number()
  def percentile(samples, p) do
    sorted = Enum.sort(samples)
    rank = max(ceil(p / 100 * length(sorted)), 1)
    Enum.at(sorted, rank - 1)
  end

  @doc "Microseconds as milliseconds for people: `4.2 µs`, `0.84 ms`, `12.3 ms`, `1,234 ms`."
  @spec ms(number()) :: String.t()
  def ms(us) do
    value = us / 1000

    cond do
      us < 100 -> :erlang.float_to_binary(us * 1.0, decimals: 1) <> " µs"
      value < 10 -> :erlang.float_to_binary(value, decimals: 2) <> " ms"
      value < 100 -> :erlang.float_to_binary(value, decimals: 1) <> " ms"
      true -> thousands(round(value)) <> " ms"
    end
  end

  @doc "A ratio as `3.4×`."
  @spec times(number()) :: String.t()
  def times(ratio) when ratio >= 100, do: "#{round(ratio)}×"
  def times(ratio), do: :erlang.float_to_binary(ratio * 1.0, decimals: if(ratio < 10, do: 2, else: 1)) <> "×"

  @doc "Bytes as `12.3 MiB` / `456 KiB`."
  @spec bytes(non_neg_integer()) :: String.t()
  def bytes(n) when n >= 1_048_576, do: :erlang.float_to_binary(n / 1_048_576, decimals: 1) <> " MiB"
  def bytes(n), do: "#{round(n / 1024)} KiB"

  @doc "An integer with thousands separators: `12,345`."
  @spec thousands(integer()) :: String.t()
  def thousands(n) when n < 0, do: "-" <> thousands(-n)

  def thousands(n) do
    n
    |> Integer.to_string()
    |> String.reverse()
    |> String.graphemes()
    |> Enum.chunk_every(3)
    |> Enum.map_join(",", &Enum.join/1)
    |> String.reverse()
  end
end
