defmodule DebugReload.Protocols do
  @moduledoc """
  Protocol consolidation across a reload.

  The compile worker runs Mix's whole compile task, which consolidates
  protocols again when an implementation appears or changes. When this VM
  runs consolidated protocols (as `mix run` and `iex -S mix` do), the
  re-consolidated protocol beams are the ones to load: their dispatch table
  is what makes a new `defimpl` reachable. A VM that runs unconsolidated
  protocols keeps loading the plain beams.
  """

  alias DebugReload.Project

  @doc """
  Splits changed beams into those to load and those this VM does not run:
  the plain beam of a protocol it runs consolidated, or the consolidated
  beam of one it runs plain.
  """
  @spec select([DebugReload.Beam.info()], Project.t()) ::
          {[DebugReload.Beam.info()], [DebugReload.Beam.info()]}
  def select(loads, %Project{} = project) do
    dirs = Project.consolidation_dirs(project)

    Enum.split_with(loads, fn info ->
      consolidated_beam? = Path.dirname(info.path) in dirs
      consolidated_beam? == consolidated?(info.module)
    end)
  end

  @doc """
  Warnings for implementations a consolidated protocol in this VM still
  cannot dispatch to after the reload: only a restart picks them up.
  """
  @spec warnings([DebugReload.Beam.info()]) :: [String.t()]
  def warnings(loads) do
    for info <- loads,
        {protocol, for_type} <- [impl_of(info.binary)],
        protocol != nil,
        consolidated?(protocol),
        not dispatches_to?(protocol, for_type) do
      "#{inspect(info.module)} implements #{inspect(protocol)}, which this VM runs consolidated without it " <>
        "(protocol consolidation is off in the compile worker?); calls for #{inspect(for_type)} will not " <>
        "reach it until the session restarts"
    end
  end

  defp impl_of(binary) do
    with {:ok, {_, [attributes: attributes]}} <- :beam_lib.chunks(binary, [:attributes]),
         [protocol: protocol, for: for_type] <- Keyword.get(attributes, :__impl__) do
      {protocol, for_type}
    else
      _ -> {nil, nil}
    end
  end

  defp consolidated?(module) do
    :code.is_loaded(module) != false and function_exported?(module, :__protocol__, 1) and
      Protocol.consolidated?(module)
  end

  defp dispatches_to?(protocol, for_type) do
    case protocol.__protocol__(:impls) do
      {:consolidated, types} -> for_type in types
      _ -> true
    end
  end
end
