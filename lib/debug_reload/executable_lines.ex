defmodule DebugReload.ExecutableLines do
  @moduledoc """
  The statements where OTP's interpreter can stop, read from a beam's
  debug info, and their lines.

  `dbg_ieval` checks breakpoints before each expression of a body sequence:
  function clause bodies and the bodies nested in `case`, `receive`, `try`,
  `fun`, `if` and blocks. A breakpoint on any other line never triggers.

  Each statement is keyed by function (`"name/arity"`), clause index and
  expression path (indices through nested bodies), which identify it
  across reformatting and moves, where its line does not.
  """

  @type statement ::
          {function :: String.t(), clause :: non_neg_integer(), path :: [non_neg_integer()],
           line :: pos_integer()}

  @doc "Sorted executable lines of a beam binary, or `{:error, reason}`."
  @spec from_beam(binary()) :: {:ok, [pos_integer()]} | {:error, term()}
  def from_beam(beam) when is_binary(beam) do
    with {:ok, statements} <- statements(beam) do
      {:ok, statements |> Enum.map(&elem(&1, 3)) |> Enum.uniq() |> Enum.sort()}
    end
  end

  @doc "Every statement of every function, in source order."
  @spec statements(binary()) :: {:ok, [statement()]} | {:error, term()}
  def statements(beam) when is_binary(beam) do
    with {:ok, forms} <- abstract_code(beam), do: {:ok, statements_of(forms)}
  end

  @doc "Every statement of every function of Erlang abstract `forms`, in source order."
  @spec statements_of([tuple()]) :: [statement()]
  def statements_of(forms) do
    for {:function, _, name, arity, clauses} <- forms,
        {{:clause, _, _, _, body}, index} <- Enum.with_index(clauses),
        {path, line} <- body_statements(body, []),
        do: {"#{name}/#{arity}", index, path, line}
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

  # {path, line} for each expression of a body and, below each one, for
  # the expressions of the bodies nested in it.
  defp body_statements(body, prefix) when is_list(body) do
    body
    |> Enum.with_index()
    |> Enum.flat_map(fn {expr, index} ->
      path = prefix ++ [index]
      own = if (line = line_of(expr)) > 0, do: [{path, line}], else: []

      nested =
        expr
        |> nested_bodies([])
        |> Enum.reverse()
        |> Enum.with_index()
        |> Enum.flat_map(fn {inner, k} -> body_statements(inner, path ++ [k]) end)

      own ++ nested
    end)
  end

  defp body_statements(_not_a_body, _prefix), do: []

  # Bodies directly nested in a term (not those nested in them), in order.
  defp nested_bodies({:clause, _, _, _, body}, acc), do: [body | acc]
  defp nested_bodies({:block, _, body}, acc), do: [body | acc]
  defp nested_bodies(tuple, acc) when is_tuple(tuple), do: nested_list(Tuple.to_list(tuple), acc)
  defp nested_bodies(list, acc) when is_list(list), do: nested_list(list, acc)
  defp nested_bodies(_other, acc), do: acc

  defp nested_list([head | tail], acc), do: nested_list(tail, nested_bodies(head, acc))
  defp nested_list(_end, acc), do: acc

  defp line_of(expr) when is_tuple(expr) and tuple_size(expr) >= 2 do
    case :erl_anno.line(elem(expr, 1)) do
      line when is_integer(line) -> line
      _ -> 0
    end
  catch
    _, _ -> 0
  end

  defp line_of(_), do: 0
end
