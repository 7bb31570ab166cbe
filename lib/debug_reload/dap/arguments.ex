defmodule DebugReload.DAP.Arguments do
  @moduledoc """
  Validates the arguments of a `reloadCode` request and turns them into
  `DebugReload.reload/1` options. Every error names the offending field.
  """

  @reasons ["manual", "save"]

  @type t :: %{
          paths: [String.t()] | nil,
          modules: [module()] | nil,
          dry_run: boolean(),
          force: boolean(),
          reason: String.t()
        }

  @spec parse(term()) :: {:ok, t()} | {:error, String.t()}
  def parse(nil), do: parse(%{})

  def parse(args) when is_map(args) do
    with {:ok, paths} <- sources(Map.get(args, "sources")),
         {:ok, modules} <- modules(Map.get(args, "modules")),
         {:ok, dry_run} <- boolean(args, "dryRun"),
         {:ok, force} <- boolean(args, "force"),
         {:ok, reason} <- reason(Map.get(args, "reason", "manual")) do
      {:ok, %{paths: paths, modules: modules, dry_run: dry_run, force: force, reason: reason}}
    end
  end

  def parse(other), do: {:error, "arguments must be an object, got #{describe(other)}"}

  defp sources(nil), do: {:ok, nil}

  defp sources(list) when is_list(list) do
    list
    |> Enum.with_index()
    |> Enum.reduce_while({:ok, []}, fn
      {%{"path" => path}, _i}, {:ok, acc} when is_binary(path) and path != "" ->
        {:cont, {:ok, [path | acc]}}

      {%{"path" => other}, i}, _ ->
        {:halt, {:error, "sources[#{i}].path must be a non-empty string, got #{describe(other)}"}}

      {%{}, i}, _ ->
        {:halt, {:error, "sources[#{i}] has no path"}}

      {other, i}, _ ->
        {:halt, {:error, "sources[#{i}] must be a Source object, got #{describe(other)}"}}
    end)
    |> case do
      {:ok, paths} -> {:ok, Enum.reverse(paths)}
      error -> error
    end
  end

  defp sources(other), do: {:error, "sources must be a list of Source objects, got #{describe(other)}"}

  defp modules(nil), do: {:ok, nil}

  defp modules(list) when is_list(list) do
    if Enum.all?(list, &(is_binary(&1) and &1 != "")) do
      {:ok, Enum.map(list, &module_atom/1)}
    else
      bad = Enum.find(list, &(not is_binary(&1) or &1 == ""))
      {:error, "modules must be a list of module names, got #{describe(bad)} in it"}
    end
  end

  defp modules(other), do: {:error, "modules must be a list of module names, got #{describe(other)}"}

  # "MyApp.Worker" and "Elixir.MyApp.Worker" are Elixir modules, ":mod" and
  # lowercase names Erlang modules.
  defp module_atom(":" <> erlang), do: String.to_atom(erlang)
  defp module_atom("Elixir." <> _ = name), do: String.to_atom(name)

  defp module_atom(<<first, _::binary>> = name) when first in ?A..?Z,
    do: String.to_atom("Elixir." <> name)

  defp module_atom(name), do: String.to_atom(name)

  defp boolean(args, key) do
    case Map.get(args, key, false) do
      value when is_boolean(value) -> {:ok, value}
      other -> {:error, "#{key} must be a boolean, got #{describe(other)}"}
    end
  end

  defp reason(reason) when reason in @reasons, do: {:ok, reason}

  defp reason(other),
    do: {:error, "reason must be one of #{Enum.join(@reasons, ", ")}, got #{describe(other)}"}

  defp describe(value) when is_binary(value), do: inspect(value)
  defp describe(nil), do: "null"
  defp describe(value) when is_list(value), do: "an array"
  defp describe(value) when is_map(value), do: "an object"
  defp describe(value), do: inspect(value)
end
