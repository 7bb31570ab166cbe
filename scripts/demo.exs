# make demo: a reload during a live debug session, end to end.
#
# It writes a small Mix app to a temporary directory, compiles it, interprets
# its modules with OTP's :int (as ElixirLS does), pauses a process at a
# breakpoint, edits a file, reloads with DebugReload.reload/0 and shows that
# the session survived: same processes, breakpoints on their statements,
# new code running.

defmodule Demo.Script do
  @app_root Path.join(System.tmp_dir!(), "debug_reload_demo")

  def run do
    root = create_app()
    section("A debug session: modules interpreted, a GenServer running, a breakpoint set")
    ebin = Path.join(root, "_build/dev/lib/greeter_demo/ebin")
    Code.prepend_path(ebin)
    for m <- [Demo.Greeter, Demo.Format], do: {:module, ^m} = :int.ni(m)
    IO.puts("interpreted: #{inspect(:int.interpreted())}")

    {:ok, server} = Demo.Greeter.start_link(:ok)
    IO.puts("GenServer #{inspect(server)} says: #{Demo.Greeter.greet(server, "Ada")}")

    line = line_of(root, "lib/format.ex", "greeting =")
    :ok = :int.break(Demo.Format, line)
    IO.puts("breakpoint set at lib/format.ex:#{line}")

    me = self()
    paused = spawn(fn -> send(me, {:paused_result, Demo.Format.greeting("Bob")}) end)
    {mod, at} = await_break(paused)
    IO.puts("process #{inspect(paused)} is paused at #{inspect(mod)}:#{at}")

    {:ok, _} = DebugReload.start_link(project: root, mix_env: "dev", interpret: ["Demo.*"])

    section("Editing lib/format.ex: two lines inserted above the breakpoint, new greeting")
    path = Path.join(root, "lib/format.ex")
    new_source = File.read!(path) |> String.replace(~s("Hello, "), ~s("Howdy, ")) |> insert_above(line)
    File.write!(path, new_source)
    IO.puts(indent(new_source))

    section("DebugReload.reload()")
    {:ok, report} = DebugReload.reload()
    IO.inspect(report)

    section("After the reload")
    IO.puts("paused process alive? #{Process.alive?(paused)}")
    IO.puts("breakpoints now: #{inspect(:int.all_breaks(Demo.Format))}")
    :int.continue(paused)

    receive do
      {:paused_result, result} -> IO.puts("paused process finished its call on the old code: #{result}")
    after
      5_000 -> raise "the paused process did not finish"
    end

    :int.delete_break(Demo.Format, line + 2)
    IO.puts("same GenServer #{inspect(server)} now says: #{Demo.Greeter.greet(server, "Ada")}")

    :ok = :int.break(Demo.Format, line + 2)
    probe = spawn(fn -> send(me, {:probe, Demo.Format.greeting("Eve")}) end)
    {mod, at} = await_break(probe)
    IO.puts("a new call stops at the moved breakpoint #{inspect(mod)}:#{at}")
    :int.continue(probe)
    receive do: ({:probe, result} -> IO.puts("and returns #{result}"))

    section("Done: no restart, no process killed, breakpoints kept")
  end

  defp create_app do
    File.rm_rf!(@app_root)
    File.mkdir_p!(Path.join(@app_root, "lib"))

    File.write!(Path.join(@app_root, "mix.exs"), """
    defmodule GreeterDemo.MixProject do
      use Mix.Project
      def project, do: [app: :greeter_demo, version: "0.1.0", elixir: "~> 1.14"]
    end
    """)

    File.write!(Path.join(@app_root, "lib/greeter.ex"), """
    defmodule Demo.Greeter do
      use GenServer

      def start_link(arg), do: GenServer.start_link(__MODULE__, arg)
      def greet(server, name), do: GenServer.call(server, {:greet, name})

      @impl true
      def init(arg), do: {:ok, arg}

      @impl true
      def handle_call({:greet, name}, _from, state) do
        {:reply, Demo.Format.greeting(name), state}
      end
    end
    """)

    File.write!(Path.join(@app_root, "lib/format.ex"), """
    defmodule Demo.Format do
      def greeting(name) do
        greeting = "Hello, " <> name
        greeting <> "!"
      end
    end
    """)

    {out, status} =
      System.cmd("mix", ["compile"], cd: @app_root, env: [{"MIX_ENV", "dev"}], stderr_to_stdout: true)

    status == 0 || raise "compiling the demo app failed:\n#{out}"
    @app_root
  end

  defp insert_above(source, line) do
    lines = String.split(source, "\n")

    extra = [
      "    # Greetings are friendlier in the afternoon.",
      "    # (two lines inserted above the breakpoint)"
    ]

    Enum.join(Enum.take(lines, line - 1) ++ extra ++ Enum.drop(lines, line - 1), "\n")
  end

  defp line_of(root, rel, needle) do
    Path.join(root, rel)
    |> File.read!()
    |> String.split("\n")
    |> Enum.find_index(&String.contains?(&1, needle))
    |> Kernel.+(1)
  end

  defp await_break(pid, tries \\ 500) do
    Enum.find_value(:int.snapshot(), fn
      {^pid, _, :break, loc} -> loc
      _ -> nil
    end) ||
      if tries > 0,
        do: (Process.sleep(10) && await_break(pid, tries - 1)) || await_break(pid, tries - 1),
        else: raise("no breakpoint hit")
  end

  defp section(title), do: IO.puts("\n== #{title}")
  defp indent(text), do: text |> String.split("\n") |> Enum.map_join("\n", &("    " <> &1))
end

Demo.Script.run()
