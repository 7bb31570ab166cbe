defmodule DebugReload.DAPWireTest do
  # The DAP base protocol end to end: a separate OS process serves DAP on
  # its standard I/O (DebugReload.DAP.Stdio) for a real debug session, and
  # we talk to it with Content-Length framed JSON.
  use ExUnit.Case, async: false

  alias DebugReload.DAP.Wire
  alias DebugReload.Test.{DapCheck, Project}

  @root Path.expand("..", __DIR__)

  test "framed requests get framed responses and events with increasing seq" do
    calc = Module.concat(["Wire#{System.unique_integer([:positive])}", Calc])
    source = fn expr -> "defmodule #{inspect(calc)} do\n  def add(a, b), do: #{expr}\nend\n" end
    project = Project.create(%{"lib/calc.ex" => source.("a + b")}, compile: true)
    on_exit(fn -> Project.cleanup(project, [calc]) end)

    code = """
    Code.prepend_path(#{inspect(project.ebin)})
    {:module, _} = :int.ni(#{inspect(calc)})
    {:ok, _} = DebugReload.start_link(project: #{inspect(project.root)}, mix_env: "dev")
    DebugReload.DAP.Stdio.serve()
    """

    port =
      Port.open({:spawn_executable, System.find_executable("mix")}, [
        :binary,
        :exit_status,
        args: ["run", "--no-compile", "-e", code],
        cd: @root,
        env: [{~c"MIX_ENV", ~c"test"}]
      ])

    send_framed(port, %{
      "seq" => 1,
      "type" => "request",
      "command" => "initialize",
      "arguments" => %{"adapterID" => "x"}
    })

    [init] = receive_messages(port, 1)

    assert %{"command" => "initialize", "success" => true, "body" => %{"supportsReloadCodeRequest" => true}} =
             init

    Project.write(project, "lib/calc.ex", source.("a * b"))

    send_framed(port, %{
      "seq" => 2,
      "type" => "request",
      "command" => "reloadCode",
      "arguments" => %{"reason" => "save"}
    })

    [reload | events] = receive_until(port, &complete_reload?/1)
    assert %{"command" => "reloadCode", "request_seq" => 2, "success" => true} = reload
    # Progress events wrap the rest when the reload took over 300 ms.
    names = events |> Enum.map(& &1["event"]) |> Enum.reject(&(&1 in ["progressStart", "progressEnd"]))
    assert names == ["loadedSource", "output"]

    send_framed(port, %{"seq" => 3, "type" => "request", "command" => "disconnect"})
    [bye] = receive_messages(port, 1)
    assert bye["command"] == "disconnect"
    assert_receive {^port, {:exit_status, 0}}, 30_000

    all = [init, reload | events] ++ [bye]
    assert Enum.map(all, & &1["seq"]) == Enum.to_list(1..length(all))

    DapCheck.validate!(
      [{"InitializeResponse", init}, {"Response", reload, :reload_body}, {"DisconnectResponse", bye}] ++
        Enum.map(events, &{DapCheck.event_definition(&1), &1})
    )
  end

  defp send_framed(port, message), do: Port.command(port, Wire.frame(message))

  # The response, its events and, if progress was reported, its end.
  defp complete_reload?(messages) do
    names = Enum.map(messages, & &1["event"])
    "output" in names and ("progressStart" not in names or "progressEnd" in names)
  end

  defp receive_until(port, done?, buffer \\ "", acc \\ []) do
    {:ok, messages, rest} = Wire.parse(buffer)
    acc = acc ++ messages

    if done?.(acc) do
      acc
    else
      receive do
        {^port, {:data, data}} -> receive_until(port, done?, rest <> data, acc)
        {^port, {:exit_status, status}} -> flunk("DAP process exited (#{status}) after #{inspect(acc)}")
      after
        60_000 -> flunk("no DAP answer; got #{inspect(acc)}")
      end
    end
  end

  defp receive_messages(port, count), do: receive_until(port, &(length(&1) >= count))
end
