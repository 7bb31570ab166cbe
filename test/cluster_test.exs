defmodule DebugReload.ClusterTest do
  # A debugged system spread over connected nodes, as `:int.ni/1` and
  # ElixirLS's attach see it: three real peers started with OTP's `:peer`.
  use ExUnit.Case, async: false

  alias DebugReload.Test.Project

  @moduletag timeout: 180_000

  setup_all do
    started_here? = ensure_distributed()

    on_exit(fn ->
      if started_here?, do: Node.stop()
    end)

    :ok
  end

  defp await_epmd(tries) do
    case System.cmd("epmd", ["-names"], stderr_to_stdout: true) do
      {_, 0} -> :ok
      {output, _} when tries == 0 -> flunk("epmd did not start: #{output}")
      _ -> Process.sleep(20) && await_epmd(tries - 1)
    end
  end

  defp ensure_distributed do
    if Node.alive?() do
      false
    else
      {_, 0} = System.cmd("epmd", ["-daemon"])
      # `epmd -daemon` returns before the daemon listens.
      await_epmd(500)
      {:ok, _} = Node.start(:"debug_reload_test_#{System.unique_integer([:positive])}@127.0.0.1", :longnames)
      true
    end
  end

  # Healthy peers share two cores with four other VMs: the bound on each
  # remote call is generous unless a test asserts on it.
  setup ctx do
    n = System.unique_integer([:positive])
    calc = Module.concat(["Cluster#{n}", "Calc"])
    native = Module.concat(["Cluster#{n}", "Native"])

    project =
      Project.create(%{
        "lib/calc.ex" => Project.value_source(calc, 1),
        "lib/native.ex" => Project.value_source(native, 1)
      })

    peers = for i <- 1..3, do: start_peer(n, i, project)
    nodes = Enum.map(peers, &elem(&1, 1))
    for node <- nodes, do: {:module, ^native} = :erpc.call(node, Code, :ensure_loaded, [native])
    # Interpreting after the peers connected loads the interpreter's stubs on each of them.
    Project.interpret([calc])
    {:module, ^native} = Code.ensure_loaded(native)

    name = :"cluster_#{n}"

    start_supervised!(
      {DebugReload,
       project: project.root, name: name, mix_env: "dev", node_timeout: ctx[:node_timeout] || 15_000},
      id: name
    )

    Project.await_boot(name)

    on_exit(fn ->
      for {peer, _node} <- peers, do: stop_peer(peer)
      Project.cleanup(project, [calc, native])
    end)

    %{project: project, server: name, calc: calc, native: native, peers: peers, nodes: nodes}
  end

  defp start_peer(n, i, project) do
    paths = [project.ebin | Enum.map([:elixir, :logger], &to_string(:code.lib_dir(&1, :ebin)))]

    {:ok, peer, node} =
      :peer.start_link(%{
        name: :"peer_#{n}_#{i}",
        host: ~c"127.0.0.1",
        longnames: true,
        args: Enum.flat_map(paths, &[~c"-pa", String.to_charlist(&1)])
      })

    {peer, node}
  end

  # Until the manager is inside a remote load (after the compile, however
  # long that takes on a loaded machine): only then is the node's
  # departure "mid-reload".
  defp await_waiting_on_a_node(server, tries \\ 2_000) do
    {:current_stacktrace, frames} = Process.info(Process.whereis(server), :current_stacktrace)

    cond do
      Enum.any?(frames, &(elem(&1, 0) == DebugReload.Cluster)) -> :ok
      tries == 0 -> flunk("the reload never reached the remote load")
      true -> Process.sleep(5) && await_waiting_on_a_node(server, tries - 1)
    end
  end

  # Peers are linked to the test process and may be gone already.
  defp stop_peer(peer) do
    :peer.stop(peer)
  catch
    :exit, _ -> :ok
  end

  defp on_every_node(ctx, module) do
    for node <- ctx.nodes, into: %{}, do: {node, :erpc.call(node, module, :value, [], 10_000)}
  end

  test "a reload re-interprets and loads on every node; breakpoints stop processes on peers", ctx do
    :ok = :int.break(ctx.calc, 3)
    :ok = :int.disable_break(ctx.calc, 3)

    Project.write(ctx.project, "lib/calc.ex", Project.value_source(ctx.calc, 2))
    Project.write(ctx.project, "lib/native.ex", Project.value_source(ctx.native, 2))
    assert {:ok, report} = DebugReload.reload(server: ctx.server)
    assert Enum.any?(report.modules, &(&1.module == ctx.calc and &1.action == :reinterpreted))

    assert on_every_node(ctx, ctx.native) == Map.new(ctx.nodes, &{&1, 2})
    assert on_every_node(ctx, ctx.calc) == Map.new(ctx.nodes, &{&1, 2})
    assert [{{_, 3}, [:inactive | _]}] = :int.all_breaks(ctx.calc)

    # The one interpreter server the cluster shares holds the breakpoint:
    # a process on a peer stops at it.
    :ok = :int.enable_break(ctx.calc, 3)
    [node | _] = ctx.nodes
    pid = Node.spawn(node, ctx.calc, :value, [])
    assert Project.await_break(pid, 10_000) == {ctx.calc, 3}
    :int.continue(pid)
  end

  test "a node that stops answering and disconnects mid-reload rolls the reload back everywhere", ctx do
    Project.write(ctx.project, "lib/native.ex", Project.value_source(ctx.native, 2))
    Project.write(ctx.project, "lib/calc.ex", Project.value_source(ctx.calc, 2))
    [_, _, {last_peer, last}] = ctx.peers

    # Its code server stops serving, then the node goes away while the
    # reload waits on it.
    :ok = :erpc.call(last, :sys, :suspend, [:code_server])
    task = Task.async(fn -> DebugReload.reload(server: ctx.server) end)
    await_waiting_on_a_node(ctx.server)
    stop_peer(last_peer)

    assert {:error, report} = Task.await(task, 60_000)
    assert report.error =~ "rolled back"
    assert report.error =~ to_string(last)
    assert ctx.native.value() == 1
    assert Task.await(Task.async(fn -> ctx.calc.value() end)) == 1

    for node <- ctx.nodes -- [last] do
      assert :erpc.call(node, ctx.native, :value, []) == 1
      assert :erpc.call(node, ctx.calc, :value, [], 10_000) == 1
    end

    # Without that node the same edit now applies to the others.
    assert {:ok, _} = DebugReload.reload(server: ctx.server)

    for node <- ctx.nodes -- [last] do
      assert :erpc.call(node, ctx.native, :value, []) == 2
      assert :erpc.call(node, ctx.calc, :value, [], 10_000) == 2
    end
  end

  @tag node_timeout: 2_000
  test "a node that hangs but stays connected bounds an interpreted-only reload, which rolls back", ctx do
    :ok = :int.break(ctx.calc, 3)
    :ok = :int.disable_break(ctx.calc, 3)
    Project.write(ctx.project, "lib/calc.ex", Project.value_source(ctx.calc, 2))
    [_, _, {_last_peer, last}] = ctx.peers

    # `:int.ni/1` would wait for it forever.
    :ok = :erpc.call(last, :sys, :suspend, [:code_server])
    assert {:error, report} = DebugReload.reload(server: ctx.server)
    assert report.error =~ "rolled back"
    assert report.error =~ "#{last}: did not answer within 2000 ms"
    assert Task.await(Task.async(fn -> ctx.calc.value() end)) == 1
    assert [{{_, 3}, [:inactive | _]}] = :int.all_breaks(ctx.calc)

    for node <- ctx.nodes -- [last],
        do: assert(:erpc.call(node, ctx.calc, :value, [], 10_000) == 1)

    :ok = :erpc.call(last, :sys, :resume, [:code_server])
    assert {:ok, _} = DebugReload.reload(server: ctx.server)
    assert on_every_node(ctx, ctx.calc) == Map.new(ctx.nodes, &{&1, 2})
    assert [{{_, 3}, [:inactive | _]}] = :int.all_breaks(ctx.calc)
  end
end
