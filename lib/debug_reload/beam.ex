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

  @doc """
  The `@external_resource`s a beam declares, as written (relative ones
  are relative to the directory it was compiled in).
  """
  @spec external_resources(binary()) :: [String.t()]
  def external_resources(binary) do
    case :beam_lib.chunks(binary, [:attributes]) do
      {:ok, {_module, [attributes: attributes]}} ->
        for path <- Keyword.get(attributes, :external_resource, []), is_binary(path), do: path

      _ ->
        []
    end
  end

  @doc "The source file a loaded (or interpreted) module was compiled from."
  @spec loaded_source(module()) :: String.t() | nil
  def loaded_source(module) do
    # Through the BIF: module_info/1 of an interpreted module would run in
    # the interpreter.
    with true <- :erlang.module_loaded(module),
         source when is_list(source) <- :erlang.get_module_info(module, :compile)[:source] do
      List.to_string(source)
    else
      _ -> nil
    end
  end

  @doc """
  The beams among `paths` whose module is loaded from other code: what
  this VM runs is not what is on disk (written by a reload that died
  before loading it, or by a `mix compile` outside any reload). Each with
  the source the loaded code came from.
  """
  @spec differing_from_loaded([String.t()]) :: [
          %{path: String.t(), module: module(), source: String.t() | nil}
        ]
  def differing_from_loaded(paths) do
    loaded = Enum.flat_map(paths, &loaded_module/1)

    # A task per scheduler, not per beam: a thousand beams take tens of
    # milliseconds, and a process per beam costs about as much again.
    loaded
    |> Enum.chunk_every(max(div(length(loaded), System.schedulers_online()), 1) + 1)
    |> Enum.map(
      &Task.async(fn -> Enum.filter(&1, fn {path, module} -> differs_from_loaded?(path, module) end) end)
    )
    |> Enum.flat_map(&Task.await(&1, :infinity))
    |> Enum.map(fn {path, module} -> %{path: path, module: module, source: loaded_source(module)} end)
  end

  # Only a module loaded from that very file: a protocol has a plain beam
  # and a consolidated one, and the VM runs one of them. A module never
  # loaded often has no atom yet.
  defp loaded_module(path) do
    module = path |> Path.basename(".beam") |> String.to_existing_atom()

    with true <- :erlang.module_loaded(module),
         loaded_from when is_list(loaded_from) <- :code.which(module),
         ^path <- Path.expand(List.to_string(loaded_from)) do
      [{path, module}]
    else
      _ -> []
    end
  rescue
    ArgumentError -> []
  end

  # The loaded code's MD5 is the one the code server computes from the
  # file (`beam_lib:md5/1` gives the same, at twice the cost). Read through
  # the BIF: calling module_info/1 of an interpreted module would go
  # through the interpreter. An unreadable beam cannot replace anything,
  # so it does not count.
  defp differs_from_loaded?(path, module) do
    with {:ok, binary} <- File.read(path),
         md5 when is_binary(md5) <- :code.module_md5(binary) do
      md5 != :erlang.get_module_info(module, :md5)
    else
      _ -> false
    end
  end

  @doc "The module a beam file defines, from its file name."
  @spec module_from_path(String.t()) :: module()
  def module_from_path(path), do: path |> Path.basename(".beam") |> String.to_atom()
end
