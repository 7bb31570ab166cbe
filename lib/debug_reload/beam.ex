defmodule DebugReload.Beam do
  @moduledoc "Facts read from a compiled `.beam` binary."

  @type info :: %{
          module: module(),
          path: String.t(),
          digest: String.t(),
          source: String.t() | nil,
          binary: binary()
        }

  @doc "Reads a beam file; `digest` is its content digest from the scan."
  @spec read(String.t(), String.t()) :: {:ok, info()} | {:error, String.t()}
  def read(path, digest) do
    with {:ok, binary} <- File.read(path),
         {:ok, {module, [compile_info: info]}} <- :beam_lib.chunks(binary, [:compile_info]) do
      source = with s when is_list(s) <- Keyword.get(info, :source), do: List.to_string(s)
      {:ok, %{module: module, path: path, digest: digest, source: source, binary: binary}}
    else
      {:error, :beam_lib, reason} -> {:error, "invalid beam #{path}: #{inspect(reason)}"}
      {:error, reason} -> {:error, "cannot read #{path}: #{:file.format_error(reason)}"}
    end
  end

  @doc "The source file a loaded (or interpreted) module was compiled from."
  @spec loaded_source(module()) :: String.t() | nil
  def loaded_source(module) do
    with true <- :code.is_loaded(module) != false,
         source when is_list(source) <- module.module_info(:compile)[:source] do
      List.to_string(source)
    else
      _ -> nil
    end
  end

  @doc "The module a beam file defines, from its file name."
  @spec module_from_path(String.t()) :: module()
  def module_from_path(path), do: path |> Path.basename(".beam") |> String.to_atom()
end
