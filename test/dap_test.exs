defmodule DebugReload.DAPTest do
  use ExUnit.Case, async: false

  alias DebugReload.DAP
  alias DebugReload.Test.{DapCheck, Project}

  setup do
    n = System.unique_integer([:positive])
    calc = Module.concat(["Dap#{n}", Calc])
    spin = Module.concat(["Dap#{n}", Spin])

    project =
      Project.create(%{"lib/calc.ex" => calc_source(calc, "a + b"), "lib/spin.ex" => spin_source(spin, 1)})

    Project.interpret([calc, spin])
    name = :"dap_manager_#{n}"
    start_supervised!({DebugReload, project: project.root, name: name, mix_env: "dev", busy_timeout: 1_000})
    # Wait for the compile worker to boot, so reloads are not slow enough
    # to add progress events.
    Project.await_boot(name)
    on_exit(fn -> Project.cleanup(project, [calc, spin]) end)
    %{project: project, calc: calc, spin: spin, server: name, path: Project.path(project, "lib/calc.ex")}
  end

  defp spin_source(mod, version) do
    """
    defmodule #{inspect(mod)} do
      def spin(n), do: spin(n + #{version})
    end
    """
  end

  defp calc_source(mod, expr) do
    """
    defmodule #{inspect(mod)} do
      def add(a, b) do
        result = #{expr}
        result
      end
    end
    """
  end

  defp request(command \\ "reloadCode", arguments) do
    %{"seq" => 7, "type" => "request", "command" => command, "arguments" => arguments}
  end

  defp validate_all!(response, events, body \\ :reload_body) do
    response = with_seq(response)
    response_check = if body, do: {"Response", response, body}, else: {"ErrorResponse", response}
    DapCheck.validate!([response_check | Enum.map(events, &{DapCheck.event_definition(&1), with_seq(&1)})])
  end

  defp with_seq(message), do: Map.put(message, "seq", 1)

  defp without_progress([%{"event" => "progressStart"} | rest]) do
    assert %{"event" => "progressEnd"} = List.last(rest)
    Enum.drop(rest, -1)
  end

  defp without_progress(events) do
    refute Enum.any?(events, &(&1["event"] in ["progressStart", "progressEnd"]))
    events
  end

  test "capabilities validate as DAP Capabilities" do
    DapCheck.validate!([{"Capabilities", DAP.capabilities()}])
    assert DAP.capabilities()["supportsReloadCodeRequest"] == true
  end

  test "a reload answers with a valid response and events in client order",
       %{project: p, calc: calc, server: s, path: path} do
    :ok = :int.break(calc, 3)
    test = self()
    paused = spawn(fn -> send(test, {:r, calc.add(1, 2)}) end)
    Project.await_break(paused)

    Project.write(
      p,
      "lib/calc.ex",
      calc_source(calc, "a * b") |> String.replace("  def add", "  @doc false\n  def add")
    )

    {response, events} =
      DAP.handle_request(request(%{"sources" => [%{"path" => path}], "reason" => "save"}),
        server: s,
        breakpoint_ids: %{{path, 3} => 11},
        thread_ids: %{paused => 5}
      )

    validate_all!(response, events)
    assert %{"success" => true, "request_seq" => 7, "command" => "reloadCode", "body" => body} = response
    assert body["status"] == "ok"
    assert [%{"module" => mod_name, "action" => "reinterpreted"}] = body["modules"]
    assert mod_name == inspect(calc)
    assert [%{"oldLine" => 3, "newLine" => 4, "status" => "moved"}] = body["breakpoints"]
    assert [%{"status" => "pausedOnOldCode"}] = body["processes"]
    assert Enum.all?(~w(compileMs loadMs breakpointsMs totalMs), &is_number(body["timings"][&1]))

    # A slow machine may take more than 300 ms: then progress events wrap the rest.
    events = without_progress(events)
    assert Enum.map(events, & &1["event"]) == ["loadedSource", "breakpoint", "invalidated", "output"]
    [loaded, bp, invalidated, output] = events
    assert loaded["body"] == %{"reason" => "changed", "source" => %{"name" => "calc.ex", "path" => path}}

    assert %{"reason" => "changed", "breakpoint" => %{"id" => 11, "line" => 4, "verified" => true}} =
             bp["body"]

    assert bp["body"]["breakpoint"]["message"] =~ "line 4"
    assert invalidated["body"] == %{"areas" => ["stacks", "variables"], "threadId" => 5}
    assert output["body"]["category"] == "console"
    assert output["body"]["output"] =~ ~r/^Reloaded 1 of \d+ modules in \d+ ms .*1 breakpoint moved/

    :int.delete_break(calc, 4)
    :int.continue(paused)
    assert_receive {:r, 3}, 5_000
  end

  test "the hotReload alias and module names work", %{project: p, calc: calc, server: s} do
    Project.write(p, "lib/calc.ex", calc_source(calc, "a - b"))
    {response, events} = DAP.handle_request(request("hotReload", %{"modules" => [inspect(calc)]}), server: s)
    validate_all!(response, events)
    assert response["success"]
    assert response["command"] == "hotReload"
    assert calc.add(5, 3) == 2
  end

  test "a compile error is rejected with a one-line message and details", %{project: p, calc: calc, server: s} do
    Project.write(
      p,
      "lib/calc.ex",
      "defmodule #{inspect(calc)} do\n  def add(a, b) do\n    a +\n  end\nend\n"
    )

    {response, events} = DAP.handle_request(request(%{}), server: s)
    validate_all!(response, events)
    assert response["success"] == false
    refute response["message"] =~ "\n"
    assert response["message"] =~ "calc.ex"
    assert [%{"severity" => "error", "source" => %{"path" => _}} | _] = response["body"]["diagnostics"]
    assert without_progress(events) == []
    assert calc.add(1, 2) == 3
  end

  test "a path outside the project is rejected by name", %{server: s} do
    {response, events} = DAP.handle_request(request(%{"sources" => [%{"path" => "/etc/hosts"}]}), server: s)
    validate_all!(response, events)
    assert without_progress(events) == []
    refute response["success"]
    assert response["message"] =~ "/etc/hosts"
  end

  test "malformed arguments name the field and reload nothing", %{project: p, calc: calc, server: s} do
    Project.write(p, "lib/calc.ex", calc_source(calc, "a * b"))

    for {args, field} <- [
          {%{"sources" => "x"}, "sources"},
          {%{"sources" => [%{"path" => 42}]}, "sources[0].path"},
          {%{"sources" => [%{"name" => "a.ex"}]}, "sources[0]"},
          {%{"modules" => "X"}, "modules"},
          {%{"dryRun" => "yes"}, "dryRun"},
          {%{"force" => 1}, "force"},
          {%{"reason" => "because"}, "reason"}
        ] do
      {response, events} = DAP.handle_request(request(args), server: s)
      validate_all!(response, events, nil)
      refute response["success"]
      assert response["message"] =~ field, "#{inspect(args)}: #{response["message"]}"
      assert events == []
    end

    assert calc.add(2, 3) == 5
  end

  test "a dry run returns the plan and no events", %{project: p, calc: calc, server: s} do
    Project.write(p, "lib/calc.ex", calc_source(calc, "a * b"))
    {response, events} = DAP.handle_request(request(%{"dryRun" => true}), server: s)
    validate_all!(response, events)
    assert response["body"]["status"] == "dryRun"
    assert [%{"action" => "planned"}] = response["body"]["modules"]
    assert without_progress(events) == []
    assert calc.add(2, 3) == 5
  end

  test "nothing interpreted is rejected", %{calc: calc, spin: spin, server: s} do
    :int.nn(calc)
    :int.nn(spin)
    {response, []} = DAP.handle_request(request(%{}), server: s)
    validate_all!(response, [], nil)
    assert response["message"] =~ "no module is interpreted"
  end

  test "events_for turns any report (an automatic reload's too) into the same events",
       %{project: p, calc: calc, server: s} do
    DebugReload.subscribe(s)
    Project.write(p, "lib/calc.ex", calc_source(calc, "a * b"))
    Project.write(p, "lib/new.ex", "defmodule #{inspect(calc)}.New do\n  def x, do: 1\nend\n")
    {:ok, _} = DebugReload.reload(server: s)
    assert_receive {:debug_reload, report}
    events = DAP.events_for(report)
    DapCheck.validate!(Enum.map(events, &{DapCheck.event_definition(&1), with_seq(&1)}))
    reasons = for %{"event" => "loadedSource", "body" => b} <- events, do: {b["reason"], b["source"]["name"]}
    assert Enum.sort(reasons) == [{"changed", "calc.ex"}, {"new", "new.ex"}]
  end

  test "a reload slower than 300 ms sends progressStart live and ends with progressEnd",
       %{project: p, server: s, spin: spinner_mod} do
    # A process spinning in interpreted code makes the swap wait for it
    # (busy_timeout 1 s here), so this reload is reliably slow.
    spinner = spawn(fn -> spinner_mod.spin(0) end)
    on_exit(fn -> Process.exit(spinner, :kill) end)
    Project.await(fn -> interpreting?(spinner) end, 5_000)

    Project.write(p, "lib/spin.ex", spin_source(spinner_mod, 2))
    test = self()

    {response, events} = DAP.handle_request(request(%{}), server: s, send_event: &send(test, {:live, &1}))

    assert_received {:live, %{"event" => "progressStart", "body" => %{"progressId" => id}} = start}
    assert %{"event" => "progressEnd", "body" => %{"progressId" => ^id}} = List.last(events)
    refute Enum.any?(events, &(&1["event"] == "progressStart"))
    validate_all!(response, [start | events])
  end

  test "progress events validate" do
    DapCheck.validate!([
      {"ProgressStartEvent", with_seq(DebugReload.DAP.Events.progress_start("p1", "Reloading code"))},
      {"ProgressEndEvent", with_seq(DebugReload.DAP.Events.progress_end("p1", "done"))}
    ])
  end

  defp interpreting?(pid), do: Enum.any?(:int.snapshot(), &(elem(&1, 0) == pid))
end
