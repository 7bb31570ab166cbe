defmodule DebugReload.Interpreter.Image do
  @moduledoc """
  `:int.i/1` in two halves: what it builds from a beam without touching
  the running system (the *image*), and the load itself.

  `:int.i/1` reads the beam's abstract code (for an Elixir beam, Elixir's
  debug info translated to Erlang forms), its exports and its source,
  packs them for the interpreter server, and only then loads: the native
  stub through the code server, the module database in `dbg_iserver`,
  then the breakpoint that sends calls to the interpreter. Built apart,
  the image is ready before the reload needs it (the loader builds it
  beside other work, from the forms it reads for breakpoints anyway), and
  the two loads run side by side.

  The image is `dbg_iserver`'s load request, a format private to OTP's
  debugger: `{:interpreter_module, exports, abstract_code, source, md5}`,
  the same in OTP 25's debugger (5.3) and in the later `int.erl` sources
  we read. `supported?/0` accepts debugger 5.x only; with any other
  version the interpreter's own `:int.i/1` is used.
  """

  @enforce_keys [:module, :source, :binary, :request, :native]
  defstruct @enforce_keys

  @type t :: %__MODULE__{
          module: module(),
          source: charlist(),
          binary: binary(),
          request: binary(),
          native: term()
        }

  # The debugger major version whose `int:load/2` sends this request.
  @known_major 5

  @doc "Whether this node's debugger takes images (`:int.i/1` is used otherwise)."
  @spec supported?() :: boolean()
  def supported? do
    case :persistent_term.get({__MODULE__, :supported}, nil) do
      nil ->
        supported = known_debugger?(Application.spec(:debugger, :vsn))
        :persistent_term.put({__MODULE__, :supported}, supported)
        supported

      supported ->
        supported
    end
  end

  defp known_debugger?(nil) do
    Application.load(:debugger)
    known_debugger?(Application.spec(:debugger, :vsn) || ~c"")
  end

  defp known_debugger?(vsn) do
    case vsn |> to_string() |> String.split(".") |> hd() |> Integer.parse() do
      {@known_major, ""} -> true
      _ -> false
    end
  end

  @doc """
  Builds the image of `beam` from its Erlang `forms` (the abstract code
  `:int.i/1` would read) and the `text` of its source (UTF-8). Runs in any
  process; touches nothing.
  """
  @spec build(module(), String.t(), String.t(), binary(), [tuple()], String.t()) ::
          {:ok, t()} | {:error, String.t()}
  def build(module, source, beam_path, beam, forms, text) when is_binary(text) do
    with {:ok, {^module, [exports: exports]}} <- :beam_lib.chunks(beam, [:exports]),
         {:ok, native} <- :code.prepare_loading([{module, String.to_charlist(beam_path), beam}]) do
      request =
        :erlang.term_to_binary(
          {:interpreter_module, exports, {:raw_abstract_v1, forms}, text, :code.module_md5(beam)}
        )

      {:ok,
       %__MODULE__{
         module: module,
         source: String.to_charlist(source),
         binary: beam,
         request: request,
         native: native
       }}
    else
      other -> {:error, "cannot prepare #{inspect(module)} for the interpreter: #{inspect(other)}"}
    end
  end

  def build(module, _source, _beam_path, _beam, _forms, _text),
    do: {:error, "the source of #{inspect(module)} cannot be read as text"}

  @doc """
  Interprets the image's module, as `:int.i/1` would: its native stub
  loaded, its database in the interpreter, calls to it interpreted.
  """
  @spec load(t()) :: :ok | {:error, String.t()}
  def load(%__MODULE__{module: module} = image) do
    # As :int.i/1 does: old code goes (usually gone already, see the
    # manager's soft purge), and calls run natively until the database is
    # in place.
    :code.purge(module)
    :erts_debug.breakpoint({module, :_, :_}, false)
    server = Task.async(fn -> load_database(image) end)
    native = :code.finish_loading(image.native)
    database = Task.await(server, :infinity)

    case {native, database} do
      {:ok, {:module, ^module}} ->
        if :erts_debug.breakpoint({module, :_, :_}, true) > 0,
          do: :ok,
          else: {:error, "#{inspect(module)} has no function to interpret"}

      {:ok, failure} ->
        {:error, "the interpreter did not take #{inspect(module)}: #{describe(failure)}"}

      {{:error, reasons}, database} ->
        # The database may be in: the module must not look interpreted.
        if database == {:module, module}, do: :int.n(module)
        {:error, "#{inspect(module)} could not be loaded: #{inspect(reasons)}"}
    end
  end

  defp describe(text) when is_binary(text), do: text
  defp describe(other), do: inspect(other)

  defp load_database(image) do
    :dbg_iserver.safe_call({:load, image.module, image.source, image.request})
  catch
    kind, reason -> Exception.format_banner(kind, reason)
  end
end
