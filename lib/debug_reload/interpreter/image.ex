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
          native: term() | :loaded | nil
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
  process; touches nothing. Without `native?`, the image has no native
  stub (`native: nil`): its module's stub is loaded apart, with
  `load_stubs/1`.
  """
  @spec build(module(), String.t(), String.t(), binary(), [tuple()], String.t(), boolean()) ::
          {:ok, t()} | {:error, String.t()}
  def build(module, source, beam_path, beam, forms, text, native? \\ true)

  def build(module, source, beam_path, beam, forms, text, native?) when is_binary(text) do
    with {:ok, {^module, [exports: exports]}} <- :beam_lib.chunks(beam, [:exports]),
         {:ok, native} <- prepare_native(native?, module, beam_path, beam) do
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

  def build(module, _source, _beam_path, _beam, _forms, _text, _native?),
    do: {:error, "the source of #{inspect(module)} cannot be read as text"}

  defp prepare_native(false, _module, _beam_path, _beam), do: {:ok, nil}

  defp prepare_native(true, module, beam_path, beam), do: prepare([{module, beam_path, beam}])

  defp prepare(modules) do
    modules
    |> Enum.map(fn {module, path, beam} -> {module, String.to_charlist(path), beam} end)
    |> :code.prepare_loading()
  end

  @doc """
  Loads the native stubs of interpreted modules, all in one code-server
  operation, and keeps calls to them going to the interpreter.

  Each `:code.finish_loading/1` waits for every scheduler to pass a code
  barrier, a millisecond or more on a small machine; one for the whole
  batch, run while the images are still being built, takes that off each
  module's swap. Once the stubs are in, and until its database is
  swapped, a module's calls trap into the interpreter, which still runs
  the old code. `modules`: `{module, beam_path, binary}`, each
  interpreted now. Never raises.
  """
  @spec load_stubs([{module(), String.t(), binary()}]) :: :ok | {:error, String.t()}
  def load_stubs([]), do: :ok

  def load_stubs(modules) do
    names = Enum.map(modules, &elem(&1, 0))

    with {:ok, native} <- prepare(modules),
         :ok <- Enum.each(names, &:code.purge/1),
         # As `:int.i/1` does; over code with breakpoints set, the load
         # would stop every scheduler until done.
         :ok <- trap_calls(names, false),
         :ok <- :code.finish_loading(native) do
      # Until these, calls run natively: the moment `:int.i/1` leaves open.
      trap_calls(names, true)
    else
      {:error, reasons} ->
        # Interpreted again, over whichever stubs are loaded.
        trap_calls(names, true)
        {:error, "the native stubs of #{inspect(names)} could not be loaded: #{inspect(reasons)}"}
    end
  rescue
    e -> {:error, "the native stubs could not be loaded: #{Exception.message(e)}"}
  end

  @doc """
  Interprets the image's module, as `:int.i/1` would: its native stub
  loaded, its database in the interpreter, calls to it interpreted. An
  image whose `native` is `:loaded` (see `load_stubs/1`) only has its
  database put in.
  """
  @spec load(t()) :: :ok | {:error, String.t()}
  def load(%__MODULE__{native: :loaded} = image), do: interpret_calls(image.module, load_database(image))

  def load(%__MODULE__{module: module} = image) do
    # As :int.i/1 does: old code goes (usually gone already, see the
    # manager's soft purge), and calls run natively until the database is
    # in place.
    :code.purge(module)
    trap_calls([module], false)
    server = Task.async(fn -> load_database(image) end)
    native = :code.finish_loading(image.native)
    database = Task.await(server, :infinity)

    case {native, database} do
      {:ok, database} ->
        interpret_calls(module, database)

      {{:error, reasons}, database} ->
        # The database may be in: the module must not look interpreted.
        if database == {:module, module}, do: :int.n(module)
        {:error, "#{inspect(module)} could not be loaded: #{inspect(reasons)}"}
    end
  end

  # Once the interpreter holds the module's database, calls go to it.
  defp interpret_calls(module, {:module, module}) do
    if :erts_debug.breakpoint({module, :_, :_}, true) > 0,
      do: :ok,
      else: {:error, "#{inspect(module)} has no function to interpret"}
  end

  defp interpret_calls(module, failure),
    do: {:error, "the interpreter did not take #{inspect(module)}: #{describe(failure)}"}

  defp trap_calls(modules, on?), do: Enum.each(modules, &:erts_debug.breakpoint({&1, :_, :_}, on?))

  defp describe(text) when is_binary(text), do: text
  defp describe(other), do: inspect(other)

  defp load_database(image) do
    :dbg_iserver.safe_call({:load, image.module, image.source, image.request})
  catch
    kind, reason -> Exception.format_banner(kind, reason)
  end
end
