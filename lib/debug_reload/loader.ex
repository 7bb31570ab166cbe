defmodule DebugReload.Loader do
  @moduledoc """
  Applies the compiled result of one reload to the running system, all or
  nothing.

  The steps run in order, each recording how to undo what it did:

    1. suspend the processes to migrate (`:migrate`) with `:sys.suspend/1`;
    2. wait for processes running changed native modules to leave them
       (`:on_busy`);
    3. load native modules, here and on every connected node running them
       (`DebugReload.Cluster`);
    4. re-interpret interpreted modules (`DebugReload.Interpreter.swap/5`);
    5. run `:sys.change_code/5` in the processes to migrate;
    6. unload the modules whose sources were deleted;
    7. move the breakpoints;
    8. ask the batch's `commit_check`, if any, whether the reload may
       stand (for a planned compile: the compiler's checks of the new
       code, which ran meanwhile).

  If a step fails, the undo log runs backwards: old beams are loaded again
  (they are kept in memory until the reload commits), old code is
  re-interpreted with the breakpoints it had, migrated processes get their
  old state back, and every suspended process is resumed. The report then
  says what failed and that nothing changed.
  """

  require Logger

  alias DebugReload.{Beam, Breakpoints, Cluster, ExecutableLines, Guards, Interpreter, Migration, Patterns}
  alias DebugReload.Interpreter.Image

  defstruct entries: [],
            processes: [],
            warnings: [],
            planned: [],
            migrations: [],
            state: nil,
            breakpoints_us: 0,
            commit_check_us: 0,
            old_code_in_use: [],
            # the nodes besides this one that the reload applies to, and the
            # bound on each call to them: `nodes:` and `node_timeout:`
            cluster: []

  # The undo log lives in the process dictionary, not in the struct: a step
  # that raises half-way must not lose the undo entries of what it did.
  @undo_log {__MODULE__, :undo_log}

  @typedoc """
  `:breakpoints_us`: the time spent working out and moving breakpoints.
  `:commit_check_us`: the time spent waiting for the batch's `commit_check`.
  `:old_code_in_use`: natively reloaded modules whose old code some process
  still runs or holds funs of; it must stay until their next reload.
  """
  @type outcome :: %{
          entries: [DebugReload.Report.module_entry()],
          processes: [DebugReload.Report.process_entry()],
          warnings: [String.t()],
          planned: [Breakpoints.planned()],
          breakpoints_us: non_neg_integer(),
          commit_check_us: non_neg_integer(),
          old_code_in_use: [module()]
        }

  @typedoc """
  What to apply: the changed beams (`loads`), beams whose source is gone
  (`removed`), renamed modules (`new => old`), the old binaries of the
  modules being replaced (`module => {path, binary}`) and, optionally, a
  `commit_check` called once everything is in place: an error rolls the
  reload back.
  """
  @type batch :: %{
          required(:loads) => [Beam.info()],
          required(:removed) => [%{module: module(), path: String.t(), source: String.t() | nil}],
          required(:renames) => %{module() => module()},
          required(:old_binaries) => %{module() => {String.t(), binary()}},
          optional(:commit_check) => (() -> :ok | {:error, String.t()}) | nil
        }

  @steps [:suspend, :await_idle, :load_native, :interpret, :migrate, :unload, :breakpoints, :commit_check]

  @doc "Steps a test can make fail with the `:inject_fault` option."
  def steps, do: @steps

  @doc """
  Applies `batch`. Returns `{:ok, outcome, state}`, or `{:error, message,
  outcome, state}` with everything as it was before (the outcome then lists
  what was rolled back).

  Options: `:on_busy`, `:busy_timeout`, `:migrate`, `:migrate_extra`,
  `:nodes`, `:node_timeout` and, for tests, `:inject_fault` (a step name,
  or `{:interpret, module}`).
  """
  @spec apply(batch(), struct(), keyword()) ::
          {:ok, outcome(), struct()} | {:error, String.t(), outcome(), struct()}
  def apply(batch, state, opts) do
    cluster = [nodes: Cluster.nodes(opts), node_timeout: Keyword.get(opts, :node_timeout, 5_000)]
    tx = %__MODULE__{state: state, cluster: cluster}
    Process.put(@undo_log, [])
    {to_interpret, to_native, guard_warnings} = split(batch, state)
    tx = %{tx | warnings: guard_warnings}

    result =
      Enum.reduce_while(
        [
          &suspend_migrations(&1, batch, opts),
          &await_native_idle(&1, to_native, opts),
          &load_native(&1, to_native, batch, opts),
          &interpret_all(&1, to_interpret, batch, opts),
          &run_migrations(&1, opts),
          &unload_removed(&1, batch, opts),
          &move_breakpoints(&1, opts),
          &check_commit(&1, batch, opts)
        ],
        {:ok, tx},
        fn step, {:ok, tx} ->
          case safely(step, tx) do
            {:ok, tx} -> {:cont, {:ok, tx}}
            {:error, message, tx} -> {:halt, {:error, message, tx}}
          end
        end
      )

    try do
      finish(result, batch, state)
    after
      Process.delete(@undo_log)
    end
  end

  defp finish(result, batch, state) do
    case result do
      {:ok, tx} ->
        resume_migrations(tx)
        {:ok, outcome(tx), tx.state}

      {:error, message, tx} ->
        restore_failures = undo(tx) ++ Migration.restore_states(tx.migrations)
        resume_migrations(tx)
        # Everything was undone, so the manager's own view goes back too.
        {:error, message, rolled_back_outcome(tx, batch, restore_failures), state}
    end
  end

  # A raise anywhere in a step (a bug, an injected fault, a node going
  # away) must still roll back what earlier steps did.
  defp safely(step, tx) do
    step.(tx)
  rescue
    e -> {:error, Exception.message(e), tx}
  catch
    kind, reason -> {:error, Exception.format_banner(kind, reason), tx}
  end

  defp fault!(opts, step) do
    if Keyword.get(opts, :inject_fault) == step, do: raise("injected fault at step #{inspect(step)}")
    :ok
  end

  # -- which modules go where --------------------------------------------

  defp split(batch, state) do
    Enum.reduce(batch.loads, {[], [], []}, fn info, {interp, native, warnings} ->
      wants_interpreter? =
        Interpreter.interpreted?(info.module) or Map.has_key?(batch.renames, info.module) or
          Map.has_key?(state.tombstones, info.module) or
          (new_module?(info, state) and Patterns.match?(state.patterns, info.module))

      case wants_interpreter? && Guards.interpretable(info.binary) do
        false ->
          {interp, [info | native], warnings}

        :ok ->
          {[info | interp], native, warnings}

        {:native, why} ->
          {interp, [info | native], ["#{inspect(info.module)} #{why}; reloaded natively" | warnings]}
      end
    end)
    |> then(fn {i, n, w} -> {Enum.reverse(i), Enum.reverse(n), Enum.reverse(w)} end)
  end

  defp new_module?(info, state), do: not Map.has_key?(state.beams, info.path)

  # -- 1. migrations: suspend --------------------------------------------

  defp suspend_migrations(tx, batch, opts) do
    modules = MapSet.new(batch.loads, & &1.module)
    fault!(opts, :suspend)

    case Migration.suspend(Keyword.get(opts, :migrate, []), modules) do
      {:ok, migrations, warnings} -> {:ok, %{tx | migrations: migrations, warnings: tx.warnings ++ warnings}}
      {:error, message} -> {:error, message, tx}
    end
  end

  defp resume_migrations(tx), do: Migration.resume(tx.migrations)

  # -- 2. processes inside changed native modules ------------------------

  defp await_native_idle(tx, to_native, opts) do
    fault!(opts, :await_idle)
    suspended = MapSet.new(tx.migrations, & &1.pid)
    modules = for info <- to_native, :code.is_loaded(info.module) != false, do: info.module
    timeout = Keyword.get(opts, :busy_timeout, 2_000)

    case Guards.await_native_idle(modules, suspended, timeout) do
      :ok ->
        {:ok, tx}

      {:busy, busy} ->
        describe = Guards.describe_busy(busy)

        case Keyword.get(opts, :on_busy, :wait) do
          :proceed ->
            {:ok,
             %{
               tx
               | warnings: tx.warnings ++ ["reloaded while busy: #{describe}; they finish on the old code"]
             }}

          :cancel ->
            {:error, "reload cancelled (on_busy: :cancel): #{describe}", tx}

          :wait ->
            {:error, {:deferred, "reload deferred until they leave: #{describe}"}, tx}
        end
    end
  end

  # -- 3. native loads ----------------------------------------------------

  defp load_native(tx, [], _batch, opts) do
    fault!(opts, :load_native)
    {:ok, tx}
  end

  defp load_native(tx, to_native, batch, opts) do
    {loaded, unloaded} = Enum.split_with(to_native, &(:code.is_loaded(&1.module) != false))
    new = Enum.filter(unloaded, &new_module?(&1, tx.state))

    on_disk =
      for info <- unloaded, not new_module?(info, tx.state) do
        entry(info, :on_disk, "not loaded yet; the next call loads the new beam")
      end

    # The version before the loaded one goes now; funs of it that some
    # process still holds stop working, and the report says so.
    stale_funs =
      loaded |> Enum.map(& &1.module) |> Enum.filter(&:erlang.check_old_code/1) |> Guards.fun_holders()

    case Enum.reject(loaded, &:code.soft_purge(&1.module)) do
      [] ->
        tx = %{tx | entries: tx.entries ++ on_disk, warnings: tx.warnings ++ purged_fun_warnings(stale_funs)}
        install_native(tx, loaded ++ new, batch, opts)

      held ->
        holders = Enum.map(held, &{&1.module, Guards.old_code_holders(&1.module)})
        {:error, "old code of #{Guards.describe_holders(holders)} is still running; nothing was purged", tx}
    end
  end

  defp purged_fun_warnings(stale_funs) do
    for {module, [_ | _] = holders} <- stale_funs do
      "#{inspect(module)}: the version before the running one was purged; funs of it that " <>
        "#{Guards.describe_pids(holders)} still hold raise BadFunctionError if called"
    end
  end

  defp install_native(tx, infos, batch, opts) do
    interpreted_before = for info <- infos, Interpreter.interpreted?(info.module), do: info.module

    # A module that stops being interpretable leaves the interpreter first.
    tx =
      Enum.reduce(interpreted_before, tx, fn module, tx ->
        breaks = Interpreter.breakpoints(module)
        :ok = Interpreter.uninterpret(module, tx.cluster)
        record_undo({:reinterpret, module, Map.get(tx.state.interpreted, module), breaks})
        tx
      end)

    nodes = tx.cluster[:nodes]

    Enum.each(infos, &record_undo({:native, &1.module, old_code(&1, batch, tx.state)}))

    fault!(opts, :load_native)

    new = for info <- infos, new_module?(info, tx.state), into: MapSet.new(), do: info.module

    case Cluster.load(infos, nodes, tx.cluster[:node_timeout], new) do
      {:ok, warnings} ->
        entries =
          Enum.map(infos, fn info ->
            cond do
              new_module?(info, tx.state) ->
                entry(info, :loaded, "new module")

              info.module in interpreted_before ->
                entry(info, :reloaded, "no longer interpretable; loaded natively")

              true ->
                entry(info, :reloaded, "beam changed")
            end
          end)

        in_use = old_code_in_use(infos)

        {:ok,
         %{
           tx
           | entries: tx.entries ++ entries,
             warnings: tx.warnings ++ warnings ++ in_use_warnings(in_use),
             old_code_in_use: Map.keys(in_use)
         }}

      {:error, message} ->
        {:error, message, tx}
    end
  end

  defp old_code(info, batch, state) do
    cond do
      new_module?(info, state) -> :absent
      old = Map.get(batch.old_binaries, info.module) -> old
      entry = Map.get(state.interpreted, info.module) -> {entry.path, entry.binary}
      true -> :unknown
    end
  end

  # Processes still running the replaced code, or holding funs it made:
  # they keep working until the next reload of the module purges that code
  # (a held fun then raises :badfun; OTP 25's purge checks do not see funs),
  # so they are named now, and the code is left in place until then.
  defp old_code_in_use(infos) do
    fun_holders = infos |> Enum.map(& &1.module) |> Guards.fun_holders()

    for info <- infos,
        holders = Enum.uniq(Guards.old_code_holders(info.module) ++ fun_holders[info.module]),
        holders != [],
        into: %{},
        do: {info.module, holders}
  end

  defp in_use_warnings(in_use) do
    for {module, holders} <- in_use do
      "#{inspect(module)}: #{Guards.describe_pids(holders)} still run code or hold funs of the old version; " <>
        "they keep working until #{inspect(module)} is reloaded again"
    end
  end

  # -- 4. re-interpretation -----------------------------------------------

  # Where a module's breakpoints go depends only on its old and new code
  # and text, not on the interpreter: it is worked out in a task per module
  # while the interpreter loads the modules one after another.
  defp interpret_all(tx, to_interpret, batch, opts) do
    planned = Enum.map(to_interpret, &{&1, carry_of(&1, batch, tx.state)})
    # First, for the swaps wait on it and the carries do not.
    stubs = start_stubs(planned)
    carries = Map.new(planned, fn {info, carry} -> {info.module, start_carry(info, carry)} end)

    try do
      Enum.reduce_while(to_interpret, {:ok, tx}, fn info, {:ok, tx} ->
        case interpret(tx, info, batch, {carries[info.module], stubs}, opts) do
          {:ok, tx} -> {:cont, {:ok, tx}}
          {:error, message, tx} -> {:halt, {:error, message, tx}}
        end
      end)
      |> tap(fn _ -> fault!(opts, :interpret) end)
    after
      # Whatever happened, the stubs are in place (or not) before the undo
      # log may need to put the old ones back.
      await_stubs(stubs)
      forget_stubs(stubs)

      Enum.each(carries, fn {_module, carry} ->
        Task.shutdown(carry.task, :brutal_kill)
        forget_image(carry)
      end)
    end
  end

  # The new native stubs of the modules interpreted now, loaded at once
  # beside the first swaps (see `Image.load_stubs/1`). A module whose old
  # code is not known has no way back, so its stub loads with its swap.
  defp start_stubs(planned) do
    staged = for {info, %{staged?: true, old: old}} <- planned, do: {info, old}

    if staged == [] do
      nil
    else
      record_undo({:stubs, Enum.map(staged, fn {info, old} -> {info.module, old} end)})
      modules = for {info, _old} <- staged, do: {info.module, info.path, info.binary}

      %{
        task: Task.async(fn -> Image.load_stubs(modules) end),
        modules: MapSet.new(staged, fn {info, _old} -> info.module end)
      }
    end
  end

  defp await_stubs(nil), do: nil

  defp await_stubs(%{task: task}) do
    case Process.get({:stubs, task.ref}) do
      nil ->
        result = Task.await(task, :infinity)
        Process.put({:stubs, task.ref}, result)
        result

      result ->
        result
    end
  end

  defp forget_stubs(nil), do: :ok
  defp forget_stubs(%{task: task}), do: Process.delete({:stubs, task.ref})

  # A staged module's image loads only its database, once its stub is in;
  # the interpreter's own load (no image) waits for the stub all the same,
  # or the two loads would race.
  defp staged_image(image, module, stubs) do
    if stubs != nil and MapSet.member?(stubs.modules, module) and await_stubs(stubs) == :ok and
         image != nil,
       do: %{image | native: :loaded},
       else: image
  end

  # What a module's carry starts from, read before anything is loaded.
  defp carry_of(info, batch, state) do
    renamed_from = Map.get(batch.renames, info.module)
    previous = renamed_from || info.module
    old = Map.get(state.interpreted, previous) || interpreted_since(previous, info, batch)
    tombstone = Map.get(state.tombstones, info.module)
    breaks = tombstone || Interpreter.breakpoints(previous)
    origin = if(tombstone, do: {:restored, info.module}, else: renamed_from && {:renamed, renamed_from})
    # Without a text of its own (interpreted since the manager last
    # listed the interpreter's modules, or from a beam that was not the one
    # on disk), the interpreter's copy is the text the breakpoints are on.
    old_text =
      Map.get(state.texts, (old && old.source) || info.source) || Interpreter.interpreted_text(previous)

    %{
      old: old,
      old_text: old_text,
      breaks: breaks,
      origin: origin,
      tombstone: tombstone,
      renamed_from: renamed_from,
      # Its new native stub loads with the others' (see start_stubs/1).
      staged?: match?(%{binary: _}, old) and Interpreter.interpreted?(info.module) and Image.supported?()
    }
  end

  defp start_carry(info, carry) do
    %{old: old, old_text: old_text, breaks: breaks, origin: origin, staged?: staged?} = carry
    loader = self()
    image = make_ref()
    # A staged module's image needs no native stub of its own.
    task = Task.async(fn -> carried(info, {old, old_text}, breaks, origin, {loader, image, not staged?}) end)
    Map.merge(carry, %{task: task, image: image})
  end

  # A module interpreted since the manager last listed the interpreter's
  # modules has no entry yet: the beam the compile replaced, read before
  # it ran while it was the loaded code, is its way back.
  defp interpreted_since(module, info, batch) do
    with {path, binary} <- Map.get(batch.old_binaries, module),
         true <- Interpreter.interpreted?(module) do
      interpreted_entry(%{source: Beam.loaded_source(module) || info.source, binary: binary, path: path})
    else
      _ -> nil
    end
  end

  # Never raises (a raise would take the linked manager down): a failure is
  # returned and raised again by the reload, which then rolls back. The
  # module's interpreter image is sent first, as soon as it is built, for
  # the interpreter is waiting for it.
  defp carried(info, {old, old_text}, breaks, origin, {loader, image_ref, native?}) do
    started = now()
    new_text = read_text(info.source)
    forms = ExecutableLines.abstract_code(info.binary)
    send(loader, {image_ref, image(info, forms, new_text, native?)})
    # Executable lines only matter to breakpoints: a module without any
    # keeps its beam and works them out if one is set before its next edit.
    {old, new_entry} =
      if breaks == [], do: {old, interpreted_entry(info)}, else: with_statements(old, info, forms)

    edit = %{
      old_text: old_text,
      new_text: new_text,
      old_statements: (old && old.statements) || [],
      new_statements: new_entry.statements
    }

    moved = Breakpoints.plan(info.module, info.source, edit, breaks, origin)
    {:ok, %{new_text: new_text, new_entry: new_entry, moved: moved, us: now() - started}}
  rescue
    e -> {:raised, e, __STACKTRACE__}
  end

  defp image(info, {:ok, forms}, text, native?) do
    case Image.build(info.module, info.source, info.path, info.binary, forms, text, native?) do
      {:ok, image} -> image
      {:error, _} -> nil
    end
  rescue
    _ -> nil
  end

  defp image(_info, {:error, _}, _text, _native?), do: nil

  # The image the carry task sends, once: nil if the task died first (the
  # interpreter then builds its own).
  defp await_image(%{task: task, image: ref}) do
    case Process.get({:image, ref}) do
      {:awaited, image} ->
        image

      nil ->
        monitor = Process.monitor(task.pid)

        image =
          receive do
            {^ref, image} -> image
            {:DOWN, ^monitor, :process, _, _} -> nil
          end

        Process.demonitor(monitor, [:flush])
        Process.put({:image, ref}, {:awaited, image})
        image
    end
  end

  defp forget_image(%{image: ref}) do
    Process.delete({:image, ref})

    receive do
      {^ref, _image} -> :ok
    after
      0 -> :ok
    end
  end

  defp await_carry(%{task: task}) do
    case Task.await(task, :infinity) do
      {:ok, carried} -> carried
      {:raised, e, stacktrace} -> reraise e, stacktrace
    end
  end

  defp interpret(tx, info, batch, {carry, stubs}, opts) do
    state = tx.state
    was_interpreted? = Interpreter.interpreted?(info.module)
    %{old: old, tombstone: tombstone, renamed_from: renamed_from} = carry
    image = fn -> carry |> await_image() |> staged_image(info.module, stubs) end

    if Keyword.get(opts, :inject_fault) == {:interpret, info.module},
      do: raise("injected fault while interpreting #{inspect(info.module)}")

    result =
      if was_interpreted? do
        Interpreter.swap(
          info.module,
          info.source,
          info.path,
          info.binary,
          [
            busy_timeout: Keyword.get(opts, :busy_timeout, 2_000),
            on_busy: Keyword.get(opts, :on_busy, :wait),
            rollback: old && {old.path, old.binary},
            image: image
          ] ++ tx.cluster
        )
      else
        with :ok <-
               Interpreter.load(
                 info.module,
                 info.source,
                 info.path,
                 info.binary,
                 [image: image] ++ tx.cluster
               ),
             do: {:ok, %{mode: :new, pending: []}}
      end

    case result do
      {:ok, swap} ->
        undo =
          if was_interpreted?,
            do: {:reinterpret, info.module, old, Interpreter.breakpoints(info.module)},
            else: {:uninterpret, info.module, old_code(info, batch, state)}

        record_undo(undo)
        %{new_text: new_text, new_entry: new_entry, moved: moved, us: carry_us} = await_carry(carry)

        state =
          state
          |> put_in([Access.key(:interpreted), info.module], new_entry)
          |> put_in([Access.key(:texts), info.source], new_text)
          |> Map.update!(:tombstones, &Map.delete(&1, info.module))
          |> add_pending(swap.pending, info.module)

        reason =
          cond do
            was_interpreted? -> "beam changed (#{swap.mode} swap)"
            tombstone -> "its file came back; interpreted again as before its deletion"
            renamed_from -> "renamed from #{inspect(renamed_from)}"
            true -> "new module matching the interpret patterns"
          end

        action = if was_interpreted?, do: :reinterpreted, else: :interpreted

        {:ok,
         %{
           tx
           | state: state,
             entries: tx.entries ++ [entry(info, action, reason)],
             processes: tx.processes ++ process_entries(swap.pending, info.module),
             planned: tx.planned ++ moved,
             breakpoints_us: tx.breakpoints_us + carry_us
         }}

      {:error, {:busy, pids}} ->
        describe = Guards.describe_pids(pids)

        if Keyword.get(opts, :on_busy, :wait) == :cancel,
          do:
            {:error, "reload cancelled (on_busy: :cancel): #{describe} running in #{inspect(info.module)}",
             tx},
          else: {:error, {:deferred, "reload deferred: #{describe} running in #{inspect(info.module)}"}, tx}

      {:error, message} ->
        {:error, "#{inspect(info.module)}: #{message}", tx}
    end
  end

  @doc """
  What the manager remembers about an interpreted module. Its executable
  statements are worked out when a breakpoint needs them (`nil` until then).
  """
  @spec interpreted_entry(Beam.info()) :: map()
  def interpreted_entry(info),
    do: %{source: info.source, binary: info.binary, path: info.path, statements: nil}

  defp with_statements(old, info, forms) do
    old = old && %{old | statements: old.statements || statements(ExecutableLines.abstract_code(old.binary))}
    {old, %{interpreted_entry(info) | statements: statements(forms)}}
  end

  defp statements({:ok, forms}), do: ExecutableLines.statements_of(forms)
  defp statements({:error, _}), do: []

  defp add_pending(state, [], _module), do: state

  defp add_pending(state, pending, module) do
    Enum.reduce(pending, state, fn {pid, _}, state ->
      update_in(state.pending, &Map.update(&1, pid, [module], fn mods -> Enum.uniq([module | mods]) end))
    end)
  end

  defp process_entries(pending, module) do
    for {pid, reason} <- pending do
      %{pid: pid, module: module, status: :paused_on_old_code, detail: pending_detail(reason, module)}
    end
  end

  defp pending_detail(:in_use, module),
    do:
      "#{inspect(module)} is on its interpreted stack; it finishes that call on the old code, then runs the new code"

  defp pending_detail(_busy, module),
    do: "kept running #{inspect(module)} past the busy timeout; it moves to the new code when it next returns"

  # -- 5. migrations: code_change -------------------------------------------

  defp run_migrations(tx, opts) do
    fault!(opts, :migrate)

    case Migration.change_code(tx.migrations, Keyword.get(opts, :migrate_extra, [])) do
      {:ok, migrations, entries} ->
        {:ok, %{tx | migrations: migrations, processes: tx.processes ++ entries}}

      {:error, message, migrations, entries} ->
        {:error, message, %{tx | migrations: migrations, processes: tx.processes ++ entries}}
    end
  end

  # -- 6. deleted modules ---------------------------------------------------

  defp unload_removed(tx, batch, opts) do
    fault!(opts, :unload)

    Enum.reduce(batch.removed, {:ok, tx}, fn %{module: module} = info, {:ok, tx} ->
      was_interpreted? = Interpreter.interpreted?(module)
      breaks = if was_interpreted?, do: Interpreter.breakpoints(module), else: []
      old = Map.get(tx.state.interpreted, module)

      state =
        if was_interpreted?,
          do: Map.update!(tx.state, :tombstones, &Map.put(&1, module, breaks)),
          else: tx.state

      in_use =
        (was_interpreted? and Interpreter.uninterpret(module, tx.cluster) == {:error, :in_use}) or
          (:code.is_loaded(module) != false and not purge_deleted(module))

      undo =
        {:restore_deleted, module, was_interpreted? && old, breaks,
         Map.get(batch.old_binaries, module, :unknown)}

      record_undo(undo)
      tx = %{tx | state: state}

      if in_use do
        {:ok,
         %{
           tx
           | entries: tx.entries ++ [entry(info, :deleted, "source deleted; still in use, so not purged")],
             warnings: tx.warnings ++ ["#{inspect(module)} was deleted but is still in use; it stays loaded"]
         }}
      else
        {:ok, %{tx | entries: tx.entries ++ [entry(info, :deleted, "source deleted; purged")]}}
      end
    end)
  end

  defp purge_deleted(module) do
    :code.soft_purge(module) and (:code.delete(module) or true) and :code.soft_purge(module)
  end

  # -- 7. breakpoints ---------------------------------------------------------

  defp move_breakpoints(tx, opts) do
    started = now()
    modules = tx.planned |> Enum.flat_map(&[&1.module, &1.from_module]) |> Enum.uniq()
    before = for module <- modules, do: {module, Interpreter.breakpoints(module)}
    record_undo({:breakpoints, before})
    fault!(opts, :breakpoints)
    Breakpoints.apply_plan(tx.planned)
    {:ok, %{tx | breakpoints_us: tx.breakpoints_us + (now() - started)}}
  end

  # -- 8. the last word ----------------------------------------------------

  # Called last, so that whatever it waits for runs while the load does;
  # everything is in place, and still undone on an error.
  defp check_commit(tx, batch, opts) do
    fault!(opts, :commit_check)

    case Map.get(batch, :commit_check) do
      nil ->
        {:ok, tx}

      check ->
        started = now()

        case check.() do
          :ok -> {:ok, %{tx | commit_check_us: now() - started}}
          {:error, message} -> {:error, message, %{tx | commit_check_us: now() - started}}
        end
    end
  end

  defp now, do: System.monotonic_time(:microsecond)

  # -- rollback ---------------------------------------------------------------

  defp record_undo(action), do: Process.put(@undo_log, [action | Process.get(@undo_log, [])])

  # Runs the undo log newest first. Returns what could not be restored.
  defp undo(tx) do
    Enum.flat_map(Process.get(@undo_log, []), fn action ->
      try do
        undo_action(action, tx)
      rescue
        e -> ["could not undo #{inspect(elem(action, 0))}: #{Exception.message(e)}"]
      end
    end)
  end

  defp undo_action({:breakpoints, before}, _tx) do
    Enum.each(before, fn {module, breaks} ->
      Enum.each(Interpreter.breakpoints(module), fn {line, _} ->
        Interpreter.delete_breakpoint(module, line)
      end)

      Enum.each(breaks, fn {line, options} -> Interpreter.set_breakpoint(module, line, options) end)
    end)

    []
  end

  defp undo_action({:native, module, old}, tx),
    do: Cluster.restore(module, old, tx.cluster[:nodes], tx.cluster[:node_timeout])

  defp undo_action({:reinterpret, module, nil, _breaks}, _tx),
    do: ["#{inspect(module)}: no earlier interpreted code to restore"]

  defp undo_action({:reinterpret, module, old, breaks}, tx) do
    case Interpreter.reinterpret_old(module, old.source, old.path, old.binary, breaks, tx.cluster) do
      :ok -> []
      {:error, message} -> ["#{inspect(module)}: #{message}"]
    end
  end

  # A stub whose module's swap was undone is old already; the others
  # (their swap never came) get theirs back.
  defp undo_action({:stubs, staged}, tx) do
    Enum.flat_map(staged, fn {module, old} ->
      cond do
        loaded_md5(module) == :code.module_md5(old.binary) ->
          []

        Interpreter.interpreted?(module) ->
          case Image.load_stubs([{module, old.path, old.binary}]) do
            :ok -> []
            {:error, message} -> [message]
          end

        true ->
          Cluster.restore(module, {old.path, old.binary}, [], tx.cluster[:node_timeout])
      end
    end)
  end

  defp undo_action({:uninterpret, module, old}, tx) do
    _ = Interpreter.uninterpret(module, tx.cluster)
    Cluster.restore(module, old, [], tx.cluster[:node_timeout])
  end

  defp undo_action({:restore_deleted, module, old_interpreted, breaks, old_binary}, tx) do
    if old_interpreted do
      undo_action({:reinterpret, module, old_interpreted, breaks}, tx)
    else
      Cluster.restore(module, old_binary, [], tx.cluster[:node_timeout])
    end
  end

  defp loaded_md5(module) do
    :erlang.get_module_info(module, :md5)
  rescue
    ArgumentError -> nil
  end

  defp outcome(tx) do
    %{
      entries: tx.entries,
      processes: tx.processes,
      warnings: tx.warnings,
      planned: tx.planned,
      breakpoints_us: tx.breakpoints_us,
      commit_check_us: tx.commit_check_us,
      old_code_in_use: tx.old_code_in_use
    }
  end

  defp rolled_back_outcome(tx, batch, restore_failures) do
    entries =
      for info <- batch.loads,
          do: entry(info, :rolled_back, "the reload failed; the code that ran before is back")

    %{
      entries: entries,
      processes: Enum.filter(tx.processes, &(&1.status in [:migration_failed])),
      warnings: tx.warnings ++ restore_failures,
      planned: [],
      breakpoints_us: tx.breakpoints_us,
      commit_check_us: tx.commit_check_us,
      old_code_in_use: []
    }
  end

  defp entry(info, action, reason),
    do: %{module: info.module, source: info[:source], action: action, reason: reason}

  defp read_text(nil), do: nil

  defp read_text(path) do
    case File.read(path) do
      {:ok, bytes} -> utf8(bytes)
      _ -> nil
    end
  end

  @doc "Source bytes as UTF-8 (Erlang sources may be Latin-1), or nil."
  @spec utf8(binary()) :: String.t() | nil
  def utf8(bytes) do
    cond do
      String.valid?(bytes) -> bytes
      is_binary(text = :unicode.characters_to_binary(bytes, :latin1)) -> text
      true -> nil
    end
  end
end
