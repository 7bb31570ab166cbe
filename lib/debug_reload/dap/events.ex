defmodule DebugReload.DAP.Events do
  @moduledoc """
  The DAP events that tell a client what a reload changed, in the order it
  needs them: sources first (so it can refresh them), then breakpoints
  (which live in those sources), then `invalidated` for stopped threads
  whose code changed, then a one-line `output` summary.

  Events carry no `seq`: the adapter numbers them when it sends them.
  """

  alias DebugReload.DAP.Body
  alias DebugReload.Report

  @doc """
  Options:

    * `:breakpoint_ids` - `%{{path, line} => id}` of the adapter's
      breakpoints, so `breakpoint` events name them
    * `:thread_ids` - `%{pid => thread_id}`, so `invalidated` events name
      the stopped threads
  """
  @spec for_report(Report.t(), keyword()) :: [map()]
  def for_report(%Report{status: status}, _opts) when status in [:noop, :dry_run, :error, :deferred], do: []

  def for_report(%Report{} = report, opts) do
    loaded_sources(report) ++
      breakpoints(report, Keyword.get(opts, :breakpoint_ids, %{})) ++
      invalidated(report, Keyword.get(opts, :thread_ids, %{})) ++
      [output(report)]
  end

  @doc "The console output event with the report's summary line."
  @spec output(Report.t()) :: map()
  def output(report),
    do: event("output", %{"category" => "console", "output" => Report.summary(report) <> "\n"})

  @spec progress_start(String.t(), String.t()) :: map()
  def progress_start(id, title),
    do: event("progressStart", %{"progressId" => id, "title" => title, "cancellable" => false})

  @spec progress_end(String.t(), String.t()) :: map()
  def progress_end(id, message), do: event("progressEnd", %{"progressId" => id, "message" => message})

  defp loaded_sources(report) do
    reloaded =
      report
      |> Report.reloaded_modules()
      |> Enum.map(& &1.source)
      |> Enum.reject(&is_nil/1)
      |> Enum.uniq()
      |> Kernel.--(report.files.added)

    Enum.map(reloaded, &loaded_source("changed", &1)) ++
      Enum.map(report.files.added, &loaded_source("new", &1)) ++
      Enum.map(report.files.removed, &loaded_source("removed", &1))
  end

  defp loaded_source(reason, path),
    do: event("loadedSource", %{"reason" => reason, "source" => Body.source(path)})

  defp breakpoints(report, ids) do
    for bp <- report.breakpoints, bp.status != :kept do
      id = Map.get(ids, {bp.source, bp.old_line})

      breakpoint =
        %{"verified" => bp.new_line != nil, "message" => bp.reason}
        |> put_if("id", id)
        |> put_if("line", bp.new_line)
        |> put_if("source", bp.source && Body.source(bp.source))

      reason = if bp.status == :removed, do: "removed", else: "changed"
      event("breakpoint", %{"reason" => reason, "breakpoint" => breakpoint})
    end
  end

  defp invalidated(report, thread_ids) do
    for %{pid: pid} <- report.processes, uniq: true do
      body = put_if(%{"areas" => ["stacks", "variables"]}, "threadId", Map.get(thread_ids, pid))
      event("invalidated", body)
    end
  end

  defp event(name, body), do: %{"type" => "event", "event" => name, "body" => body}

  defp put_if(map, _key, nil), do: map
  defp put_if(map, key, value), do: Map.put(map, key, value)
end
