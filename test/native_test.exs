defmodule DebugReload.NativeTest do
  use ExUnit.Case, async: true

  alias DebugReload.{Native, SourceTree}

  @moduletag :tmp_dir

  test "scans sources recursively and skips build directories", %{tmp_dir: dir} do
    File.mkdir_p!(Path.join(dir, "lib/deep"))
    File.mkdir_p!(Path.join(dir, "_build/dev"))
    File.write!(Path.join(dir, "lib/a.ex"), "a")
    File.write!(Path.join(dir, "lib/deep/b.erl"), "b")
    File.write!(Path.join(dir, "lib/notes.txt"), "x")
    File.write!(Path.join(dir, "_build/dev/c.ex"), "c")

    {snapshot, []} = Native.scan_sources([dir], [".ex", ".erl"])
    assert Map.keys(snapshot) |> Enum.sort() == [Path.join(dir, "lib/a.ex"), Path.join(dir, "lib/deep/b.erl")]
    assert snapshot[Path.join(dir, "lib/a.ex")] == Native.digest_binary("a")
  end

  test "change sets compare content digests within an optional scope" do
    old = %{"a" => "1", "b" => "2", "c" => "3"}
    new = %{"a" => "1", "b" => "9", "d" => "4"}

    assert %{changed: ["b"], added: ["d"], removed: ["c"], unchanged: 1} =
             Native.diff_snapshots(old, new, nil)

    assert %{changed: [], added: [], removed: ["c"]} = Native.diff_snapshots(old, new, ["c"])
  end

  test "a source tree reports changes against its baseline until they are accepted", %{tmp_dir: dir} do
    a = Path.join(dir, "lib/a.ex")
    b = Path.join(dir, "lib/b.ex")
    File.mkdir_p!(Path.dirname(a))
    File.write!(a, "a")
    File.write!(b, "b")
    {tree, []} = SourceTree.new([dir], [".ex"])
    assert tree.digests == %{a => Native.digest_binary("a"), b => Native.digest_binary("b")}

    assert {%{changed: [], added: [], removed: [], unchanged: 2, digests: %{}}, []} =
             SourceTree.changes(tree, nil)

    File.write!(a, "a2")
    File.rm!(b)
    c = Path.join(dir, "lib/c.ex")
    File.write!(c, "c")
    {changes, []} = SourceTree.changes(tree, nil)
    assert %{changed: [^a], added: [^c], removed: [^b]} = changes
    assert changes.digests == %{a => Native.digest_binary("a2"), c => Native.digest_binary("c")}
    # Only within the scope, and asking twice moves nothing.
    assert {%{changed: [], added: [], removed: [^b]}, []} = SourceTree.changes(tree, [b])
    assert {^changes, []} = SourceTree.changes(tree, nil)

    tree = SourceTree.accept(tree, changes)
    assert tree.digests == %{a => Native.digest_binary("a2"), c => Native.digest_binary("c")}
    assert {%{changed: [], added: [], removed: []}, []} = SourceTree.changes(tree, nil)

    # A forgotten path is new again, here and in Rust.
    tree = SourceTree.forget(tree, [c])
    refute SourceTree.member?(tree, c)
    assert {%{added: [^c]}, []} = SourceTree.changes(tree, nil)
  end

  test "a missing file in scope is absent, not an error", %{tmp_dir: dir} do
    {tree, []} = SourceTree.new([dir], [".ex"])

    assert {%{changed: [], added: [], removed: [], digests: digests}, []} =
             SourceTree.changes(tree, [Path.join(dir, "nope.ex")])

    assert digests == %{}
  end

  test "bad arguments raise ArgumentError instead of crashing the VM" do
    assert_raise ArgumentError, fn -> Native.scan_sources(:not_a_list, []) end
    assert_raise ArgumentError, fn -> Native.diff_snapshots(%{"a" => 1}, %{}, nil) end
    assert_raise ArgumentError, fn -> Native.remap_breakpoints(nil, nil, [{"f/0", 0, [0], -1}], [], [1]) end
  end

  test "remaps breakpoint lines across an edit with a reason for each" do
    old = "defmodule M do\n  def f(x) do\n    y = x + 1\n    y * 2\n  end\nend\n"
    new = "defmodule M do\n  # doc\n\n  def f(x) do\n    y = x + 1\n    y * 2\n  end\nend\n"

    assert [
             %{old_line: 3, new_line: 5, status: :moved},
             %{old_line: 4, new_line: 6, status: :moved},
             %{old_line: 1, new_line: 5, status: :relocated, reason: reason}
           ] = Native.remap_breakpoints(old, new, statements([3, 4]), statements([5, 6]), [3, 4, 1])

    assert reason =~ "never triggered"
  end

  defp statements(lines), do: lines |> Enum.with_index() |> Enum.map(fn {l, i} -> {"f/1", 0, [i], l} end)

  test "the NIF load error says how to build it" do
    message = Native.load_error_message(~c"/x/priv/native/debug_reload_nif", :load_failed, ~c"boom")
    assert message =~ "mix compile"
    assert message =~ "cargo"
  end
end
