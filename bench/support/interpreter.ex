defmodule DebugReload.Bench.Interpreter do
  @moduledoc "Facts about OTP's interpreter server the benchmarks report."

  @doc "Subscribers of `dbg_iserver` (`:int.subscribe/0`), dead ones and duplicates included."
  @spec subscribers() :: [pid()]
  def subscribers do
    case :sys.get_state(:dbg_iserver) do
      {:state, _db, _procs, _breaks, _auto, _stack, subs} -> subs
      other -> raise "unknown dbg_iserver state layout: #{inspect(elem(other, 0))}"
    end
  end
end
