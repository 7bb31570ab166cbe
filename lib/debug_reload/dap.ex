defmodule DebugReload.DAP do
  @moduledoc """
  The Debug Adapter Protocol face of debug_reload: answers a `reloadCode`
  request (or its alias `hotReload`) for a debug adapter such as ElixirLS.

      {response, events} = DebugReload.DAP.handle_request(request, opts)

  `request` is the decoded request map. `response` is a complete DAP
  response; `events` are complete events without `"seq"`, in the order to
  send them. See `docs/dap.md` for the body schema and `docs/elixir_ls.md`
  for the integration.

  Options:

    * `:server` - the `DebugReload.CodeReloadManager` (default `DebugReload`)
    * `:breakpoint_ids` - `%{{path, line} => id}` of the adapter's breakpoints
    * `:thread_ids` - `%{pid => thread_id}`
    * `:send_event` - a 1-arity function; when given, `progressStart` is sent
      through it as soon as a reload takes longer than 300 ms, instead of
      being returned with the other events at the end
    * `:timeout` - ms (default 600_000)
  """

  alias DebugReload.DAP.{Arguments, Body, Events}
  alias DebugReload.{Interpreter, Report}

  @commands ["reloadCode", "hotReload"]
  @progress_after_ms 300

  @doc "Capabilities to merge into the `initialize` response body."
  @spec capabilities() :: map()
  def capabilities, do: %{"supportsReloadCodeRequest" => true, "supportsHotReload" => true}

  @doc "The request commands this module answers."
  @spec commands() :: [String.t()]
  def commands, do: @commands

  @spec handle_request(map(), keyword()) :: {map(), [map()]}
  def handle_request(%{"command" => command} = request, opts) when command in @commands do
    with {:ok, args} <- Arguments.parse(Map.get(request, "arguments")),
         {:ok, paths} <- resolve_modules(args),
         :ok <- ensure_interpreting() do
      reload(request, args, paths, opts)
    else
      {:error, message} -> {error_response(request, message, %{}), []}
    end
  end

  def handle_request(%{"command" => command} = request, _opts),
    do: {error_response(request, "unsupported request #{inspect(command)}", %{}), []}

  @doc "The events that tell a client about `report` (also for reloads nobody requested)."
  @spec events_for(Report.t(), keyword()) :: [map()]
  def events_for(report, opts \\ []), do: Events.for_report(report, opts)

  defp reload(request, args, paths, opts) do
    reload_opts =
      [dry_run: args.dry_run, force: args.force, server: Keyword.get(opts, :server, DebugReload)]
      |> put_paths(paths)
      |> Keyword.put(:timeout, Keyword.get(opts, :timeout, 600_000))

    progress_id = "debug_reload-#{System.unique_integer([:positive])}"
    task = Task.async(fn -> DebugReload.reload(reload_opts) end)

    {result, progress} =
      case Task.yield(task, @progress_after_ms) do
        {:ok, result} ->
          {result, []}

        nil ->
          start = Events.progress_start(progress_id, "Reloading code")
          sent? = send_live(opts, start)
          {Task.await(task, :infinity), if(sent?, do: [:sent], else: [start])}
      end

    {tag, report} = result
    progress_end = if progress == [], do: [], else: [Events.progress_end(progress_id, Report.summary(report))]
    progress_start = Enum.reject(progress, &(&1 == :sent))
    events = progress_start ++ events_for(report, opts) ++ progress_end

    case tag do
      :ok -> {response(request, true, %{"body" => Body.from_report(report)}), events}
      :error -> {error_response(request, one_line(report.error), Body.from_report(report)), events}
    end
  end

  defp send_live(opts, event) do
    case Keyword.get(opts, :send_event) do
      fun when is_function(fun, 1) -> fun.(event) && true
      _ -> false
    end
  end

  defp put_paths(opts, nil), do: opts
  defp put_paths(opts, paths), do: Keyword.put(opts, :paths, paths)

  defp resolve_modules(%{paths: paths, modules: nil}), do: {:ok, paths}

  defp resolve_modules(%{paths: paths, modules: modules}) do
    Enum.reduce_while(modules, {:ok, paths || []}, fn module, {:ok, acc} ->
      case source_of(module) do
        {:ok, source} ->
          {:cont, {:ok, acc ++ [source]}}

        :error ->
          {:halt, {:error, "modules: #{Body.module_name(module)} is not a loaded module with a source file"}}
      end
    end)
  end

  defp source_of(module) do
    case DebugReload.Beam.loaded_source(module) do
      nil -> :error
      source -> {:ok, source}
    end
  end

  defp ensure_interpreting do
    if Interpreter.interpreted() == [],
      do: {:error, "no module is interpreted: start the debug session before reloading"},
      else: :ok
  end

  defp response(request, success, extra) do
    Map.merge(
      %{
        "type" => "response",
        "request_seq" => Map.get(request, "seq", 1),
        "command" => Map.get(request, "command"),
        "success" => success
      },
      extra
    )
  end

  defp error_response(request, message, body) do
    error = %{"id" => 4001, "format" => message, "showUser" => true}
    response(request, false, %{"message" => message, "body" => Map.put(body, "error", error)})
  end

  defp one_line(nil), do: "reload failed"
  defp one_line(text), do: text |> String.split("\n", parts: 2) |> hd()
end
