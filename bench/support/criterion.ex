defmodule DebugReload.Bench.Criterion do
  @moduledoc """
  Reads the medians criterion saved for the Rust benches of the last
  `cargo bench` (`target/criterion/<group>/<bench>/new/`), so `make bench`
  puts them on the same page as the reload figures.
  """

  alias DebugReload.Native

  @type bench :: %{id: String.t(), median_ns: float(), measured_at: NaiveDateTime.t()}

  @doc "Every bench found under `target_dir`, sorted by id."
  @spec read(String.t()) :: [bench()]
  def read(target_dir) do
    target_dir
    |> Path.join("criterion/**/new/benchmark.json")
    |> Path.wildcard()
    |> Enum.flat_map(&read_bench/1)
    |> Enum.sort_by(& &1.id)
  end

  defp read_bench(benchmark_json) do
    dir = Path.dirname(benchmark_json)

    with {:ok, %{"full_id" => id}} <- decode(benchmark_json),
         {:ok, %{"median" => %{"point_estimate" => median}}} <- decode(Path.join(dir, "estimates.json")),
         {:ok, %{mtime: mtime}} <- File.stat(Path.join(dir, "estimates.json"), time: :universal) do
      [%{id: id, median_ns: median * 1.0, measured_at: NaiveDateTime.from_erl!(mtime)}]
    else
      _ -> []
    end
  end

  defp decode(path) do
    with {:ok, json} <- File.read(path), do: Native.decode_json(json)
  end
end
