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
    case File.read(path) do
      {:ok, binary} -> from_binary(path, digest, binary)
      {:error, reason} -> {:error, "cannot read #{path}: #{:file.format_error(reason)}"}
    end
  end

  @doc "The facts of a beam `binary` that belongs at `path`."
  @spec from_binary(String.t(), String.t(), binary()) :: {:ok, info()} | {:error, String.t()}
  def from_binary(path, digest, binary) do
    case :beam_lib.chunks(binary, [:compile_info]) do
      {:ok, {module, [compile_info: info]}} ->
        source = with s when is_list(s) <- Keyword.get(info, :source), do: List.to_string(s)
        {:ok, %{module: module, path: path, digest: digest, source: source, binary: binary}}

      {:error, :beam_lib, reason} ->
        {:error, "invalid beam #{path}: #{inspect(reason)}"}
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
