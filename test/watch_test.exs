defmodule DebugReload.WatchTest do
  # Real OS file events on real directories; the thread and descriptor
  # counts are per VM, so nothing else may run beside these tests.
  use ExUnit.Case, async: false

  alias DebugReload.{Native, Report, Watcher}
  alias DebugReload.Test.Project

  # Wide enough that a loaded machine never splits one save pattern in two;
  # the default window is exercised through the manager.
  @window 500
  @arrives 10_000

  defp start_watch(roots, opts \\ []) do
    {:ok, watcher} = Watcher.start(roots, Keyword.put_new(opts, :debounce, @window))
    on_exit(fn -> Watcher.stop(watcher) end)
    watcher
  end

  defp next_batch(%Watcher{ref: ref}) do
    assert_receive {:debug_reload_watch, ^ref, batch}, @arrives
    batch
  end

  # A second batch would arrive one window after the first at the latest.
  defp refute_batch(%Watcher{ref: ref}) do
    refute_receive {:debug_reload_watch, ^ref, _}, @window * 4
  end

  defp source(mod, value), do: "defmodule #{mod} do\n  def value, do: #{value}\nend\n"

  defp project(files \\ %{"lib/a.ex" => source("A", 1)}) do
    project = Project.create(files, compile: false)
    on_exit(fn -> File.rm_rf(project.root) end)
    project
  end

  defp lib(project), do: Project.path(project, "lib")

  describe "editor save patterns arrive as one batch" do
    test "an atomic save: write a temporary file, rename it over the source" do
      p = project()
      w = start_watch([lib(p)])
      tmp = Project.write(p, "lib/.a.ex.tmp.4821", source("A", 2))
      File.rename!(tmp, Project.path(p, "lib/a.ex"))

      assert next_batch(w) == %{changed: [Project.path(p, "lib/a.ex")], added: [], removed: []}
      refute_batch(w)
    end

    test "several writes in quick succession" do
      p = project()
      w = start_watch([lib(p)])

      for value <- 2..6 do
        Project.write(p, "lib/a.ex", source("A", value))
        Process.sleep(20)
      end

      assert next_batch(w).changed == [Project.path(p, "lib/a.ex")]
      refute_batch(w)
    end

    test "a formatter rewriting the file right after the save" do
      p = project()
      w = start_watch([lib(p)])
      unformatted = "defmodule A do def value, do: 2 end"
      Project.write(p, "lib/a.ex", unformatted)
      Process.sleep(30)
      Project.write(p, "lib/a.ex", IO.iodata_to_binary(Code.format_string!(unformatted)))

      assert next_batch(w).changed == [Project.path(p, "lib/a.ex")]
      refute_batch(w)
    end

    test "a git checkout touching 50 files" do
      files = for i <- 1..50, into: %{}, do: {"lib/gen/m#{i}.ex", source("M#{i}", 1)}
      p = project(files)
      git(p, ["init", "-q", "-b", "main"])
      git(p, ["add", "."])
      git(p, ["commit", "-qm", "one"])
      git(p, ["checkout", "-qb", "other"])
      for i <- 1..50, do: Project.write(p, "lib/gen/m#{i}.ex", source("M#{i}", 2))
      git(p, ["commit", "-qam", "two"])
      git(p, ["checkout", "-q", "main"])

      w = start_watch([lib(p)])
      git(p, ["checkout", "-q", "other"])

      batch = next_batch(w)
      assert length(batch.changed) == 50
      assert batch.added == [] and batch.removed == []
      refute_batch(w)
    end
  end

  defp git(project, args) do
    args = ["-c", "user.email=test@example.com", "-c", "user.name=test" | args]
    {output, status} = System.cmd("git", args, cd: project.root, stderr_to_stdout: true)
    assert status == 0, output
  end

  describe "what counts" do
    test "a directory created later is watched" do
      p = project()
      w = start_watch([lib(p)])
      first = Project.write(p, "lib/new/deeper/n.ex", source("N", 1))
      assert next_batch(w).added == [first]

      # A file written later into it raises its own event.
      second = Project.write(p, "lib/new/deeper/m.ex", source("M", 1))
      assert next_batch(w).added == [second]
    end

    test "_build, deps and .git are ignored, even below a watched root" do
      p = project()
      w = start_watch([p.root])
      Project.write(p, "_build/dev/lib/x/x.ex", source("X", 1))
      Project.write(p, "deps/d/lib/d.ex", source("D", 1))
      Project.write(p, ".git/x.ex", source("G", 1))
      Project.write(p, "lib/deps/d.ex", source("D", 1))
      Project.write(p, "lib/notes.md", "not a source")
      refute_batch(w)

      # The watcher is alive: a source edit still arrives, alone.
      a = Project.write(p, "lib/a.ex", source("A", 2))
      assert next_batch(w) == %{changed: [a], added: [], removed: []}
    end

    test "a touch, or a save of the same content, is no batch" do
      p = project()
      w = start_watch([lib(p)])
      a = Project.path(p, "lib/a.ex")
      File.touch!(a, System.os_time(:second) + 5)
      File.write!(a, File.read!(a))
      refute_batch(w)

      Project.write(p, "lib/a.ex", source("A", 2))
      assert next_batch(w).changed == [a]
    end

    test "deleted files are reported as removed, and the default window is 100 ms" do
      p = project(%{"lib/a.ex" => source("A", 1), "src/b.erl" => "-module(b).\n"})
      {:ok, w} = Watcher.start([lib(p), Project.path(p, "src")])
      on_exit(fn -> Watcher.stop(w) end)
      assert w.debounce == 100
      File.rm!(Project.path(p, "src/b.erl"))
      assert next_batch(w) == %{changed: [], added: [], removed: [Project.path(p, "src/b.erl")]}
    end

    test "bad arguments are clear errors" do
      assert {:error, "roots must be" <> _} = Watcher.start([])
      assert {:error, "debounce must be" <> _} = Watcher.start(["/tmp"], debounce: 0)

      assert {:error, "watch roots must be absolute" <> _} =
               Native.watch_start(self(), :t, ["lib"], [".ex"], [], 100, nil)
    end
  end

  describe "cleanup" do
    test "no thread or descriptor outlives unwatch or the owner" do
      p = project()
      # The runtime's threads start once and stay: measure after it runs.
      {:ok, warm} = Watcher.start([lib(p)])
      :ok = Watcher.stop(warm)
      assert Native.watch_runtime_started()
      baseline = stable_resources()
      assert baseline.notify_threads == 0 and baseline.inotify_fds == 0

      # unwatch
      {:ok, w} = Watcher.start([lib(p)])
      # A thread names itself once it runs, and nothing waits for the
      # debouncer's to run: wait, boundedly, to read both names.
      watching = await_resources(&(&1.notify_threads == 2))
      assert watching.notify_threads == 2 and watching.inotify_fds == 1
      assert watching.poll_fds > baseline.poll_fds and watching.event_fds > baseline.event_fds
      :ok = Watcher.stop(w)
      # Gone when stop returns, not a moment later.
      assert %{notify_threads: 0, inotify_fds: 0} = resources()
      assert await_resources(&(&1 == baseline)) == baseline

      # the owner exits, normally or killed
      for how <- [:normal, :kill] do
        test = self()

        owner =
          spawn(fn ->
            {:ok, _} = Watcher.start([lib(p)])
            send(test, :watching)
            receive(do: (:exit -> :ok))
          end)

        assert_receive :watching, @arrives
        assert resources().inotify_fds == 1
        ref = Process.monitor(owner)
        if how == :kill, do: Process.exit(owner, :kill), else: send(owner, :exit)
        assert_receive {:DOWN, ^ref, :process, ^owner, _}, @arrives
        assert await_resources(&(&1 == baseline)) == baseline
      end
    end
  end

  # The threads and descriptors of this OS process that a watch owns. Only
  # those kinds are counted: the VM's own totals move with other tests'
  # ports closing and tokio's idle blocking threads leaving.
  defp resources do
    fds = "/proc/self/fd" |> File.ls!() |> Enum.map(&fd_target/1)

    %{
      notify_threads: Enum.count(File.ls!("/proc/self/task"), &(thread_name(&1) =~ ~r/^notify-rs/)),
      inotify_fds: Enum.count(fds, &(&1 == "anon_inode:inotify")),
      poll_fds: Enum.count(fds, &(&1 == "anon_inode:[eventpoll]")),
      event_fds: Enum.count(fds, &(&1 == "anon_inode:[eventfd]"))
    }
  end

  defp thread_name(tid) do
    case File.read("/proc/self/task/#{tid}/comm") do
      {:ok, name} -> name
      {:error, _} -> ""
    end
  end

  defp fd_target(fd) do
    case File.read_link("/proc/self/fd/#{fd}") do
      {:ok, target} -> target
      {:error, _} -> ""
    end
  end

  # Earlier tests' OS processes and ports may still be closing: wait
  # (boundedly) until two readings agree.
  defp stable_resources(timeout \\ 5_000) do
    deadline = System.monotonic_time(:millisecond) + timeout

    Stream.repeatedly(fn ->
      first = resources()
      Process.sleep(50)
      {first, resources()}
    end)
    |> Enum.find(fn {a, b} -> a == b or System.monotonic_time(:millisecond) > deadline end)
    |> elem(1)
  end

  # notify's threads name themselves once running and its event loop
  # thread ends right after the watcher is dropped: wait, boundedly, and
  # return the last reading.
  defp await_resources(done?, timeout \\ 5_000) do
    deadline = System.monotonic_time(:millisecond) + timeout

    Stream.repeatedly(&resources/0)
    |> Enum.find(fn r ->
      done?.(r) or System.monotonic_time(:millisecond) > deadline or (Process.sleep(10) && false)
    end)
  end

  describe "logs" do
    defmodule Relay do
      @moduledoc false
      def log(event, %{config: %{pid: pid}}), do: send(pid, {:logged, event.level, message(event.msg)})

      defp message({:string, chardata}), do: IO.chardata_to_string(chardata)
      defp message({:report, report}), do: inspect(report)
      defp message({format, args}), do: IO.chardata_to_string(:io_lib.format(format, args))
    end

    setup do
      :ok = :logger.add_handler(:watch_test_relay, Relay, %{config: %{pid: self()}})
      on_exit(fn -> :logger.remove_handler(:watch_test_relay) end)
    end

    test "Rust tracing events reach Logger with their level" do
      p = project()
      w = start_watch([lib(p)])
      assert_receive {:logged, :info, "debug_reload: watching " <> rest}, @arrives
      assert rest =~ lib(p)
      Project.write(p, "lib/a.ex", source("A", 2))
      next_batch(w)
      assert_receive {:logged, :debug, "debug_reload: source batch changed=1" <> _}, @arrives
      :ok = Watcher.stop(w)
      assert_receive {:logged, :info, "debug_reload: stopped watching " <> _}, @arrives
    end

    test "nothing is written to stdout or stderr" do
      p = project()
      ebin = DebugReload |> :code.which() |> to_string() |> Path.dirname()
      log = Path.join(p.root, "watch.log")

      # A separate VM whose console log handlers are off: whatever reaches
      # its stdout or stderr can only come from the watcher itself.
      script = """
      for id <- [:default, Logger], do: :logger.set_handler_config(id, :level, :none)
      :ok = :logger.add_handler(:file, :logger_std_h, %{config: %{file: #{inspect(String.to_charlist(log))}}})
      {:ok, w} = DebugReload.Watcher.start([#{inspect(lib(p))}], debounce: 50)
      File.write!(#{inspect(Project.path(p, "lib/a.ex"))}, "changed")
      receive do
        {:debug_reload_watch, _, _} -> :ok
      after
        10_000 -> System.halt(3)
      end
      :ok = DebugReload.Watcher.stop(w)
      # The stop's log record travels through the forwarder to Logger.
      Enum.find(1..1000, fn _ ->
        :logger_std_h.filesync(:file)
        File.read!(#{inspect(log)}) =~ "stopped watching" or (Process.sleep(10) && false)
      end) || System.halt(4)
      """

      {output, status} = System.cmd("elixir", ["-pa", ebin, "-e", script], stderr_to_stdout: true)
      assert {output, status} == {"", 0}
      logged = File.read!(log)
      assert logged =~ "debug_reload: watching"
      assert logged =~ "debug_reload: stopped watching"
    end
  end

  describe "the manager" do
    setup do
      n = System.unique_integer([:positive])
      value = Module.concat(["WatchFx#{n}", Value])
      dep_module = Module.concat(["WatchDep#{n}"])
      dep = Project.create(%{"lib/dep.ex" => source(inspect(dep_module), 1)}, compile: false)
      p = Project.create(%{"lib/value.ex" => source(inspect(value), 1)}, deps: [{dep.app, path: dep.root}])
      Code.ensure_loaded!(value)

      on_exit(fn ->
        Project.cleanup(p, [value])
        File.rm_rf(dep.root)
      end)

      %{project: p, dep: dep, dep_module: dep_module, value: value, server: :"watch_manager_#{n}"}
    end

    test "auto: true reloads on save and reports to subscribers; unwatch and watch/1", ctx do
      %{project: p, value: value, server: server} = ctx
      start_supervised!({DebugReload, project: p.root, name: server, mix_env: "dev", auto: true}, id: server)
      Project.await_boot(server)
      :ok = DebugReload.subscribe(server)

      path = Project.write(p, "lib/value.ex", source(inspect(value), 2))
      assert_receive {:debug_reload, %Report{status: :ok, files: %{changed: [^path]}} = report}, 60_000
      assert [%{module: ^value, action: :reloaded}] = report.modules
      assert value.value() == 2
      # What a debug adapter tells the editor about a reload it did not ask for.
      assert [_ | _] = DebugReload.DAP.events_for(report)

      # Unwatched: the edit waits for a reload someone asks for (an
      # automatic one would have left this one nothing to do).
      :ok = DebugReload.unwatch(server)
      assert %{notify_threads: 0, inotify_fds: 0} = resources()
      Project.write(p, "lib/value.ex", source(inspect(value), 3))
      refute_receive {:debug_reload, _}, 1_000
      assert {:ok, %Report{status: :ok, files: %{changed: [^path]}}} = DebugReload.reload(server: server)
      assert value.value() == 3
      flush_reports()

      # Watching again starts from what is loaded: the next report (path
      # dependencies included, nothing spurious) is the next edit's.
      :ok = DebugReload.watch(server: server, debounce: 50)
      Project.write(p, "lib/value.ex", source(inspect(value), 4))
      assert_receive {:debug_reload, report}, 60_000
      assert %Report{status: :ok, files: %{changed: [^path]}} = report
      assert value.value() == 4

      # A path dependency is watched and reloaded too.
      dep_file = Project.write(ctx.dep, "lib/dep.ex", source(inspect(ctx.dep_module), 2))
      assert_receive {:debug_reload, %Report{status: :ok, files: %{changed: [^dep_file]}} = report}, 60_000
      assert Enum.any?(report.modules, &(&1.module == ctx.dep_module))

      # The manager stopping stops its watcher before it is gone.
      assert resources().inotify_fds == 1
      :ok = stop_supervised(server)
      assert %{notify_threads: 0, inotify_fds: 0} = resources()
    end
  end

  defp flush_reports do
    receive do
      {:debug_reload, _} -> flush_reports()
    after
      0 -> :ok
    end
  end
end
