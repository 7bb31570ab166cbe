defmodule DebugReload.Cluster do
  @moduledoc """
  Native loads on this node and on every connected node running the code.

  Each node loads its modules atomically with `:code.atomic_load/1`, so
  either every module of the batch loads or none; `@on_load` modules,
  which cannot be loaded that way, load one by one after the rest. Across nodes the batch commits
  node by node; if one node fails or goes away, the nodes already loaded
  get their old beams back. Every remote call is bounded by
  `:node_timeout`, so a node that hangs or disconnects cannot hang the
  reload.

  Interpreted modules need their stubs on every node too: what
  `:int.ni/1` does there (through `rpc:multicall/3`, which waits forever
  on a node that hangs) is done here with the same bound
  (`interpret_remote/5`, `uninterpret_remote/3`). Breakpoints live in the
  one interpreter server the cluster shares.
  """

  @typedoc "A module's previous beam, `:absent` if it did not exist, `:unknown` if it was not kept."
  @type old_code :: {String.t(), binary()} | :absent | :unknown

  @doc "The remote nodes a reload applies to: option `:nodes`, else every visible connected node."
  @spec nodes(keyword()) :: [node()]
  def nodes(opts) do
    case Keyword.get(opts, :nodes, :connected) do
      :connected -> Node.list()
      nodes when is_list(nodes) -> Enum.reject(nodes, &(&1 == node()))
    end
  end

  @doc """
  Loads `infos` here and on `nodes` (where each module is loaded already,
  or is new). Returns warnings, or an error after restoring every node that
  had loaded.
  """
  @spec load([DebugReload.Beam.info()], [node()], timeout(), MapSet.t(module())) ::
          {:ok, [String.t()]} | {:error, String.t()}
  def load(infos, nodes, timeout, new_modules \\ MapSet.new()) do
    modules = for info <- infos, do: {info.module, String.to_charlist(info.path), info.binary}

    case load_local(modules) do
      :ok -> load_remote(modules, nodes, timeout, new_modules)
      {:error, message} -> {:error, message}
    end
  end

  defp load_local(modules) do
    case load_batch(modules, &apply/3) do
      :ok -> :ok
      {:error, message} -> {:error, "native load failed here: #{message}"}
    end
  end

  # One mechanism for every node: the batch loads atomically, except the
  # modules the code server refuses to prepare because they carry
  # @on_load (it says so itself, debug info or not); those then load one
  # by one, running their hook, after the rest loaded together.
  defp load_batch(modules, call) do
    case call.(:code, :atomic_load, [modules]) do
      :ok ->
        :ok

      {:error, failures} ->
        hooked = for {module, :on_load_not_allowed} <- failures, do: module

        if hooked != [] and length(hooked) == length(failures) do
          {each, together} = Enum.split_with(modules, &(elem(&1, 0) in hooked))

          with :ok <- load_together(together, call),
               do: load_each(each, call)
        else
          {:error, "nothing loaded: #{inspect(failures)}"}
        end
    end
  end

  defp load_together([], _call), do: :ok

  defp load_together(modules, call) do
    case call.(:code, :atomic_load, [modules]) do
      :ok -> :ok
      {:error, failures} -> {:error, "nothing loaded: #{inspect(failures)}"}
    end
  end

  defp load_each(modules, call) do
    Enum.reduce_while(modules, :ok, fn {module, path, binary}, :ok ->
      case call.(:code, :load_binary, [module, path, binary]) do
        {:module, ^module} -> {:cont, :ok}
        {:error, reason} -> {:halt, {:error, "#{inspect(module)} failed to load: #{inspect(reason)}"}}
      end
    end)
  end

  # Nodes that loaded before a failure are restored by the caller's undo
  # log, which knows the old beams.
  defp load_remote(_modules, [], _timeout, _new), do: {:ok, []}

  defp load_remote(modules, [node | rest], timeout, new) do
    case load_on(node, modules, timeout, new) do
      result when result in [:ok, :skip] -> load_remote(modules, rest, timeout, new)
      {:error, message} -> {:error, "node #{node}: #{message}"}
    end
  end

  # Only modules the node runs (or new ones) are loaded there; a node that
  # never loaded a module picks up nothing from us.
  defp load_on(node, modules, timeout, new) do
    bounded(
      fn ->
        loaded = :erpc.call(node, :code, :all_loaded, [], timeout) |> Map.new()

        relevant =
          for {module, _path, _bin} = m <- modules,
              Map.has_key?(loaded, module) or MapSet.member?(new, module),
              do: m

        with [_ | _] <- relevant,
             _ <- Enum.each(relevant, &:erpc.call(node, :code, :soft_purge, [elem(&1, 0)], timeout)),
             :ok <- load_batch(relevant, &:erpc.call(node, &1, &2, &3, timeout)) do
          :ok
        else
          [] -> :skip
          {:error, message} -> {:error, "load failed, #{message}"}
        end
      end,
      timeout
    )
    |> case do
      {:ok, result} -> result
      error -> error
    end
  end

  @doc """
  On each of `nodes`, replaces `module` with `beam` (as its stub) and
  routes its calls to the interpreter, which must interpret it already:
  `:int.ni/1`'s work on the other nodes, each call bounded by `timeout`.
  """
  @spec interpret_remote(module(), String.t(), binary(), [node()], timeout()) :: :ok | {:error, String.t()}
  def interpret_remote(module, beam_path, beam, nodes, timeout) do
    path = String.to_charlist(beam_path)

    Enum.reduce_while(nodes, :ok, fn node, :ok ->
      result =
        bounded(
          fn ->
            :erpc.call(node, :code, :purge, [module], timeout)
            :erpc.call(node, :erts_debug, :breakpoint, [{module, :_, :_}, false], timeout)
            {:module, ^module} = :erpc.call(node, :code, :load_binary, [module, path, beam], timeout)
            :erpc.call(node, :erts_debug, :breakpoint, [{module, :_, :_}, true], timeout)
          end,
          timeout
        )

      case result do
        {:ok, _} -> {:cont, :ok}
        {:error, message} -> {:halt, {:error, "node #{node}: #{message}"}}
      end
    end)
  end

  @doc """
  Stops routing `module`'s calls on `nodes` to the interpreter, as
  `:int.nn/1` does there. Returns the nodes it could not tell.
  """
  @spec uninterpret_remote(module(), [node()], timeout()) :: [String.t()]
  def uninterpret_remote(module, nodes, timeout) do
    for node <- nodes,
        {:error, message} <- [
          bounded(
            fn -> :erpc.call(node, :erts_debug, :breakpoint, [{module, :_, :_}, false], timeout) end,
            timeout
          )
        ],
        do: "#{inspect(module)} on #{node}: #{message}"
  end

  # A remote step, each of its calls bounded by `timeout`.
  defp bounded(fun, timeout) do
    {:ok, fun.()}
  catch
    :error, {:erpc, :noconnection} -> {:error, "disconnected during the reload"}
    :error, {:erpc, :timeout} -> {:error, "did not answer within #{timeout} ms"}
    kind, reason -> {:error, Exception.format_banner(kind, reason)}
  end

  @doc """
  Puts `old` back here and on `nodes`. Returns what could not be restored.
  """
  @spec restore(module(), old_code(), [node()], timeout()) :: [String.t()]
  def restore(module, :unknown, _nodes, _timeout),
    do: ["#{inspect(module)}: its previous beam was not kept, so it keeps the new code"]

  def restore(module, old, nodes, timeout) do
    {reachable, gone} = Enum.split_with(nodes, &(&1 in Node.list()))
    local = restore_on(node(), module, old, timeout)
    remote = Enum.flat_map(reachable, &restore_on(&1, module, old, timeout))
    local ++ remote ++ Enum.map(gone, &"#{inspect(module)} on #{&1}: node unreachable, not restored")
  end

  defp restore_on(node, module, :absent, timeout) do
    call(node, :code, :purge, [module], timeout)
    call(node, :code, :delete, [module], timeout)
    call(node, :code, :purge, [module], timeout)
    []
  rescue
    _ -> ["#{inspect(module)} on #{node}: could not unload it"]
  end

  defp restore_on(node, module, {path, binary}, timeout) do
    if call(node, :code, :is_loaded, [module], timeout) == false and node != node() do
      []
    else
      call(node, :code, :soft_purge, [module], timeout)

      case call(node, :code, :load_binary, [module, String.to_charlist(path), binary], timeout) do
        {:module, ^module} -> []
        other -> ["#{inspect(module)} on #{node}: the old beam did not load back (#{inspect(other)})"]
      end
    end
  catch
    kind, reason -> ["#{inspect(module)} on #{node}: #{Exception.format_banner(kind, reason)}"]
  end

  defp call(node, m, f, a, _timeout) when node == node(), do: apply(m, f, a)
  defp call(node, m, f, a, timeout), do: :erpc.call(node, m, f, a, timeout)
end
