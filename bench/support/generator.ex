defmodule DebugReload.Bench.Generator do
  @moduledoc """
  Writes a realistic Mix project of exactly `size` modules for the reload
  benchmarks, and describes it so the benchmark knows what to edit.

  The shape follows a typical Phoenix-less OTP application:

    * `Macros` - a macro module (`__using__/1` injecting functions, plus a
      `check/2` macro) that up to 100 modules `use`: compile-time edges.
    * `Config` - a plain module some modules read into a module attribute
      at compile time (more compile-time edges).
    * two protocols, `Describe` (an implementation per struct) and `Score`
      (half the structs, plus a fallback for `Any`).
    * structs (8% of the modules), each with its protocol implementations in
      the same file; other modules pattern-match on them: export edges.
    * GenServers (15%) and plain service modules (the rest), calling each
      other at run time: runtime edges, about four per module. Services
      are layered (each calls two lower ones), as applications usually
      are, rather than a random graph with cycles.

  Every service and GenServer has one statement tagged `# bench:edit`
  whose integer constant the benchmark bumps: a body-only edit that Mix
  recompiles alone and that leaves line numbers (and breakpoints) where
  they were. The macro module has two tags: `# bench:expansion` inside the
  quoted code (every user's beam changes) and `# bench:helper` in a plain
  function (users are recompiled but their beams stay the same).

  The layout is deterministic for a given size: the same size always gives
  the same project.
  """

  alias __MODULE__, as: Gen

  defstruct [
    :root,
    :app,
    :namespace,
    :ebin,
    :size,
    :macro_module,
    :macro_source,
    :endurance_module,
    :hot_module,
    modules: [],
    sources: %{},
    edit_targets: [],
    break_targets: [],
    macro_users: []
  ]

  @type t :: %__MODULE__{
          root: String.t(),
          app: atom(),
          namespace: String.t(),
          ebin: String.t(),
          size: pos_integer(),
          modules: [module()],
          sources: %{module() => String.t()},
          edit_targets: [module()],
          break_targets: [module()],
          macro_users: [module()],
          macro_module: module(),
          macro_source: String.t(),
          endurance_module: module(),
          hot_module: module()
        }

  @max_macro_users 100
  @edit_targets 5
  @breakpoints 20

  @doc """
  Writes the project for `size` modules under `root` (which it replaces)
  and returns its description. Nothing is compiled.
  """
  @spec generate(String.t(), pos_integer()) :: t()
  def generate(root, size) when is_integer(size) and size >= 40 do
    ns = "Bench#{size}"
    app = :"bench_app_#{size}"
    plan = plan(ns, size)

    File.rm_rf!(root)
    File.mkdir_p!(Path.join(root, "lib"))
    File.write!(Path.join(root, "mix.exs"), mix_exs(ns, app))

    files = render_all(plan, ns)
    Enum.each(files, fn {rel, text} -> write!(Path.join(root, rel), text) end)

    sources =
      for {rel, _} <- files, module <- Map.fetch!(plan.file_modules, rel), into: %{} do
        {module, Path.join(root, rel)}
      end

    length(plan.modules) == size || raise "generator bug: #{length(plan.modules)} modules for size #{size}"

    %Gen{
      root: root,
      app: app,
      namespace: ns,
      ebin: Path.join(root, "_build/dev/lib/#{app}/ebin"),
      size: size,
      modules: plan.modules,
      sources: sources,
      edit_targets: plan.edit_targets,
      break_targets: plan.break_targets,
      macro_users: plan.macro_users,
      macro_module: mod(ns, "Macros"),
      macro_source: Path.join(root, "lib/macros.ex"),
      endurance_module: plan.endurance,
      hot_module: plan.hot
    }
  end

  @doc "The source file of `module`."
  @spec source(t(), module()) :: String.t()
  def source(%Gen{sources: sources}, module), do: Map.fetch!(sources, module)

  @doc "Line of the `# bench:<tag>` statement in `path` (the first one)."
  @spec tagged_line(String.t(), String.t()) :: pos_integer()
  def tagged_line(path, tag \\ "edit") do
    path
    |> File.read!()
    |> String.split("\n")
    |> Enum.find_index(&String.contains?(&1, "# bench:#{tag}"))
    |> case do
      nil -> raise "no # bench:#{tag} in #{path}"
      index -> index + 1
    end
  end

  @doc """
  Sets the constant of the `# bench:<tag>` statements of `path` to `value`.
  The file keeps its lines and its size changes at most by digits, so the
  edit is body-only.
  """
  @spec set_constant(String.t(), String.t(), non_neg_integer()) :: :ok
  def set_constant(path, tag, value) do
    text = File.read!(path)
    edited = Regex.replace(~r/\d+( # bench:#{tag}\b)/, text, "#{value}\\1")

    edited != text or String.contains?(text, "#{value} # bench:#{tag}") ||
      raise "nothing tagged #{tag} in #{path}"

    File.write!(path, edited)
  end

  # -- plan -------------------------------------------------------------

  defp plan(ns, size) do
    structs = max(div(size * 8, 100), 3)
    workers = div(size * 15, 100)
    # Describe for every struct, Score for every other one, and Score for Any.
    scored = Enum.take_every(1..structs, 2) |> Enum.to_list()
    impls = structs + length(scored) + 1
    services = size - 4 - structs - impls - workers
    services > @edit_targets + @breakpoints || raise "size #{size} is too small"

    struct_mods = for i <- 1..structs, do: mod(ns, "Data.Item#{i}")
    worker_mods = for i <- 1..workers, do: mod(ns, "Workers.W#{i}")
    service_mods = for i <- 1..services, do: mod(ns, "Services.S#{i}")

    impl_mods =
      for(s <- struct_mods, do: Module.concat(mod(ns, "Describe"), s)) ++
        for(i <- scored, do: Module.concat(mod(ns, "Score"), Enum.at(struct_mods, i - 1))) ++
        [Module.concat(mod(ns, "Score"), Any)]

    eligible = interleave(service_mods, worker_mods)
    users_count = min(@max_macro_users, length(eligible) - 10)
    # Spread over the project, not the first N of one kind.
    macro_users = eligible |> spread(users_count) |> MapSet.new()

    # The endurance GenServer and the hot function are never edited by the
    # other scenarios and carry no breakpoint (they run while measuring).
    [endurance | _] = worker_mods
    [hot | rest_services] = service_mods
    # The one-module edit takes the middle one: a service with callers
    # above it and callees below, neither a leaf nor the bottom layer.
    edit_targets = rest_services |> spread(@edit_targets) |> middle_first()
    others = (rest_services -- edit_targets) |> spread(@breakpoints - @edit_targets)

    file_modules =
      %{
        "lib/macros.ex" => [mod(ns, "Macros")],
        "lib/config.ex" => [mod(ns, "Config")],
        "lib/describe.ex" => [mod(ns, "Describe")],
        "lib/score.ex" => [mod(ns, "Score"), Module.concat(mod(ns, "Score"), Any)]
      }
      |> Map.merge(
        for {s, i} <- Enum.with_index(struct_mods, 1), into: %{} do
          impls =
            [Module.concat(mod(ns, "Describe"), s)] ++
              if i in scored, do: [Module.concat(mod(ns, "Score"), s)], else: []

          {"lib/data/item#{i}.ex", [s | impls]}
        end
      )
      |> Map.merge(
        for {w, i} <- Enum.with_index(worker_mods, 1), into: %{}, do: {"lib/workers/w#{i}.ex", [w]}
      )
      |> Map.merge(
        for {s, i} <- Enum.with_index(service_mods, 1), into: %{}, do: {"lib/services/s#{i}.ex", [s]}
      )

    %{
      modules:
        [mod(ns, "Macros"), mod(ns, "Config"), mod(ns, "Describe"), mod(ns, "Score")] ++
          struct_mods ++ impl_mods ++ worker_mods ++ service_mods,
      structs: struct_mods,
      scored: scored,
      workers: worker_mods,
      services: service_mods,
      macro_users: macro_users,
      file_modules: file_modules,
      edit_targets: edit_targets,
      break_targets: edit_targets ++ others,
      endurance: endurance,
      hot: hot
    }
    |> Map.update!(:macro_users, &MapSet.to_list/1)
    |> Map.put(:macro_user_set, macro_users)
  end

  defp interleave([a | as], [b | bs]), do: [a, b | interleave(as, bs)]
  defp interleave(as, []), do: as
  defp interleave([], bs), do: bs

  # `count` elements evenly spaced over `list`.
  defp spread(_list, 0), do: []

  defp spread(list, count) do
    n = length(list)
    for i <- 0..(count - 1), do: Enum.at(list, div(i * n, count))
  end

  defp middle_first(list) do
    {middle, rest} = List.pop_at(list, div(length(list), 2))
    [middle | rest]
  end

  defp mod(ns, name), do: Module.concat(ns, name)

  defp write!(path, text) do
    File.mkdir_p!(Path.dirname(path))
    File.write!(path, text)
  end

  # Deterministic pseudo-random picks: the same project for the same size.
  defp pick(list, seed, k) do
    n = length(list)
    for j <- 1..k, do: Enum.at(list, rem(seed * 7919 + j * 104_729, n))
  end

  # -- rendering --------------------------------------------------------

  defp render_all(plan, ns) do
    [
      {"lib/macros.ex", macros(ns)},
      {"lib/config.ex", config(ns)},
      {"lib/describe.ex", describe_protocol(ns)},
      {"lib/score.ex", score_protocol(ns)}
    ] ++
      for(
        {s, i} <- Enum.with_index(plan.structs, 1),
        do: {"lib/data/item#{i}.ex", struct_file(ns, s, i, plan)}
      ) ++
      for({w, i} <- Enum.with_index(plan.workers, 1), do: {"lib/workers/w#{i}.ex", worker(ns, w, i, plan)}) ++
      for {s, i} <- Enum.with_index(plan.services, 1), do: {"lib/services/s#{i}.ex", service(ns, s, i, plan)}
  end

  defp mix_exs(ns, app) do
    """
    defmodule #{ns}.MixProject do
      use Mix.Project

      def project do
        [app: #{inspect(app)}, version: "0.1.0", elixir: "~> 1.14", deps: []]
      end

      def application, do: [extra_applications: [:logger]]
    end
    """
  end

  defp macros(ns) do
    """
    defmodule #{ns}.Macros do
      @moduledoc "Shared macros: `use #{ns}.Macros, kind: ...` and `check/2`."

      defmacro __using__(opts) do
        kind = Keyword.get(opts, :kind, :plain)

        quote do
          import #{ns}.Macros, only: [check: 2]

          @doc false
          def __kind__, do: unquote(kind)

          @doc false
          def __generation__, do: 0 # bench:expansion
        end
      end

      @doc "Unwraps `{:ok, value}`; raises on `{:error, reason}` with `label`."
      defmacro check(value, label) do
        quote do
          case unquote(value) do
            {:ok, value} -> value
            {:error, reason} -> raise ArgumentError, "\#{unquote(label)}: \#{inspect(reason)}"
          end
        end
      end

      @doc "A plain function: editing it recompiles the users, not their code."
      def helper(x) do
        x + 0 # bench:helper
      end
    end
    """
  end

  defp config(ns) do
    """
    defmodule #{ns}.Config do
      @moduledoc "Settings read at compile time by some modules."

      def limits, do: %{min: 0, max: 1_000, window: 60}

      def table(name), do: :"#{Macro.underscore(ns)}_\#{name}"
    end
    """
  end

  defp describe_protocol(ns) do
    """
    defprotocol #{ns}.Describe do
      @moduledoc "A one-line, human description."

      @spec describe(t()) :: String.t()
      def describe(value)
    end
    """
  end

  defp score_protocol(ns) do
    """
    defprotocol #{ns}.Score do
      @moduledoc "A ranking score; 0 for anything without its own."
      @fallback_to_any true

      @spec score(t()) :: integer()
      def score(value)
    end

    defimpl #{ns}.Score, for: Any do
      def score(_value), do: 0
    end
    """
  end

  defp struct_file(ns, s, i, plan) do
    score =
      if i in plan.scored do
        """

        defimpl #{ns}.Score, for: #{inspect(s)} do
          def score(%{count: count, tags: tags}), do: count * 10 + length(tags)
        end
        """
      else
        ""
      end

    """
    defmodule #{inspect(s)} do
      @moduledoc "Record number #{i}."
      @enforce_keys [:id]
      defstruct [:id, name: "", tags: [], count: 0]

      @type t :: %__MODULE__{id: integer(), name: String.t(), tags: [atom()], count: non_neg_integer()}

      @spec new(integer(), String.t()) :: t()
      def new(id, name), do: %__MODULE__{id: id, name: name}

      @spec bump(t(), integer()) :: t()
      def bump(%__MODULE__{count: count} = item, by) do
        total = count + by
        %{item | count: total}
      end

      def tag(%__MODULE__{tags: tags} = item, tag) when is_atom(tag), do: %{item | tags: [tag | tags]}
    end

    defimpl #{ns}.Describe, for: #{inspect(s)} do
      def describe(%{id: id, name: name, count: count}), do: "item#{i} \#{id} \#{name} (\#{count})"
    end
    """ <> score
  end

  defp worker(ns, w, i, plan) do
    [service] = pick(plan.services, i, 1)
    [item] = pick(plan.structs, i + 3, 1)
    macro? = MapSet.member?(plan.macro_user_set, w)

    """
    defmodule #{inspect(w)} do
      @moduledoc "A stateful worker number #{i}."
      use GenServer
      #{if macro?, do: "use #{ns}.Macros, kind: :worker", else: ""}
      alias #{inspect(service)}, as: Service
      alias #{inspect(item)}, as: Item

      def start_link(opts \\\\ []), do: GenServer.start_link(__MODULE__, opts)

      def value(pid), do: GenServer.call(pid, :value)

      def items(pid), do: GenServer.call(pid, :items)

      def push(pid, x), do: GenServer.cast(pid, {:push, x})

      @impl true
      def init(opts), do: {:ok, %{items: [], opts: opts, seen: 0}}

      @impl true
      def handle_call(:value, _from, state) do
        reply = length(state.items) + 0 # bench:edit
        {:reply, reply, state}
      end

      def handle_call(:items, _from, state) do
        {:reply, Enum.reverse(state.items), state}
      end

      @impl true
      def handle_cast({:push, x}, state) do
        item = Item.new(Service.step(x), "w#{i}")
        {:noreply, %{state | items: [item | state.items], seen: state.seen + 1}}
      end

      @impl true
      def handle_info({:bump, %Item{} = item}, state) do
        {:noreply, %{state | items: [Item.bump(item, 1) | state.items]}}
      end

      def handle_info(_message, state), do: {:noreply, state}
    end
    """
  end

  defp service(ns, s, i, plan) do
    # Layered, as applications usually are: a service calls lower ones.
    [a, b] = if i == 1, do: [s, s], else: pick(Enum.take(plan.services, i - 1), i, 2)
    [item] = pick(plan.structs, i, 1)
    macro? = MapSet.member?(plan.macro_user_set, s)
    # One in thirty reads its limits at compile time.
    limits = if rem(i, 30) == 0, do: "#{ns}.Config.limits()", else: "%{min: 0, max: 1_000, window: 60}"

    validate =
      if macro?,
        do: ~s[total = check(validate(total), "s#{i}")],
        else: "{:ok, total} = validate(total)"

    """
    defmodule #{inspect(s)} do
      @moduledoc "Business logic number #{i}."
      #{if macro?, do: "use #{ns}.Macros, kind: :service", else: ""}
      alias #{inspect(a)}, as: Left
      alias #{inspect(b)}, as: Right
      alias #{inspect(item)}, as: Item
      require Logger

      @limits #{limits}

      def run(input) when is_integer(input) do
        base = input * 3 + 0 # bench:edit
        item = Item.new(base, "s#{i}")
        total = Left.step(base) + Right.step(base)
        #{validate}
        {item, #{ns}.Describe.describe(item), #{ns}.Score.score(item), total}
      end

      def step(x) when is_integer(x) do
        y = rem(x * 7 + #{i}, @limits.max)
        if y < @limits.min, do: @limits.min, else: y
      end

      def sum_steps(n), do: sum_steps(n, 0)

      defp sum_steps(0, acc), do: acc
      defp sum_steps(n, acc), do: sum_steps(n - 1, acc + step(n))

      def classify(%Item{count: count}) when count > 10, do: :big
      def classify(%Item{}), do: :small

      def log(message), do: Logger.debug(fn -> "s#{i}: \#{message}" end)

      defp validate(total) when total >= 0, do: {:ok, total}
      defp validate(total), do: {:error, total}
    end
    """
  end
end
