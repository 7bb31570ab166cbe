defmodule Mix.Tasks.DebugReload.PlanTest do
  use ExUnit.Case, async: false

  import ExUnit.CaptureIO
  alias DebugReload.Test.Project

  setup do
    ns = "PlanTask#{System.unique_integer([:positive])}"

    project =
      Project.create(%{
        "lib/web.ex" =>
          "defmodule #{ns}.Web do\n  defmacro __using__(_), do: quote(do: def(web?, do: true))\n  def helper, do: 1\nend\n",
        "lib/router.ex" => "defmodule #{ns}.Router do\n  use #{ns}.Web\n  def route, do: :ok\nend\n",
        "lib/page.ex" =>
          "defmodule #{ns}.Page do\n  import #{ns}.Web, only: [helper: 0]\n  def show, do: helper()\nend\n"
      })

    on_exit(fn -> File.rm_rf(project.root) end)
    %{project: project, ns: ns}
  end

  # In the fixture, as `mix debug_reload.plan` would run there: its env is
  # dev, and Mix's "==> app" banner is not part of the task's output.
  defp run_task(project, args) do
    env = Mix.env()

    try do
      Mix.env(:dev)

      capture_io(fn ->
        Mix.Project.in_project(project.app, project.root, fn _ ->
          Mix.Task.rerun("debug_reload.plan", args)
        end)
      end)
      |> String.replace(~r/\A==> \S+\n/, "")
    after
      Mix.env(env)
    end
  end

  test "prints the plan as a tree, conditional parts marked", %{project: project, ns: ns} do
    output = run_task(project, ["lib/web.ex", "lib/gone.ex"])

    assert output =~ "2 changed files: 2 files to recompile, 1 more if exports change (before compiling)"

    assert output =~ """
           #{ns}.Web changed (lib/web.ex)  [recompile]
           ├─ #{ns}.Router  compile-time (`use #{ns}.Web` at lib/router.ex:2)  [recompile]
           └─ if the exports of #{ns}.Web change
              └─ #{ns}.Page  export (`import #{ns}.Web, only: [helper: 0]` at lib/page.ex:2)  [recompile, if the exports of #{ns}.Web change]
           """

    assert output =~ "unknown: lib/gone.ex: not in the compile manifests"
  end

  test "--format json is the plan's JSON", %{project: project} do
    output = run_task(project, ["--format", "json", "lib/router.ex"])

    assert {:ok,
            %{"resolved" => false, "files" => [%{"path" => path, "explanation" => "lib/router.ex changed"}]}} =
             DebugReload.Native.decode_json(String.trim(output))

    assert path == Project.path(project, "lib/router.ex")
  end

  test "with no files, what changed since the last compile", %{project: project} do
    assert run_task(project, []) =~ "Nothing changed since the last compile."

    Project.write(
      project,
      "lib/new.ex",
      "defmodule PlanTaskNew#{System.unique_integer([:positive])} do\nend\n"
    )

    assert run_task(project, []) =~
             "1 changed file: 1 file to recompile (before compiling)\n\nlib/new.ex is new"
  end

  test "a bad --format is an error", %{project: project} do
    assert_raise Mix.Error, ~r/--format must be text or json/, fn ->
      run_task(project, ["--format", "xml"])
    end
  end
end
