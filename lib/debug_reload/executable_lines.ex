defmodule DebugReload.ExecutableLines do
  @moduledoc """
  The lines where OTP's interpreter can stop, read from a beam's debug info.

  `dbg_ieval` checks breakpoints before each expression of a body sequence:
  function clause bodies and the bodies nested in `case`, `receive`, `try`,
  `fun`, `if` and blocks. A breakpoint on any other line never triggers.
  """

  @doc "Sorted executable lines of a beam binary, or `{:error, reason}`."
  @spec from_beam(binary()) :: {:ok, [pos_integer()]} | {:error, term()}
  def from_beam(beam) when is_binary(beam) do
    with {:ok, forms} <- abstract_code(beam) do
      {:ok, forms |> collect(MapSet.new()) |> Enum.sort()}
    end
  end

  @doc "Erlang abstract forms of a beam, through its debug info backend."
  @spec abstract_code(binary()) :: {:ok, [tuple()]} | {:error, term()}
  def abstract_code(beam) do
    case :beam_lib.chunks(beam, [:debug_info]) do
      {:ok, {module, [debug_info: {:debug_info_v1, backend, data}]}} ->
        case backend.debug_info(:erlang_v1, module, data, []) do
          {:ok, forms} -> {:ok, forms}
          {:error, reason} -> {:error, {:no_abstract_code, reason}}
        end

      {:ok, {_module, [debug_info: :no_debug_info]}} ->
        {:error, :no_debug_info}

      {:error, :beam_lib, reason} ->
        {:error, reason}
    end
  end

  # Walk every term; each clause body and block contributes its expressions.
  defp collect({:clause, _, _, _, body}, acc), do: body |> add_lines(acc) |> collect_list(body)
  defp collect({:block, _, body}, acc), do: body |> add_lines(acc) |> collect_list(body)
  defp collect({:attribute, _, _, _}, acc), do: acc
  defp collect(tuple, acc) when is_tuple(tuple), do: collect_list(acc, Tuple.to_list(tuple))
  defp collect(list, acc) when is_list(list), do: collect_list(acc, list)
  defp collect(_other, acc), do: acc

  defp collect_list(acc, list) when is_list(list), do: Enum.reduce(list, acc, &collect/2)
  defp collect_list(acc, _improper), do: acc

  defp add_lines(body, acc) when is_list(body) do
    Enum.reduce(body, acc, fn expr, acc ->
      case line_of(expr) do
        line when is_integer(line) and line > 0 -> MapSet.put(acc, line)
        _ -> acc
      end
    end)
  end

  defp add_lines(_body, acc), do: acc

  defp line_of(expr) when is_tuple(expr) and tuple_size(expr) >= 2,
    do: :erl_anno.line(elem(expr, 1))

  defp line_of(_), do: nil
end
