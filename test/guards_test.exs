defmodule DebugReload.GuardsTest do
  # Safe reload windows (on_busy) and the guards from the design documents,
  # on real projects and real processes.
  use ExUnit.Case, async: false

  alias DebugReload.Test.Project

  setup do
    n = System.unique_integer([:positive])
    ns = "Guard#{n}"
    busy = Module.concat([ns, "Busy"])
    interpreted = Module.concat([ns, "Interp"])
    proto = Module.concat([ns, "Shape"])
    circle = Module.concat([ns, "Circle"])
    square = Module.concat([ns, "Square"])
    funs = Module.concat([ns, "Funs"])

    files = %{
      "lib/busy.ex" => busy_source(busy, 1),
      "lib/interp.ex" => Project.value_source(interpreted, 1),
      "lib/shape.ex" => shape_source(proto, circle, nil),
      "lib/funs.ex" => Project.value_source(funs, 1, "  def make, do: fn -> value() end\n")
    }

    project = Project.create(files)
    Project.interpret([interpreted])
    for m <- [busy, funs], do: {:module, ^m} = Code.ensure_loaded(m)

    name = :"guards_#{n}"
    on_exit(fn -> Project.cleanup(project, [busy, interpreted, proto, circle, square, funs]) end)

    %{
      project: project,
      name: name,
      busy: busy,
      interpreted: interpreted,
      proto: proto,
      circle: circle,
      square: square,
      funs: funs
    }
  end

  defp start_manager(ctx, opts \\ []) do
    opts = [project: ctx.project.root, name: ctx.name, mix_env: "dev"] ++ opts
    start_supervised!({DebugReload, opts}, id: ctx.name)
    Project.await_boot(ctx.name)
  end

  # `hold/1` waits inside the module (natively) until told to go.
  defp busy_source(mod, value) do
    """
    defmodule #{inspect(mod)} do
      def value, do: #{value}

      def hold(parent) do
        send(parent, {:holding, self()})
        receive do
          :go -> value()
        end
      end

      # Calls out of the module and is still inside it until `fun` returns.
      def around(fun), do: {:done, fun.()}
    end
    """
  end

  defp shape_source(proto, circle, square) do
    """
    defprotocol #{inspect(proto)} do
      def sides(shape)
    end

    defmodule #{inspect(circle)} do
      defstruct []
    end

    defimpl #{inspect(proto)}, for: #{inspect(circle)} do
      def sides(_), do: 0
    end
    """ <>
      if square do
        """

        defmodule #{inspect(square)} do
          defstruct []
        end

        defimpl #{inspect(proto)}, for: #{inspect(square)} do
          def sides(_), do: 4
        end
        """
      else
        ""
      end
  end

  # Distinct functions calling each other, more than a process's current
  # stacktrace shows (the `backtrace_depth` flag: 8 by default, 20 under
  # ExUnit); it also folds repeated frames, so recursion would not do.
  for level <- 1..29 do
    defp unquote(:"nested_#{level}")(parent), do: {unquote(:"nested_#{level + 1}")(parent)}
  end

  defp nested_30(parent) do
    send(parent, {:holding, self()})
    receive do: (:go -> :ok)
  end

  defp holding(ctx) do
    test = self()
    pid = spawn(fn -> ctx.busy.hold(test) end)
    assert_receive {:holding, ^pid}, 5_000
    on_exit(fn -> Process.exit(pid, :kill) end)
    pid
  end

  describe "on_busy" do
    test ":cancel gives the reload up and leaves the running process alone", ctx do
      start_manager(ctx, busy_timeout: 100)
      pid = holding(ctx)
      Project.write(ctx.project, "lib/busy.ex", busy_source(ctx.busy, 2))

      assert {:error, report} = DebugReload.reload(server: ctx.name, on_busy: :cancel)
      assert report.error =~ "cancelled"
      assert report.error =~ inspect(pid)
      assert ctx.busy.value() == 1
      assert Process.alive?(pid)
    end

    test "a process deep in calls made from inside the module counts as inside it", ctx do
      start_manager(ctx, busy_timeout: 100)
      test = self()
      pid = spawn(fn -> ctx.busy.around(fn -> nested_1(test) end) end)
      assert_receive {:holding, ^pid}, 5_000
      on_exit(fn -> Process.exit(pid, :kill) end)
      Project.write(ctx.project, "lib/busy.ex", busy_source(ctx.busy, 2))

      assert {:error, report} = DebugReload.reload(server: ctx.name, on_busy: :cancel)
      assert report.error =~ "cancelled" and report.error =~ inspect(pid)
      assert ctx.busy.value() == 1
    end

    test ":proceed reloads with a warning; the busy process finishes on the old code", ctx do
      start_manager(ctx, busy_timeout: 100, on_busy: :proceed)
      pid = holding(ctx)
      ref = Process.monitor(pid)
      Project.write(ctx.project, "lib/busy.ex", busy_source(ctx.busy, 2))

      assert {:ok, report} = DebugReload.reload(server: ctx.name)
      assert Enum.any?(report.warnings, &(&1 =~ "reloaded while busy" and &1 =~ inspect(pid)))
      assert ctx.busy.value() == 2
      send(pid, :go)
      assert_receive {:DOWN, ^ref, :process, ^pid, :normal}, 5_000
    end

    test ":wait defers the reload and applies it once the process leaves", ctx do
      start_manager(ctx, busy_timeout: 100)
      DebugReload.subscribe(ctx.name)
      pid = holding(ctx)
      Project.write(ctx.project, "lib/busy.ex", busy_source(ctx.busy, 2))

      assert {:error, report} = DebugReload.reload(server: ctx.name)
      assert report.status == :deferred
      assert report.error =~ inspect(pid)
      assert ctx.busy.value() == 1

      send(pid, :go)
      assert_receive {:debug_reload, %{status: :ok} = later}, 60_000
      assert Enum.any?(later.modules, &(&1.module == ctx.busy and &1.action == :reloaded))
      assert ctx.busy.value() == 2
    end
  end

  test "an interpreted module that gains @on_load is reloaded natively with a warning", ctx do
    start_manager(ctx)
    :ok = :int.break(ctx.interpreted, 3)
    on_load = "  @on_load :ready\n  def ready, do: :ok\n"
    Project.write(ctx.project, "lib/interp.ex", Project.value_source(ctx.interpreted, 2, on_load))

    assert {:ok, report} = DebugReload.reload(server: ctx.name)

    assert [%{action: :reloaded, reason: reason}] =
             Enum.filter(report.modules, &(&1.module == ctx.interpreted))

    assert reason =~ "no longer interpretable"
    assert Enum.any?(report.warnings, &(&1 =~ "@on_load"))
    refute ctx.interpreted in :int.interpreted()
    assert ctx.interpreted.value() == 2
  end

  test "a new module without debug_info matching the patterns is loaded natively with a warning", ctx do
    start_manager(ctx, interpret: ["#{inspect(ctx.interpreted)}*"])
    plain = Module.concat(ctx.interpreted, Plain)
    source = Project.value_source(plain, 7, "  @compile {:debug_info, false}\n")
    Project.write(ctx.project, "lib/plain.ex", source)

    assert {:ok, report} = DebugReload.reload(server: ctx.name)
    assert [%{action: :loaded}] = Enum.filter(report.modules, &(&1.module == plain))
    assert Enum.any?(report.warnings, &(&1 =~ "no debug_info"))
    refute plain in :int.interpreted()
    assert plain.value() == 7
    :code.purge(plain) && :code.delete(plain)
  end

  for {file, edit} <- [
        {"mix.exs", :append},
        {"config/config.exs", :create},
        {"mix.lock", :create},
        {"config/runtime/extra.exs", :create},
        {"deps/fetched/mix.exs", :create}
      ] do
    test "a change to #{file} is rejected as restart needed, then undone", ctx do
      start_manager(ctx)
      path = Project.path(ctx.project, unquote(file))
      before = File.read(path)
      Project.write(ctx.project, "lib/interp.ex", Project.value_source(ctx.interpreted, 2))

      case unquote(edit) do
        :append -> File.write!(path, "\n# edited\n", [:append])
        :create -> Project.write(ctx.project, unquote(file), "import Config\n")
      end

      assert {:error, report} = DebugReload.reload(server: ctx.name)
      assert report.error =~ "restart needed"
      assert report.error =~ unquote(file)
      assert ctx.interpreted.value() == 1

      case before do
        {:ok, text} -> File.write!(path, text)
        {:error, :enoent} -> File.rm!(path)
      end

      assert {:ok, _} = DebugReload.reload(server: ctx.name)
      assert Task.await(Task.async(fn -> ctx.interpreted.value() end)) == 2
    end
  end

  test "a new implementation of a consolidated protocol dispatches after the reload", ctx do
    consolidated = Path.join(ctx.project.root, "_build/dev/lib/#{ctx.project.app}/consolidated")
    # A VM started by `mix run` has the consolidated protocols first in its path.
    Code.prepend_path(consolidated)
    on_exit(fn -> Code.delete_path(consolidated) end)
    :code.purge(ctx.proto) && :code.delete(ctx.proto)
    {:module, _} = Code.ensure_loaded(ctx.proto)
    assert Protocol.consolidated?(ctx.proto)
    start_manager(ctx)
    # The protocol's plain beam in the ebin is not the code this VM runs,
    # and not a difference to load either.
    assert {:ok, %{status: :noop}} = DebugReload.reload(server: ctx.name)

    Project.write(ctx.project, "lib/shape.ex", shape_source(ctx.proto, ctx.circle, ctx.square))
    assert {:ok, report} = DebugReload.reload(server: ctx.name)
    assert Enum.any?(report.modules, &(&1.module == ctx.proto and &1.source =~ "shape.ex"))
    assert Protocol.consolidated?(ctx.proto)
    assert ctx.proto.sides(struct(ctx.square)) == 4
    assert ctx.proto.sides(struct(ctx.circle)) == 0
  end

  test "funs of the replaced code keep working until the next reload, which names their holders first", ctx do
    start_manager(ctx)
    fun = ctx.funs.make()
    holder = spawn(fn -> serve_fun(fun) end)
    on_exit(fn -> Process.exit(holder, :kill) end)

    write_funs =
      &Project.write(
        ctx.project,
        "lib/funs.ex",
        Project.value_source(ctx.funs, &1, "  def make, do: fn -> value() end\n")
      )

    write_funs.(2)
    assert {:ok, report} = DebugReload.reload(server: ctx.name)
    assert Enum.any?(report.warnings, &(&1 =~ "hold funs of the old version" and &1 =~ inspect(holder)))
    assert ctx.funs.value() == 2
    # The manager's work after the reply (purging old code) is done by now.
    :sys.get_state(ctx.name)
    assert call_held_fun(holder) == {:ok, 1}

    write_funs.(3)
    assert {:ok, report} = DebugReload.reload(server: ctx.name)
    assert Enum.any?(report.warnings, &(&1 =~ "was purged" and &1 =~ inspect(holder)))
    assert ctx.funs.value() == 3
    assert {:error, %BadFunctionError{}} = call_held_fun(holder)
  end

  defp serve_fun(fun) do
    receive do
      {:call, from} ->
        send(from, {:held_fun, try(do: {:ok, fun.()}, rescue: (e -> {:error, e}))})
        serve_fun(fun)
    end
  end

  defp call_held_fun(holder) do
    send(holder, {:call, self()})
    assert_receive {:held_fun, result}, 5_000
    result
  end
end
