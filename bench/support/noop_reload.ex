defmodule DebugReload.Bench.NoopReload do
  @moduledoc """
  Scenario 3: a reload when nothing changed. The manager still digests
  every source of the project to find that out; that scan is the cost.
  """

  alias DebugReload.Bench.Session

  @doc "Total reload time (µs) of `runs` no-op reloads."
  @spec run(atom(), pos_integer()) :: [non_neg_integer()]
  def run(server, runs) do
    for _ <- 1..runs, do: Session.reload!(server, :noop).timings.total_us
  end
end
