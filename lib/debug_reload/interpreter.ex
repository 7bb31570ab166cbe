defmodule DebugReload.Interpreter do
  @moduledoc """
  Re-interprets modules in OTP's interpreter without killing processes and
  without leaving long-lived processes on stale code.

  How `:int` behaves (see `dbg_iserver.erl`, `dbg_ieval.erl`, `dbg_icmd.erl`):

    * Every interpreted process has a *meta* process that evaluates its
      code. The meta caches each module's database (an ETS table) in its
      process dictionary under `{Module, :db}`, plus its five most recently
      called functions under `:cache`. `:int.ni/1` creates a fresh table but
      never touches those caches, so a GenServer that already ran the module
      keeps running the old code, and the old table is never freed.
    * `:int.nn/1` frees every table of the module and sends
      `{:int, {:old_code, Module}}` to every process that ever used one. A
      meta that receives it at call level 1 drops its caches; one that has
      the module on its interpreted stack (paused at a breakpoint in it,
      for example) is killed.

  So a swap first classifies every process that used the module, with the
  process and its meta suspended so the answer cannot go stale:

    * safe: outside interpreted code, or paused somewhere that does not
      involve the module. It may receive `:old_code`.
    * in use: the module is on its interpreted stack. It must not receive
      `:old_code` until it leaves; it finishes its current call on the old
      code and is invalidated later (see `invalidate/2`).
    * busy: running interpreted code right now. We retry for a short while
      because it usually finishes within milliseconds.

  When every user is safe the swap is *clean*: `:int.nn/1` then `:int.ni/1`,
  which frees the old tables (no leak) and moves every user to the new code.
  Otherwise it is a *shadow* swap: `:int.ni/1` alone, `:old_code` sent to
  the safe users only, and the in-use ones are returned as pending.
  """

  require Logger

  alias DebugReload.Cluster
  alias DebugReload.Interpreter.Image

  @type breakpoint :: {pos_integer(), list()}
  @type swap_result :: %{mode: :clean | :shadow, pending: [{pid(), atom()}]}

  @busy_retry_ms 2

  @doc "Modules the interpreter currently interprets (none if it never started)."
  @spec interpreted() :: [module()]
  def interpreted do
    if Process.whereis(:dbg_iserver), do: :int.interpreted(), else: []
  end

  @doc """
  Starts a process that subscribes to the interpreter's events and sends
  each to `owner` as the `{:int, event}` message it receives; nil when no
  interpreter runs. Stop it with `stop_forwarding/1`.

  A live subscriber costs every call that enters interpreted code from
  native code about a fifth of its speed (the server sends it two status
  events per call; a dead subscriber costs next to nothing), so a caller
  listens only while it needs to. The process is linked to the owner and
  to the interpreter server, which drops the subscription when it exits;
  `:int.subscribe/0` has no way back otherwise.
  """
  @spec forward_events(pid()) :: pid() | nil
  def forward_events(owner) do
    with iserver when is_pid(iserver) <- Process.whereis(:dbg_iserver) do
      relay = spawn_link(fn -> forward(owner, iserver) end)
      monitor = Process.monitor(relay)

      receive do
        {:forwarding, ^relay} ->
          Process.demonitor(monitor, [:flush])
          relay

        {:DOWN, ^monitor, :process, ^relay, _} ->
          nil
      end
    end
  end

  # Either link ending (the owner, or the interpreter server) ends it,
  # normally: nobody else is taken down with it.
  defp forward(owner, iserver) do
    Process.flag(:trap_exit, true)
    Process.link(iserver)
    :int.subscribe()
    # A call after the cast: when it returns, the subscription is in place.
    _ = :int.auto_attach()
    send(owner, {:forwarding, self()})
    forward_loop(owner)
  catch
    :exit, _ -> :ok
  end

  defp forward_loop(owner) do
    receive do
      {:int, _event} = message ->
        send(owner, message)
        forward_loop(owner)

      {:EXIT, _linked, _reason} ->
        :ok
    end
  end

  @doc "Stops a process `forward_events/1` started (and its subscription)."
  @spec stop_forwarding(pid() | nil) :: :ok
  def stop_forwarding(nil), do: :ok

  def stop_forwarding(relay) do
    Process.unlink(relay)
    Process.exit(relay, :kill)
    :ok
  end

  @doc "Whether `module` is interpreted: one lookup, not the list of every interpreted module."
  @spec interpreted?(module()) :: boolean()
  def interpreted?(module) do
    Process.whereis(:dbg_iserver) != nil and not match?({:error, _}, :int.file(module))
  end

  @doc """
  The source text `module` was interpreted from, as the interpreter keeps
  it (read when the module was interpreted): nil when it is not
  interpreted, the text is not UTF-8, or the debugger is one whose server
  protocol we do not know (see `DebugReload.Interpreter.Image`).
  """
  @spec interpreted_text(module()) :: String.t() | nil
  def interpreted_text(module) do
    with true <- Process.whereis(:dbg_iserver) != nil and Image.supported?(),
         {:ok, raw} when is_binary(raw) <- :dbg_iserver.safe_call({:raw_contents, module, :any}),
         text when is_binary(text) <- without_terminator(raw),
         true <- String.valid?(text) do
      text
    else
      _ -> nil
    end
  catch
    :exit, _ -> nil
  end

  # The server keeps the text with one NUL appended.
  defp without_terminator(raw) do
    size = byte_size(raw) - 1

    case raw do
      <<text::binary-size(size), 0>> -> text
      _ -> nil
    end
  end

  @doc "Breakpoints of `module` as `{line, options}`, options as `:int.all_breaks/1` gives them."
  @spec breakpoints(module()) :: [breakpoint()]
  def breakpoints(module) do
    if Process.whereis(:dbg_iserver) do
      for {{^module, line}, options} <- :int.all_breaks(module), do: {line, options}
    else
      []
    end
  end

  @doc "Sets a breakpoint with the status, trigger action and condition of `options`."
  @spec set_breakpoint(module(), pos_integer(), list()) :: :ok
  def set_breakpoint(module, line, [status, trigger, _, condition]) do
    _ = :int.break(module, line)
    if status == :inactive, do: :int.disable_break(module, line)
    if trigger != :enable, do: :int.action_at_break(module, line, trigger)
    if condition != :null, do: :int.test_at_break(module, line, condition)
    :ok
  end

  def set_breakpoint(module, line, _unknown),
    do: set_breakpoint(module, line, [:active, :enable, :null, :null])

  @spec delete_breakpoint(module(), pos_integer()) :: :ok
  def delete_breakpoint(module, line) do
    :int.delete_break(module, line)
    :ok
  end

  @doc """
  Interprets `beam` as the new code of `module`, moving every process that
  can safely move.

  Options: `:busy_timeout` (ms, default 2000) bounds how long to wait for
  processes running the module's interpreted code to pause or return;
  `:rollback` (`{beam_path, binary}` of the code being replaced) is
  re-interpreted, with the breakpoints, if the new code cannot be;
  `:on_busy` (`:proceed`, the default, or `:wait`/`:cancel`) says whether
  to swap anyway when processes are still running the module's code at the
  deadline (they finish on the old code), or to give up with
  `{:error, {:busy, pids}}`.
  """
  @spec swap(module(), String.t(), String.t(), binary(), keyword()) ::
          {:ok, swap_result()} | {:error, String.t() | {:busy, [pid()]}}
  def swap(module, source, beam_path, beam, opts \\ []) do
    # :int reads the source when it interprets; without it nothing can be
    # swapped, so leave the running code alone rather than drop it.
    if File.regular?(source) do
      start_swap(module, source, beam_path, beam, opts)
    else
      {:error, "its source #{source} is gone (deleted during the reload?); the old code stays"}
    end
  end

  defp start_swap(module, source, beam_path, beam, opts) do
    breaks = breakpoints(module)
    deadline = System.monotonic_time(:millisecond) + Keyword.get(opts, :busy_timeout, 2_000)
    rollback = Keyword.get(opts, :rollback)
    on_busy = Keyword.get(opts, :on_busy, :proceed)
    do_swap(module, source, {beam_path, beam}, {rollback, on_busy, opts}, breaks, deadline)
  end

  defp do_swap(module, source, new, {rollback, on_busy, opts} = how, breaks, deadline) do
    users = users(module)

    result =
      with_suspended(users, fn ->
        classified = Enum.map(users, fn user -> {user, classify(user, module)} end)
        busy = for {{pid, _}, c} <- classified, c in [:busy, :running], do: pid

        cond do
          busy == [] -> commit(module, source, new, {rollback, opts}, breaks, classified)
          System.monotonic_time(:millisecond) < deadline -> :retry
          on_busy == :proceed -> commit(module, source, new, {rollback, opts}, breaks, classified)
          true -> {:busy, busy}
        end
      end)

    case result do
      :retry ->
        Process.sleep(@busy_retry_ms)
        do_swap(module, source, new, how, breaks, deadline)

      {:busy, pids} ->
        {:error, {:busy, pids}}

      {:ok, swap, safe_metas} ->
        await_invalidated(safe_metas, module)
        {:ok, swap}

      {:error, _} = error ->
        error
    end
  end

  defp commit(module, source, {beam_path, beam}, {rollback, opts}, breaks, classified) do
    {safe, unsafe} = Enum.split_with(classified, fn {_, c} -> c in [:safe, :gone] end)
    safe_metas = for {{_pid, meta}, :safe} <- safe, do: meta

    if unsafe == [] do
      # nn frees every database of the module and tells each (safe, because
      # suspended and checked) user to drop its caches.
      forget_module(module, breaks, opts)

      case load(module, source, beam_path, beam, opts) do
        :ok ->
          restore_breakpoints(module, breaks)
          {:ok, %{mode: :clean, pending: []}, safe_metas}

        {:error, message} ->
          {:error, roll_back(module, source, rollback, breaks, message, opts)}
      end
    else
      case load(module, source, beam_path, beam, opts) do
        :ok ->
          Enum.each(safe_metas, &send(&1, {:int, {:old_code, module}}))
          pending = for {{pid, _meta}, reason} <- unsafe, do: {pid, reason}
          {:ok, %{mode: :shadow, pending: pending}, safe_metas}

        {:error, _} = error ->
          error
      end
    end
  end

  @doc """
  Moves `pid` to the newest code of `modules` if it is safe now.
  Returns the modules still pending for it.
  """
  @spec invalidate(pid(), [module()]) :: [module()]
  def invalidate(pid, modules) do
    case meta_of(pid) do
      nil ->
        []

      meta ->
        user = {pid, meta}

        Enum.reject(modules, fn module ->
          with_suspended([user], fn ->
            case classify(user, module) do
              c when c in [:safe, :gone] ->
                send(meta, {:int, {:old_code, module}})
                true

              _ ->
                false
            end
          end)
          |> tap(fn sent? -> if sent?, do: await_invalidated([meta], module) end)
        end)
    end
  end

  @doc """
  Puts old code back after a failed reload: `beam` is interpreted again
  (swapped in if the module is still interpreted) with exactly `breaks`.
  """
  @spec reinterpret_old(module(), String.t(), String.t(), binary(), [breakpoint()], keyword()) ::
          :ok | {:error, String.t()}
  def reinterpret_old(module, source, beam_path, beam, breaks, opts \\ []) do
    result =
      if interpreted?(module) do
        with {:ok, _} <- swap(module, source, beam_path, beam, [busy_timeout: 1_000] ++ opts), do: :ok
      else
        load(module, source, beam_path, beam, opts)
      end

    # Interpreted here even if a node failed to follow: the breakpoints
    # live here, so they go back.
    if interpreted?(module) do
      Enum.each(breakpoints(module), fn {line, _} -> delete_breakpoint(module, line) end)
      restore_breakpoints(module, breaks)
    end

    result
  end

  @doc "Stops interpreting `module` if no process has it in use (options: as `load/5`)."
  @spec uninterpret(module(), keyword()) :: :ok | {:error, :in_use}
  def uninterpret(module, opts \\ []) do
    users = users(module)

    with_suspended(users, fn ->
      if Enum.all?(users, &(classify(&1, module) in [:safe, :gone])) do
        forget_module(module, breakpoints(module), opts)
        :ok
      else
        {:error, :in_use}
      end
    end)
  end

  defp restore_breakpoints(module, breaks),
    do: Enum.each(breaks, fn {line, options} -> set_breakpoint(module, line, options) end)

  # The module was already dropped from the interpreter: put the old code
  # back so the session is as it was.
  defp roll_back(module, _source, nil, _breaks, message, _opts),
    do: message <> "; no old code to restore, #{inspect(module)} is no longer interpreted"

  defp roll_back(module, source, {old_path, old_beam}, breaks, message, opts) do
    result = load(module, source, old_path, old_beam, opts)
    if interpreted?(module), do: restore_breakpoints(module, breaks)

    case result do
      :ok -> message <> "; the old code was re-interpreted"
      {:error, again} -> message <> "; restoring the old code failed too: " <> again
    end
  end

  # `:int.nn/1` is meant to delete the module's breakpoints everywhere, but
  # the metas' handler of `{no_break, Module}` matches `{Mod, _}` against
  # `{{Mod, Line}, Options}` and removes nothing (OTP 25): live processes
  # would keep breaking at lines `:int.all_breaks/0` no longer shows.
  # Deleting each breakpoint first goes through the handler that works.
  # `:int.n/1` is `:int.nn/1` for this node; the other nodes are told with
  # a bound (`:int.nn/1` would wait forever for a node that hangs).
  defp forget_module(module, breaks, opts) do
    Enum.each(breaks, fn {line, _options} -> delete_breakpoint(module, line) end)
    :int.n(module)
    {nodes, timeout} = cluster(opts)

    for failure <- Cluster.uninterpret_remote(module, nodes, timeout),
        do: Logger.warning("debug_reload: could not stop interpreting #{failure}")

    :ok
  end

  @doc """
  Loads `beam` into the interpreter, and natively as its stub, here and on
  the other nodes, as `:int.ni/1` does, with every remote call bounded.

  Options: `:nodes` (default: every connected node), `:node_timeout`
  (ms per remote call, default 5000) and `:image`, a function returning
  the beam's `DebugReload.Interpreter.Image` built ahead (or nil).
  """
  @spec load(module(), String.t(), String.t(), binary(), keyword()) :: :ok | {:error, String.t()}
  def load(module, source, beam_path, beam, opts \\ []) do
    {nodes, timeout} = cluster(opts)
    image = Keyword.get(opts, :image, fn -> nil end)

    with :ok <- interpret_here(module, source, beam_path, beam, image) do
      case Cluster.interpret_remote(module, beam_path, beam, nodes, timeout) do
        :ok -> :ok
        {:error, message} -> {:error, "could not interpret #{inspect(module)} on #{message}"}
      end
    end
  end

  defp cluster(opts), do: {Cluster.nodes(opts), Keyword.get(opts, :node_timeout, 5_000)}

  defp interpret_here(module, source, beam_path, beam, image) do
    case Image.supported?() && image.() do
      %Image{module: ^module, binary: ^beam, native: native} = image when native != nil -> Image.load(image)
      _ -> int_i(module, source, beam_path, beam)
    end
  end

  defp int_i(module, source, beam_path, beam) do
    # :int prints its failures instead of returning them; keep them off the
    # debug adapter's stdout and put them in the error instead.
    {:ok, device} = StringIO.open("")
    previous = Process.group_leader()
    Process.group_leader(self(), device)

    result =
      try do
        :int.i({module, String.to_charlist(source), String.to_charlist(beam_path), beam})
      catch
        kind, reason -> {:caught, Exception.format_banner(kind, reason)}
      after
        Process.group_leader(self(), previous)
      end

    {_, output} = StringIO.contents(device)
    StringIO.close(device)

    case result do
      {:module, ^module} -> :ok
      {:caught, banner} -> {:error, "could not interpret #{inspect(module)}: #{banner}"}
      _ -> {:error, "could not interpret #{inspect(module)}: #{interpret_failure(output, source)}"}
    end
  end

  defp interpret_failure(output, source) do
    case String.trim(output) do
      "" -> if File.regular?(source), do: "the interpreter refused it", else: "#{source} does not exist"
      text -> text
    end
  end

  # -- users of a module ------------------------------------------------

  # {debugged pid, meta pid} of every live process registered as a user of
  # any of the module's databases: exactly those `:int.nn/1` would notify.
  defp users(module) do
    case iserver_state() do
      {:ok, db, procs} ->
        pids =
          case :ets.lookup(db, {module, :refs}) do
            [{_, mod_dbs}] -> Enum.flat_map(mod_dbs, &registered(db, &1))
            [] -> []
          end

        for pid <- Enum.uniq(pids),
            {^pid, meta, status, _info} <- procs,
            status != :exit,
            pid != self(),
            alive?(pid) and alive?(meta),
            do: {pid, meta}

      :error ->
        []
    end
  end

  defp registered(db, mod_db) do
    case :ets.lookup(db, mod_db) do
      [{_, pids}] -> pids
      [] -> []
    end
  end

  defp meta_of(pid) do
    case iserver_state() do
      {:ok, _db, procs} ->
        Enum.find_value(procs, fn
          {^pid, meta, status, _} when status != :exit -> meta
          _ -> nil
        end)

      :error ->
        nil
    end
  end

  # The interpreter server's table and processes. Its state is a record
  # private to the debugger application; recognise the layout or give up.
  defp iserver_state do
    case Process.whereis(:dbg_iserver) do
      nil ->
        :error

      _ ->
        case :sys.get_state(:dbg_iserver) do
          {:state, db, procs, _breaks, _auto, _stack, _subs} ->
            {:ok, db,
             for({:proc, pid, meta, _att, status, info, _exit, _fun} <- procs, do: {pid, meta, status, info})}

          other ->
            Logger.error(
              "debug_reload: unknown dbg_iserver state layout (#{inspect(elem(other, 0))}); " <>
                "processes cannot be moved to new code safely"
            )

            :error
        end
    end
  end

  # -- classification ---------------------------------------------------

  # Decides, with `pid` and `meta` suspended, what `{:old_code, module}` would
  # do to this meta: the same decision dbg_icmd makes when it receives it.
  defp classify({pid, meta}, module) do
    keys = [:current_function, :message_queue_len, :dictionary]

    with meta_info when is_list(meta_info) <- process_info(meta, keys),
         {:current_stacktrace, frames} <- process_info(pid, :current_stacktrace) do
      dict = meta_info[:dictionary]

      cond do
        meta_info[:message_queue_len] > 0 -> :busy
        dict[:trace_stack] == false -> :in_use
        Enum.any?(List.wrap(dict[:dbg_istk]), &frame_in?(&1, module)) -> :in_use
        idle_at_top_level?(meta_info, frames) -> :safe
        true -> paused_classification(meta_info, pid, module)
      end
    else
      _ -> :gone
    end
  end

  # The meta waits for a new call and the process is not inside any
  # interpreted call: call level 1, where :old_code only drops caches.
  defp idle_at_top_level?(meta_info, frames) do
    meta_info[:current_function] == {:dbg_ieval, :meta_loop, 3} and
      not Enum.any?(frames, fn frame -> elem(frame, 0) == :dbg_debugged end)
  end

  defp paused_classification(meta_info, pid, module) do
    waiting_for_command? = meta_info[:current_function] == {:dbg_icmd, :handle_cmd, 3}

    case {waiting_for_command?, break_location(pid)} do
      {true, {^module, _line}} -> :in_use
      {true, {_other, _line}} -> :safe
      _ -> :running
    end
  end

  defp break_location(pid) do
    Enum.find_value(:int.snapshot(), fn
      {^pid, _function, :break, {mod, line}} -> {mod, line}
      _ -> nil
    end)
  end

  defp frame_in?(frame, module) when is_tuple(frame) and tuple_size(frame) >= 3 do
    case elem(frame, 2) do
      {^module, _, _} -> true
      _ -> false
    end
  end

  defp frame_in?(_, _), do: false

  # -- helpers ----------------------------------------------------------

  # Interpreted processes on other nodes (`:int.ni/1` interprets
  # cluster-wide) are inspected over erpc, with a bound. They cannot be
  # suspended from here, so the check-then-swap window that suspension
  # closes for local processes stays open (microseconds) for remote ones.
  @remote_timeout 2_000

  defp alive?(pid) when node(pid) == node(), do: Process.alive?(pid)
  defp alive?(pid), do: remote(pid, :erlang, :is_process_alive, [pid]) == true

  defp process_info(pid, keys) when node(pid) == node(), do: Process.info(pid, keys)
  defp process_info(pid, keys), do: remote(pid, :erlang, :process_info, [pid, keys])

  defp remote(pid, m, f, a) do
    :erpc.call(node(pid), m, f, a, @remote_timeout)
  catch
    _, _ -> nil
  end

  defp with_suspended(users, fun) do
    suspended =
      users
      |> Enum.flat_map(fn {pid, meta} -> [pid, meta] end)
      |> Enum.uniq()
      |> Enum.filter(&suspend/1)

    try do
      fun.()
    after
      Enum.each(suspended, &:erlang.resume_process/1)
    end
  end

  defp suspend(pid) do
    pid != self() and node(pid) == node() and :erlang.suspend_process(pid)
  catch
    :error, :badarg -> false
  end

  # Waits (bounded) until each meta handled :old_code and dropped its cache,
  # so a caller that returns right after a reload already sees new code. A
  # meta whose process calls the module often may have cached the module's
  # newest database again by the time we look: that one is done too.
  defp await_invalidated([], _module), do: :ok

  defp await_invalidated(metas, module), do: await_invalidated(metas, module, newest_db(module), 500)

  defp await_invalidated([], _module, _newest, _), do: :ok
  defp await_invalidated(_metas, _module, _newest, 0), do: :ok

  defp await_invalidated(metas, module, newest, attempts) do
    pending =
      Enum.filter(metas, fn meta ->
        case process_info(meta, :dictionary) do
          {:dictionary, dict} -> stale_cache?(dict, module, newest)
          nil -> false
        end
      end)

    if pending != [] do
      Process.sleep(1)
      await_invalidated(pending, module, newest, attempts - 1)
    end
  end

  # A meta on another node than the interpreter server caches
  # `{server_node, database}` (dbg_ieval's db_ref/1).
  defp stale_cache?(dict, module, newest) do
    case List.keyfind(dict, {module, :db}, 0) do
      {_, ^newest} -> false
      {_, {_node, ^newest}} -> false
      {_, _older} -> true
      nil -> false
    end
  end

  # The database new calls of `module` get (dbg_iserver lists the newest first).
  defp newest_db(module) do
    with {:ok, db, _procs} <- iserver_state(),
         [{_, [newest | _]}] <- :ets.lookup(db, {module, :refs}) do
      newest
    else
      _ -> nil
    end
  end
end
