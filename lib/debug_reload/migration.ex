defmodule DebugReload.Migration do
  @moduledoc """
  OTP's code change path for the processes listed in `:migrate`.

  A listed process (a pid or a registered name) whose callback module is
  being reloaded is suspended with `:sys.suspend/2` before anything loads,
  gets `:sys.change_code/5` (its module's `code_change/3`) once the new
  code is in, and is resumed. Its state from before is kept until the
  reload commits: if `code_change/3` fails, or anything else in the reload
  does, the process gets that state back with the old code.
  """

  @sys_timeout 5_000

  @type t :: %{
          pid: pid(),
          name: term(),
          module: module(),
          old_vsn: term(),
          old_state: term(),
          changed?: boolean()
        }

  @doc """
  Suspends the `targets` whose callback module is in `modules`. Targets
  that are not running or whose module is not reloaded are skipped with a
  warning.
  """
  @spec suspend([pid() | atom() | {:global, term()} | {:via, module(), term()}], MapSet.t(module())) ::
          {:ok, [t()], [String.t()]} | {:error, String.t()}
  def suspend(targets, modules) do
    Enum.reduce_while(List.wrap(targets), {:ok, [], []}, fn target, {:ok, acc, warnings} ->
      case prepare(target, modules) do
        {:ok, migration} -> {:cont, {:ok, [migration | acc], warnings}}
        {:skip, warning} -> {:cont, {:ok, acc, [warning | warnings]}}
        {:error, message} -> resume(acc) && {:halt, {:error, message}}
      end
    end)
    |> case do
      {:ok, migrations, warnings} -> {:ok, Enum.reverse(migrations), Enum.reverse(warnings)}
      error -> error
    end
  end

  defp prepare(target, modules) do
    with pid when is_pid(pid) <- GenServer.whereis(target),
         {module, _, _} <- :proc_lib.translate_initial_call(pid),
         true <- MapSet.member?(modules, module) do
      old_vsn = vsn(module)
      :ok = :sys.suspend(pid, @sys_timeout)
      old_state = :sys.get_state(pid, @sys_timeout)

      {:ok,
       %{pid: pid, name: target, module: module, old_vsn: old_vsn, old_state: old_state, changed?: false}}
    else
      nil -> {:skip, "migrate: #{inspect(target)} is not running"}
      false -> {:skip, "migrate: the module of #{inspect(target)} is not reloaded, nothing to migrate"}
      _ -> {:skip, "migrate: #{inspect(target)} is not an OTP process"}
    end
  catch
    :exit, reason -> {:error, "migrate: could not suspend #{inspect(target)}: #{inspect(reason)}"}
  end

  defp vsn(module) do
    case module.module_info(:attributes)[:vsn] do
      [vsn] -> vsn
      other -> other
    end
  end

  @doc """
  Runs `code_change/3` in each suspended process. On the first failure,
  the processes already changed are listed so the caller can restore them.
  """
  @spec change_code([t()], term()) ::
          {:ok, [t()], [DebugReload.Report.process_entry()]}
          | {:error, String.t(), [t()], [DebugReload.Report.process_entry()]}
  def change_code(migrations, extra) do
    Enum.reduce_while(migrations, {:ok, [], []}, fn m, {:ok, done, entries} ->
      case call_code_change(m, extra) do
        :ok ->
          entry = %{
            pid: m.pid,
            module: m.module,
            status: :migrated,
            detail:
              "code_change/3 ran from version #{inspect(m.old_vsn)}; the process keeps its migrated state"
          }

          {:cont, {:ok, [%{m | changed?: true} | done], [entry | entries]}}

        {:error, reason} ->
          entry = %{
            pid: m.pid,
            module: m.module,
            status: :migration_failed,
            detail: "code_change/3 failed (#{reason}); the process keeps its old state and old code"
          }

          changed = MapSet.new(done, & &1.pid)
          all = Enum.map(migrations, &%{&1 | changed?: MapSet.member?(changed, &1.pid)})
          message = "code_change/3 of #{inspect(m.module)} failed in #{inspect(m.name)}: #{reason}"
          {:halt, {:error, message, all, Enum.reverse([entry | entries])}}
      end
    end)
    |> case do
      {:ok, done, entries} -> {:ok, Enum.reverse(done), Enum.reverse(entries)}
      error -> error
    end
  end

  defp call_code_change(m, extra) do
    case :sys.change_code(m.pid, m.module, m.old_vsn, extra, @sys_timeout) do
      :ok -> :ok
      {:error, reason} -> {:error, inspect(reason)}
      other -> {:error, inspect(other)}
    end
  catch
    :exit, reason -> {:error, "exit: #{inspect(reason)}"}
  end

  @doc "Gives processes whose code changed their state from before the reload."
  @spec restore_states([t()]) :: [String.t()]
  def restore_states(migrations) do
    for %{changed?: true} = m <- migrations,
        message = restore_state(m),
        message != nil,
        do: message
  end

  defp restore_state(m) do
    _ = :sys.replace_state(m.pid, fn _ -> m.old_state end, @sys_timeout)
    nil
  catch
    :exit, reason -> "could not restore the state of #{inspect(m.name)}: #{inspect(reason)}"
  end

  @doc "Resumes every suspended process."
  @spec resume([t()]) :: :ok
  def resume(migrations) do
    Enum.each(migrations, fn m ->
      try do
        :sys.resume(m.pid, @sys_timeout)
      catch
        :exit, _ -> :ok
      end
    end)
  end
end
