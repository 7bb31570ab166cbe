defmodule DebugReload.Test.MixNode do
  @moduledoc """
  One warm Mix node (an OTP `:peer`) that compiles many test projects in
  turn, each with Mix's own `compile` task inside `Mix.Project.in_project/3`,
  so a test can run hundreds of real compiles without starting Mix each
  time. Its output is captured and returned, never printed.
  """

  alias DebugReload.Test.MixNode.Remote

  @timeout 120_000

  @doc "Starts the node; it stops with the caller."
  def start do
    paths =
      for app <- [:elixir, :mix, :logger, :eex, :debug_reload],
          dir = ebin(app),
          arg <- [~c"-pa", String.to_charlist(dir)],
          do: arg

    {:ok, peer} =
      case :peer.start_link(%{connection: :standard_io, args: paths, wait_boot: 60_000}) do
        {:ok, peer} -> {:ok, peer}
        {:ok, peer, _node} -> {:ok, peer}
      end

    :ok = :peer.call(peer, Remote, :boot, [], @timeout)
    peer
  end

  def stop(peer), do: :peer.stop(peer)

  @doc "Runs `mix compile args` in the project; returns `{status, output}`."
  def compile(peer, app, root, args \\ []),
    do: :peer.call(peer, Remote, :compile, [app, root, args], @timeout)

  defp ebin(:debug_reload), do: :code.which(Remote) |> to_string() |> Path.dirname()

  defp ebin(app) do
    case :code.lib_dir(app, :ebin) do
      {:error, _} -> nil
      dir -> to_string(dir)
    end
  end
end

defmodule DebugReload.Test.MixNode.Remote do
  @moduledoc false
  # Runs inside the peer.

  def boot do
    {:ok, _} = Application.ensure_all_started(:mix)
    Mix.env(:dev)
    :ok
  end

  def compile(app, root, args) do
    capture(fn ->
      Mix.Task.clear()

      Mix.Project.in_project(app, root, fn _ ->
        Mix.Task.run("compile", ["--no-deps-check", "--no-archives-check" | args])
      end)
    end)
  end

  # stdout and stderr into one string: the peer's stdout is its link to us.
  defp capture(fun) do
    {:ok, device} = StringIO.open("")
    previous_gl = Process.group_leader()
    previous_err = Process.whereis(:standard_error)
    Process.group_leader(self(), device)
    swap(:standard_error, previous_err, device)

    try do
      result =
        try do
          fun.()
        rescue
          e -> {:raised, Exception.format(:error, e, __STACKTRACE__)}
        end

      {result, device |> StringIO.contents() |> elem(1)}
    after
      Process.group_leader(self(), previous_gl)
      swap(:standard_error, device, previous_err)
      StringIO.close(device)
    end
  end

  defp swap(name, from, to) do
    if from && to && Process.whereis(name) == from do
      Process.unregister(name)
      Process.register(to, name)
    end
  end
end
