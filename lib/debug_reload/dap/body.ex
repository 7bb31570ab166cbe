defmodule DebugReload.DAP.Body do
  @moduledoc """
  The `reloadCode` response body: a `DebugReload.Report` in DAP's camelCase
  JSON shape. The schema is `docs/reload_code_response.schema.json`.
  """

  alias DebugReload.Report

  @spec from_report(Report.t()) :: map()
  def from_report(%Report{} = r) do
    %{
      "status" => status(r.status),
      "summary" => Report.summary(r),
      "modules" => Enum.map(r.modules, &module_entry/1),
      "breakpoints" => Enum.map(r.breakpoints, &breakpoint_entry/1),
      "processes" => Enum.map(r.processes, &process_entry/1),
      "warnings" => r.warnings,
      "diagnostics" => Enum.map(r.diagnostics, &diagnostic/1),
      "files" => %{
        "changed" => r.files.changed,
        "added" => r.files.added,
        "removed" => r.files.removed
      },
      "timings" => timings(r.timings)
    }
    |> put_plan(r.plan)
  end

  defp put_plan(body, nil), do: body
  defp put_plan(body, plan), do: Map.put(body, "plan", DebugReload.Planner.to_map(plan))

  @doc "A DAP `Source` for a path."
  @spec source(String.t()) :: map()
  def source(path), do: %{"name" => Path.basename(path), "path" => path}

  @doc "The module name as users write it: `MyApp.Worker`, or `:erlang_mod`."
  @spec module_name(module() | nil) :: String.t() | nil
  def module_name(nil), do: nil
  def module_name(module), do: inspect(module)

  defp status(:dry_run), do: "dryRun"
  defp status(status), do: Atom.to_string(status)

  defp module_entry(m) do
    compact(%{
      "module" => module_name(m.module),
      "source" => m.source && source(m.source),
      "action" => camel(m.action),
      "reason" => m.reason
    })
  end

  defp breakpoint_entry(b) do
    compact(%{
      "module" => module_name(b.module),
      "source" => b.source && source(b.source),
      "oldLine" => b.old_line,
      "newLine" => b.new_line,
      "status" => Atom.to_string(b.status),
      "reason" => b.reason
    })
    |> Map.put_new("newLine", nil)
  end

  defp process_entry(p) do
    %{
      "pid" => p.pid |> :erlang.pid_to_list() |> List.to_string(),
      "module" => module_name(p.module),
      "status" => camel(p.status),
      "detail" => p.detail
    }
  end

  defp diagnostic(d) do
    compact(%{
      "source" => d.file && source(d.file),
      "line" => d.line,
      "severity" => Atom.to_string(d.severity),
      "message" => d.message
    })
  end

  defp timings(t) do
    ms = fn key -> Float.round(Map.get(t, key, 0) / 1000, 1) end

    %{
      "planMs" => ms.(:plan_us),
      "compileMs" => ms.(:compile_us),
      "loadMs" => ms.(:load_us),
      "breakpointsMs" => ms.(:breakpoints_us),
      "checksMs" => ms.(:checks_us),
      "totalMs" => ms.(:total_us)
    }
  end

  @doc false
  def camel(atom) do
    [first | rest] = atom |> Atom.to_string() |> String.split("_")
    Enum.join([first | Enum.map(rest, &String.capitalize/1)])
  end

  defp compact(map), do: map |> Enum.reject(fn {_, v} -> is_nil(v) end) |> Map.new()
end
