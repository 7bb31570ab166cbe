defmodule DebugReload.AsDependencyTest do
  # How ElixirLS uses us: as a path (or git) dependency of another project,
  # whose `mix compile` must build the NIF through our mix.exs compiler.
  use ExUnit.Case, async: false

  alias DebugReload.Test.Project

  @root Path.expand("../", __DIR__)

  test "a project depending on debug_reload compiles it, loads the NIF and reloads" do
    project =
      Project.create(
        %{"lib/host.ex" => "defmodule HostApp.Greeter do\n  def hi, do: :v1\nend\n"},
        deps: [{:debug_reload, path: @root}],
        compile: false
      )

    on_exit(fn -> File.rm_rf(project.root) end)

    {output, status} = Project.mix(project, ["compile"])
    assert status == 0, output

    assert File.exists?(
             Path.join(project.root, "_build/dev/lib/debug_reload/priv/native/debug_reload_nif.so")
           )

    script = """
    IO.puts("digest=" <> DebugReload.Native.digest_binary("x"))
    :int.ni(HostApp.Greeter)
    {:ok, _} = DebugReload.start_link()
    File.write!("lib/host.ex", "defmodule HostApp.Greeter do\\n  def hi, do: :v2\\nend\\n")
    {:ok, report} = DebugReload.reload()
    IO.puts("report=" <> to_string(report))
    IO.puts("now=" <> inspect(HostApp.Greeter.hi()))
    """

    {output, status} = Project.mix(project, ["run", "-e", script])
    assert status == 0, output
    assert output =~ "digest=" <> DebugReload.Native.digest_binary("x")
    assert output =~ ~r/report=Reloaded 1 of \d+ modules/
    assert output =~ "now=:v2"
  end
end
