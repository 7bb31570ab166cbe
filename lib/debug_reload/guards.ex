defmodule DebugReload.Guards do
  @moduledoc """
  The checks that keep a reload from doing harm.

    * Modules that cannot be interpreted faithfully are loaded natively:
      without debug info there is no abstract code to interpret, and a
      module with `@on_load` (typically one loading a NIF) must run its
      hook in native code.
    * Native code is not swapped under a process running inside it: we wait
      (bounded) for such processes to leave.
    * Processes still holding old code or funs are named before anything
      would purge them.
    * Edits the running system cannot take (the project's `mix.exs`, its
      config, its dependencies) are rejected with "restart needed".
  """

  alias DebugReload.{ExecutableLines, Native}

  @poll_ms 5

  @doc "`:ok`, or `{:native, why}` when the beam must not be interpreted."
  @spec interpretable(binary()) :: :ok | {:native, String.t()}
  def interpretable(beam) do
    case on_load(beam) do
      {:ok, false} -> :ok
      {:ok, true} -> {:native, "has @on_load (it may load a NIF), so it is not interpreted"}
      :error -> {:native, "has no debug_info, so it cannot be interpreted"}
    end
  end

  # Elixir's own debug info names the module's attributes, @on_load
  # included: reading it costs far less than the Erlang abstract code its
  # backend would build (`:int` builds that once more anyway).
  defp on_load(beam) do
    case :beam_lib.chunks(beam, [:debug_info]) do
      {:ok, {_, [debug_info: {:debug_info_v1, :elixir_erl, {:elixir_v1, %{attributes: attributes}, _}}]}}
      when is_list(attributes) ->
        {:ok, Keyword.has_key?(attributes, :on_load)}

      _other_backend ->
        with {:ok, forms} <- ExecutableLines.abstract_code(beam),
             do: {:ok, Enum.any?(forms, &match?({:attribute, _, :on_load, _}, &1))},
             else: (_ -> :error)
    end
  end

  @doc """
  Waits up to `timeout` ms until no process (other than `except`) is
  running inside one of `modules` natively. Returns the busy processes
  when they do not leave in time.
  """
  @spec await_native_idle([module()], MapSet.t(pid()), non_neg_integer()) ::
          :ok | {:busy, [{pid(), module()}]}
  def await_native_idle([], _except, _timeout), do: :ok

  def await_native_idle(modules, except, timeout) do
    deadline = System.monotonic_time(:millisecond) + timeout
    wait_idle(MapSet.new(modules), except, deadline)
  end

  defp wait_idle(modules, except, deadline) do
    case running_inside(modules, except) do
      [] ->
        :ok

      busy ->
        if System.monotonic_time(:millisecond) >= deadline do
          {:busy, busy}
        else
          Process.sleep(@poll_ms)
          wait_idle(modules, except, deadline)
        end
    end
  end

  # A process is inside a module when a frame of its native stack is.
  # Interpreted modules run in the interpreter's own modules, so this only
  # sees native execution, which is what a native load would disturb. The
  # whole stack is read: the current stacktrace stops at `backtrace_depth`
  # frames and would miss a caller further down.
  defp running_inside(modules, except) do
    by_frame = Map.new(modules, &{frame_marker(&1), &1})
    pattern = :binary.compile_pattern(Map.keys(by_frame))

    for pid <- Process.list(),
        pid != self(),
        not MapSet.member?(except, pid),
        {:backtrace, backtrace} <- [Process.info(pid, :backtrace)],
        {at, length} <- [:binary.match(backtrace, pattern)],
        do: {pid, Map.fetch!(by_frame, binary_part(backtrace, at, length))}
  end

  # A backtrace names a frame's function as `('Elixir.Foo':bar/1 + 24)`.
  defp frame_marker(module), do: "(" <> IO.chardata_to_string(:io_lib.write_atom(module)) <> ":"

  @doc """
  Processes holding funs created by the code of each of `modules`.

  OTP 25's `:erlang.check_process_code/2` no longer counts funs, yet a fun
  whose code is purged raises `:badfun` when called. The stack (where a
  GenServer's state and a closure's variables live) names every fun it
  holds, so that is where we look.
  """
  @spec fun_holders([module()]) :: %{module() => [pid()]}
  def fun_holders([]), do: %{}

  def fun_holders(modules) do
    # One backtrace per process for the whole batch: taking them is the cost.
    backtraces =
      for pid <- Process.list(),
          pid != self(),
          {:backtrace, backtrace} <- [Process.info(pid, :backtrace)],
          do: {pid, backtrace}

    Map.new(modules, fn module ->
      marker = "#Fun<#{module}."
      {module, for({pid, backtrace} <- backtraces, String.contains?(backtrace, marker), do: pid)}
    end)
  end

  @doc "Processes executing old code of `module`."
  @spec old_code_holders(module()) :: [pid()]
  def old_code_holders(module) do
    if :erlang.check_old_code(module) do
      for pid <- Process.list(), check_process_code(pid, module), do: pid
    else
      []
    end
  end

  defp check_process_code(pid, module) do
    :erlang.check_process_code(pid, module)
  catch
    :error, _ -> false
  end

  @spec describe_busy([{pid(), module()}]) :: String.t()
  def describe_busy(busy) do
    busy
    |> Enum.group_by(&elem(&1, 1), &elem(&1, 0))
    |> Enum.map_join("; ", fn {module, pids} -> "#{describe_pids(pids)} running in #{inspect(module)}" end)
  end

  @spec describe_holders([{module(), [pid()]}]) :: String.t()
  def describe_holders(holders) do
    Enum.map_join(holders, "; ", fn {module, pids} ->
      "#{inspect(module)} (held by #{describe_pids(pids)})"
    end)
  end

  @doc "Pids with their registered names, for messages."
  @spec describe_pids([pid()]) :: String.t()
  def describe_pids(pids) do
    Enum.map_join(pids, ", ", fn pid ->
      case Process.info(pid, :registered_name) do
        {:registered_name, name} when is_atom(name) and name != [] -> "#{inspect(pid)} (#{inspect(name)})"
        _ -> inspect(pid)
      end
    end)
  end

  @doc """
  Files whose change the running system cannot take, relative to `root`:
  the project's (and umbrella apps') `mix.exs`, `mix.lock`, `config/`
  scripts, the `mix.exs` of fetched dependencies and that of each `path:`
  dependency in `dependency_roots`. Returns their digests.
  """
  @spec restart_files(String.t(), [String.t()]) :: %{String.t() => String.t()}
  def restart_files(root, dependency_roots \\ []) do
    apps = subdirectories(Path.join(root, "apps"))
    deps = subdirectories(Path.join(root, "deps"))

    # Checked on every reload: one native call, whose digests of files
    # that did not change come from their metadata alone.
    roots =
      [Path.join(root, "mix.exs"), Path.join(root, "mix.lock"), Path.join(root, "config")] ++
        Enum.flat_map(apps, &[Path.join(&1, "mix.exs"), Path.join(&1, "config")]) ++
        Enum.map(deps ++ dependency_roots, &Path.join(&1, "mix.exs"))

    {digests, _errors} = Native.scan_sources(roots, [".exs", "mix.lock"])
    digests
  end

  defp subdirectories(dir) do
    case File.ls(dir) do
      {:ok, names} -> for name <- names, not String.starts_with?(name, "."), do: Path.join(dir, name)
      {:error, _} -> []
    end
  end

  @doc "A restart-needed reason when `before` and `now` differ, else nil."
  @spec restart_reason(%{String.t() => binary()}, %{String.t() => binary()}, String.t()) :: String.t() | nil
  def restart_reason(before, now, root) do
    changed =
      for path <- Enum.uniq(Map.keys(before) ++ Map.keys(now)),
          Map.get(before, path) != Map.get(now, path),
          do: Path.relative_to(path, root)

    case Enum.sort(changed) do
      [] ->
        nil

      files ->
        "restart needed: #{Enum.join(files, ", ")} changed; project configuration and dependencies " <>
          "are read when the VM starts, so the running session cannot take this edit " <>
          "(undo it to keep reloading, or restart the debug session)"
    end
  end
end
