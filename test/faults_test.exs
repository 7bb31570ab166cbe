defmodule DebugReload.FaultsTest do
  # After each fault: the VM is alive, the old code runs, breakpoints are
  # intact and no process died.
  use ExUnit.Case, async: false

  alias DebugReload.Test.Project

  setup do
    n = System.unique_integer([:positive])
    mods = for i <- 1..5, do: Module.concat(["Fault#{n}", "M#{i}"])
    files = for {m, i} <- Enum.with_index(mods, 1), into: %{}, do: {"lib/m#{i}.ex", source(m, 1)}
    project = Project.create(files)
    Project.interpret(mods)
    name = :"faults_#{n}"
    start_supervised!({DebugReload, project: project.root, name: name, mix_env: "dev"}, id: name)
    Project.await_boot(name)

    [first | _] = mods
    :ok = :int.break(first, 3)
    :ok = :int.test_at_break(first, 3, {__MODULE__, :never})
    {:ok, server} = Agent.start(fn -> first.value() end)
    on_exit(fn -> Project.cleanup(project, mods) end)
    %{project: project, mods: mods, server: name, agent: server}
  end

  def never(_bindings), do: false

  def source(mod, value, extra \\ "") do
    """
    defmodule #{inspect(mod)} do
    #{extra}  def value do
        #{value}
      end
    end
    """
  end

  defp assert_intact(%{mods: mods, agent: agent}) do
    assert Enum.map(mods, &Task.await(Task.async(fn -> &1.value() end))) == [1, 1, 1, 1, 1]
    assert Enum.all?(mods, &(&1 in :int.interpreted()))
    [first | _] = mods
    assert [{{^first, 3}, [:active, :enable, :null, {__MODULE__, :never}]}] = :int.all_breaks(first)
    assert Process.alive?(agent)
    assert Agent.get(agent, & &1) == 1
  end

  test "a compile error in the 3rd of 5 changed files loads none of them", %{project: p, mods: mods} = ctx do
    for {m, i} <- Enum.with_index(mods, 1) do
      body = if i == 3, do: "value(", else: "2"
      Project.write(p, "lib/m#{i}.ex", source(m, body))
    end

    assert {:error, report} = DebugReload.reload(server: ctx.server)
    assert Enum.any?(report.diagnostics, &(&1.file =~ "m3.ex"))
    assert_intact(ctx)
  end

  test "a file that is not UTF-8 is a clear compile error", %{project: p, mods: [_, m2 | _]} = ctx do
    Project.write(p, "lib/m2.ex", source(m2, "\"caf\xE9\""))
    assert {:error, report} = DebugReload.reload(server: ctx.server)
    assert report.error =~ "m2.ex"
    assert_intact(ctx)
  end

  test "a module defined in two files is rejected", %{project: p, mods: [m1 | _]} = ctx do
    Project.write(p, "lib/dup.ex", source(m1, 9))
    assert {:error, report} = DebugReload.reload(server: ctx.server)
    assert report.error =~ "defined in both"
    assert report.error =~ "dup.ex"
    assert_intact(ctx)
  end

  test "a module whose @on_load fails rolls the reload back; the old interpreted code runs",
       %{project: p, mods: [_, m2 | _]} = ctx do
    on_load =
      "  @on_load :check\n  def check, do: if(System.get_env(\"DEBUG_RELOAD_FAIL_ON_LOAD\"), do: :error, else: :ok)\n"

    # The compile worker started without the variable: it compiles fine there.
    System.put_env("DEBUG_RELOAD_FAIL_ON_LOAD", "1")
    on_exit(fn -> System.delete_env("DEBUG_RELOAD_FAIL_ON_LOAD") end)
    Project.write(p, "lib/m2.ex", source(m2, 2, on_load))

    assert {:error, report} = DebugReload.reload(server: ctx.server)
    assert report.error =~ "rolled back"
    assert report.error =~ "on_load"
    assert [%{action: :rolled_back}] = Enum.filter(report.modules, &(&1.module == m2))
    assert Enum.any?(report.warnings, &(&1 =~ "@on_load"))
    assert_intact(ctx)
  end

  # The manager lists interpreted modules at start and after each reload;
  # one interpreted in between is still rolled back to its old code.
  test "a module interpreted since the manager last looked is rolled back to its old code",
       %{project: p, mods: [_, _, m3 | _]} = ctx do
    stop_supervised!(ctx.server)
    :int.n(m3)
    start_supervised!({DebugReload, project: p.root, name: ctx.server, mix_env: "dev"}, id: :again)
    {:ok, %{status: :noop}} = DebugReload.reload(server: ctx.server)
    # (the manager looks once it has replied: let it, before interpreting)
    _ = :sys.get_state(ctx.server)
    {:module, ^m3} = :int.ni(m3)
    :ok = :int.break(m3, 3)
    :ok = :int.test_at_break(m3, 3, {__MODULE__, :never})

    Project.write(p, "lib/m3.ex", source(m3, 3))
    # A fault once every module is re-interpreted: m3 runs its new code.
    assert {:error, report} = DebugReload.reload(server: ctx.server, inject_fault: :interpret)
    assert report.error =~ "rolled back"
    assert [%{action: :rolled_back}] = Enum.filter(report.modules, &(&1.module == m3))
    assert m3 in :int.interpreted()
    assert [{{^m3, 3}, [:active, :enable, :null, {__MODULE__, :never}]}] = :int.all_breaks(m3)
    assert Task.await(Task.async(fn -> m3.value() end)) == 1
    assert_intact(ctx)
  end

  test "a 10 MB source file reloads without disturbing the session", %{project: p, mods: [m1 | _]} = ctx do
    big = Module.concat([m1 |> Module.split() |> hd(), Big])

    comments =
      String.duplicate("# padding line for a ten megabyte source file ......................\n", 150_000)

    Project.write(p, "lib/big.ex", comments <> source(big, 42))
    assert File.stat!(Project.path(p, "lib/big.ex")).size > 10_000_000
    on_exit(fn -> Project.cleanup(p, [big]) end)

    assert {:ok, report} = DebugReload.reload(server: ctx.server)
    assert Enum.any?(report.modules, &(&1.module == big))
    assert big.value() == 42
    assert_intact(ctx)
  end

  test "a changed file deleted while the reload compiles", %{project: p, mods: [_, m2, m3 | _]} = ctx do
    gate = Project.path(p, "compile_gate")
    File.touch!(gate)
    Project.write(p, "lib/m2.ex", source(m2, 1, gated_compile(gate)))
    Project.write(p, "lib/m3.ex", source(m3, 1, "  @moduledoc false\n"))
    task = Task.async(fn -> DebugReload.reload(server: ctx.server) end)
    await_file(gate <> ".reached")
    File.rm!(Project.path(p, "lib/m3.ex"))
    File.touch!(gate <> ".open")
    assert {status, report} = Task.await(task, 60_000)
    assert status in [:ok, :error]
    assert report.status in [:ok, :error]

    # Whatever that reload made of it, putting the file back is reloaded cleanly.
    Project.write(p, "lib/m3.ex", source(m3, 1))
    assert {:ok, _} = DebugReload.reload(server: ctx.server)
    assert_intact(ctx)
  end

  test "the manager killed mid-reload is restarted and the next reload works",
       %{project: p, mods: [m1 | _]} = ctx do
    # The gate holds the compile, so the kill lands mid-reload however
    # slowly the machine runs.
    gate = Project.path(p, "compile_gate")
    File.touch!(gate)
    Project.write(p, "lib/m1.ex", source(m1, 5, gated_compile(gate)))
    pid = Process.whereis(ctx.server)
    task = Task.async(fn -> catch_exit(DebugReload.reload(server: ctx.server)) end)
    await_file(gate <> ".reached")
    Process.exit(pid, :kill)
    File.touch!(gate <> ".open")
    assert {:killed, _} = Task.await(task, 30_000)

    new_pid = wait_for_restart(ctx.server, pid)
    assert is_pid(new_pid)
    assert {:ok, report} = DebugReload.reload(server: ctx.server)
    assert report.status in [:ok, :noop]
    assert Task.await(Task.async(fn -> m1.value() end)) == 5
  end

  # The narrowest point: the worker has written the new beam, the manager
  # has not replied. Mix's manifest still dates from before the edit, and
  # the edit is the same size and saved in the manifest's second, so
  # neither Mix nor the next manager would see it unless the reload made
  # it visible before compiling.
  test "the manager killed between a planned compile and its reply loses no edit",
       %{project: p, mods: [m1, m2 | _]} = ctx do
    gate = Project.path(p, "compile_gate")
    Project.write(p, "lib/m2.ex", source(m2, 1, gated_compile(gate)))
    assert {:ok, %{compiler: :planned}} = DebugReload.reload(server: ctx.server)
    :ok = DebugReload.await_sync(ctx.server)

    compiled_digest = manifest_digest(p, "lib/m2.ex")
    Project.write(p, "lib/m2.ex", source(m2, 5, gated_compile(gate)))
    manifest = DebugReload.Manifest.elixir_manifest(%{ebin: p.ebin})
    {:ok, %{mtime: compiled_at}} = File.stat(manifest, time: :posix)
    File.touch!(Project.path(p, "lib/m2.ex"), compiled_at)
    beam = Path.join(p.ebin, "#{m2}.beam")
    old_beam = File.read!(beam)

    File.touch!(gate)
    pid = Process.whereis(ctx.server)
    task = Task.async(fn -> catch_exit(DebugReload.reload(server: ctx.server)) end)
    await_file(gate <> ".reached")

    # The manager's next step after the compile re-interprets m2, which
    # needs the interpreter's server: held, it holds the manager there.
    :sys.suspend(:dbg_iserver)

    try do
      File.touch!(gate <> ".open")
      # (the old beam is out of the ebin while the worker compiles)
      Project.await(fn -> match?({:ok, new} when new != old_beam, File.read(beam)) end)

      Project.await(fn ->
        Process.info(Process.whereis(:dbg_iserver), :message_queue_len) > {:message_queue_len, 0}
      end)

      assert Task.yield(task, 0) == nil
      Process.exit(pid, :kill)
    after
      :sys.resume(:dbg_iserver)
    end

    Task.await(task, 30_000)
    wait_for_restart(ctx.server, pid)
    Project.await_boot(ctx.server)
    assert {:ok, %{status: :ok}} = DebugReload.reload(server: ctx.server)
    assert Task.await(Task.async(fn -> m2.value() end)) == 5
    assert [{{^m1, 3}, _}] = :int.all_breaks(m1)
    assert Process.alive?(ctx.agent)

    # Mix saw the edit too: its manifest has the new text's digest.
    :ok = DebugReload.await_sync(ctx.server)
    refute manifest_digest(p, "lib/m2.ex") == compiled_digest
  end

  defp manifest_digest(p, rel) do
    layout = %{app: p.app, root: p.root, source_dirs: [], ebin: p.ebin, deps: []}
    {:ok, manifest} = DebugReload.Manifest.read(p.root, [layout])
    Enum.find_value(manifest.sources, &(&1.path == Project.path(p, rel) && &1.digest))
  end

  test "beams compiled outside any reload while no manager ran are loaded by the next one",
       %{project: p, mods: [m1, _, m3 | _]} = ctx do
    stop_supervised!(ctx.server)
    # (a size Mix 1.14 notices within the second of its last compile)
    Project.write(p, "lib/m3.ex", source(m3, 70))
    {_, 0} = Project.mix(p, ["compile"])

    start_supervised!({DebugReload, project: p.root, name: ctx.server, mix_env: "dev"}, id: :again)
    Project.await_boot(ctx.server)
    assert {:ok, report} = DebugReload.reload(server: ctx.server)
    assert [%{module: ^m3}] = report.modules
    assert Task.await(Task.async(fn -> m3.value() end)) == 70
    assert m3 in :int.interpreted()
    assert [{{^m1, 3}, _}] = :int.all_breaks(m1)
    assert Process.alive?(ctx.agent)
  end

  # Module-body code that, while `gate` exists, holds the compile until
  # `gate.open` does, having created `gate.reached`.
  defp gated_compile(gate) do
    """
      if File.exists?(#{inspect(gate)}) do
        File.touch!(#{inspect(gate <> ".reached")})
        Enum.find(1..1000, fn _ -> Process.sleep(10) || File.exists?(#{inspect(gate <> ".open")}) end)
      end

    """
  end

  defp await_file(path), do: Project.await(fn -> File.exists?(path) end)

  defp wait_for_restart(name, old, tries \\ 200) do
    case Process.whereis(name) do
      pid when is_pid(pid) and pid != old -> pid
      _ when tries > 0 -> Process.sleep(25) && wait_for_restart(name, old, tries - 1)
      _ -> flunk("manager was not restarted")
    end
  end
end
