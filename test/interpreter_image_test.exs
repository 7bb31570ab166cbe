defmodule DebugReload.InterpreterImageTest do
  # `:int.i/1` split in two (DebugReload.Interpreter.Image): the image is
  # built apart from the load, and the load must leave the interpreter as
  # `:int.i/1` does. The reload must take that path.
  use ExUnit.Case, async: false

  alias DebugReload.{ExecutableLines, Interpreter}
  alias DebugReload.Interpreter.Image
  alias DebugReload.Test.Project

  setup do
    mod = Module.concat(["Img#{System.unique_integer([:positive])}", Value])
    project = Project.create(%{"lib/value.ex" => Project.value_source(mod, 1)})
    on_exit(fn -> Project.cleanup(project, [mod]) end)
    %{mod: mod, project: project}
  end

  defp image(mod, project) do
    path = Path.join(project.ebin, "#{mod}.beam")
    source = Project.path(project, "lib/value.ex")
    beam = File.read!(path)
    {:ok, forms} = ExecutableLines.abstract_code(beam)
    {:ok, image} = Image.build(mod, source, path, beam, forms, File.read!(source))
    image
  end

  defp value_in_process(mod) do
    parent = self()
    pid = spawn(fn -> send(parent, {:value, mod.value()}) end)
    {pid, fn -> assert_receive({:value, value}, 5_000) && value end}
  end

  test "this OTP's debugger takes images" do
    assert Image.supported?()
  end

  test "a loaded image is interpreted as :int.i/1 leaves it: calls are interpreted and break", ctx do
    assert :ok = Image.load(image(ctx.mod, ctx.project))
    assert ctx.mod in :int.interpreted()

    :ok = :int.break(ctx.mod, 3)
    {pid, value} = value_in_process(ctx.mod)
    assert Project.await_break(pid) == {ctx.mod, 3}
    :int.continue(pid)
    assert value.() == 1
  end

  test "the interpreter keeps the text a module was interpreted from, by :int.ni/1 or an image", ctx do
    source = Project.path(ctx.project, "lib/value.ex")
    assert Interpreter.interpreted_text(ctx.mod) == nil

    Project.interpret([ctx.mod])
    first = File.read!(source)
    Project.write(ctx.project, "lib/value.ex", Project.value_source(ctx.mod, 2))
    assert Interpreter.interpreted_text(ctx.mod) == first

    {_, 0} = Project.mix(ctx.project, ["compile"])
    :int.n(ctx.mod)
    assert :ok = Image.load(image(ctx.mod, ctx.project))
    assert Interpreter.interpreted_text(ctx.mod) == File.read!(source)
    refute Interpreter.interpreted_text(ctx.mod) == first
  end

  test "an image of another beam is not used: the interpreter builds its own", ctx do
    stale = image(ctx.mod, ctx.project)
    Project.write(ctx.project, "lib/value.ex", Project.value_source(ctx.mod, 2))
    {_, 0} = Project.mix(ctx.project, ["compile", "--force"])
    path = Path.join(ctx.project.ebin, "#{ctx.mod}.beam")
    source = Project.path(ctx.project, "lib/value.ex")

    assert :ok = Interpreter.load(ctx.mod, source, path, File.read!(path), image: fn -> stale end)
    {_pid, value} = value_in_process(ctx.mod)
    assert value.() == 2
  end

  test "stubs loaded under an interpreted module keep its calls interpreted, on the old code until its database moves",
       ctx do
    Project.interpret([ctx.mod])
    :ok = :int.break(ctx.mod, 3)
    old_md5 = :erlang.get_module_info(ctx.mod, :md5)
    # A size of its own: Mix (1.14) skips a same-size edit within the second.
    Project.write(ctx.project, "lib/value.ex", Project.value_source(ctx.mod, 20))
    {_, 0} = Project.mix(ctx.project, ["compile"])
    new = image(ctx.mod, ctx.project)
    refute :code.module_md5(new.binary) == old_md5

    assert :ok = Image.load_stubs([{ctx.mod, Path.join(ctx.project.ebin, "#{ctx.mod}.beam"), new.binary}])
    assert :erlang.get_module_info(ctx.mod, :md5) == :code.module_md5(new.binary)
    {pid, value} = value_in_process(ctx.mod)
    assert Project.await_break(pid) == {ctx.mod, 3}
    :int.continue(pid)
    assert value.() == 1

    assert :ok = Image.load(%{new | native: :loaded})
    {pid, value} = value_in_process(ctx.mod)
    assert Project.await_break(pid) == {ctx.mod, 3}
    :int.continue(pid)
    assert value.() == 20

    # Once no longer interpreted, the stub is the code that runs.
    :int.n(ctx.mod)
    assert ctx.mod.value() == 20
  end

  test "a reload interprets the edited module through its image", ctx do
    Project.interpret([ctx.mod])
    name = :"image_#{System.unique_integer([:positive])}"
    start_supervised!({DebugReload, project: ctx.project.root, name: name, mix_env: "dev"})
    Project.await_boot(name)

    manager = Process.whereis(name)
    :erlang.trace(manager, true, [:call, :set_on_spawn])
    :erlang.trace_pattern({Image, :load, 1}, true, [:local])
    :erlang.trace_pattern({Image, :load_stubs, 1}, true, [:local])

    on_exit(fn ->
      :erlang.trace_pattern({Image, :load, 1}, false, [:local])
      :erlang.trace_pattern({Image, :load_stubs, 1}, false, [:local])
    end)

    Project.write(ctx.project, "lib/value.ex", Project.value_source(ctx.mod, 3))
    assert {:ok, report} = DebugReload.reload(server: name)
    assert [%{action: :reinterpreted}] = report.modules
    # Trace messages are not ordered with the reply.
    assert_receive {:trace, ^manager, :call, {Image, :load, [%Image{module: module, native: native}]}}, 5_000
    assert module == ctx.mod
    # Its native stub loaded apart, beside the swap (in a task of the manager).
    assert native == :loaded
    assert_receive {:trace, _task, :call, {Image, :load_stubs, [[{^module, _path, _beam}]]}}, 5_000

    {_pid, value} = value_in_process(ctx.mod)
    assert value.() == 3
  end
end
