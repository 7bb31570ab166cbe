defmodule DebugReload.Test.ParityProject do
  @moduledoc """
  Random Mix projects and random edits, for the differential test of the
  reload plan against `mix compile` (test/plan_parity_test.exs).

  A project is a spec: modules `M0..Mn` under a unique prefix, one file
  each (sometimes with a second module), with macros, `__using__`,
  structs, and references to other modules of every kind Mix tells apart:
  `use`, `require` + macro call, compile-time calls (`@attr M.v()`),
  `import`, struct literals, and runtime calls (in any direction, so
  runtime cycles are common). Compile-time and export references only go
  to lower-numbered modules: a compile-time cycle does not compile.

  Files are rendered from the spec; an edit changes the spec, and the
  files whose text changed are the edit. All randomness comes from the
  process's `:rand` state, so a seed reproduces a case.
  """

  @type spec :: %{prefix: String.t(), next: non_neg_integer(), modules: %{non_neg_integer() => map()}}

  @doc "A random spec of 4 to 8 modules."
  @spec generate(String.t()) :: spec()
  def generate(prefix) do
    count = 4 + :rand.uniform(5) - 1

    modules =
      Enum.reduce(0..(count - 1), %{}, fn i, acc ->
        Map.put(acc, i, random_module(i, acc, Map.keys(acc) ++ Enum.to_list((i + 1)..(count - 1)//1)))
      end)

    %{prefix: prefix, next: count, modules: modules}
  end

  defp random_module(i, lower, all_others) do
    base = %{
      i: i,
      value: :rand.uniform(90) + 9,
      macro: if(chance(0.4), do: :rand.uniform(9)),
      using: if(chance(0.3), do: {"a", :rand.uniform(9)}),
      struct: if(chance(0.35), do: ["f0"]),
      extras: [],
      helper: chance(0.15)
    }

    pick = fn candidates, p -> candidates |> Enum.filter(fn _ -> chance(p) end) |> Enum.sort() end
    lower_list = Map.values(lower)

    Map.merge(base, %{
      uses: pick.(for(m <- lower_list, m.using, do: m.i), 0.35),
      requires: pick.(for(m <- lower_list, m.macro, do: m.i), 0.35),
      imports: pick.(Enum.map(lower_list, & &1.i), 0.25),
      attrs: pick.(Enum.map(lower_list, & &1.i), 0.2),
      structs: pick.(for(m <- lower_list, m.struct, do: m.i), 0.3),
      calls: pick.(all_others, 0.25)
    })
  end

  defp chance(p), do: :rand.uniform() < p

  @doc "Relative path => source text for every module file."
  @spec render(spec()) :: %{String.t() => String.t()}
  def render(spec) do
    for {i, m} <- spec.modules, into: %{} do
      {"lib/m#{i}.ex", render_module(spec, m)}
    end
  end

  @doc "The module's name as an atom."
  def module(spec, i), do: Module.concat([spec.prefix, "M#{i}"])

  defp name(spec, i), do: inspect(module(spec, i))

  defp render_module(spec, m) do
    n = fn j -> name(spec, j) end

    header =
      Enum.map(m.uses, &"  use #{n.(&1)}") ++
        Enum.map(m.requires, &"  require #{n.(&1)}") ++
        Enum.map(m.imports, &"  import #{n.(&1)}, only: [v#{&1}: 0]") ++
        Enum.map(m.attrs, &"  @c#{&1} #{n.(&1)}.v#{&1}()")

    struct = if m.struct, do: ["  defstruct [" <> Enum.map_join(m.struct, ", ", &"#{&1}: 0") <> "]"], else: []
    macro = if m.macro, do: ["  defmacro mac, do: #{m.macro}"], else: []

    using =
      case m.using do
        {tag, value} ->
          [
            "  defmacro __using__(_opts) do",
            "    quote do",
            "      def injected_#{m.i}_#{tag}, do: #{value}",
            "    end",
            "  end"
          ]

        nil ->
          []
      end

    run =
      Enum.map(m.requires, &"#{n.(&1)}.mac()") ++
        Enum.map(m.imports, &"v#{&1}()") ++
        Enum.map(m.structs, &"%#{n.(&1)}{}") ++
        Enum.map(m.attrs, &"@c#{&1}") ++
        Enum.map(m.calls, &"#{n.(&1)}.v#{&1}()")

    body =
      ["  def v#{m.i}, do: #{m.value}"] ++
        Enum.map(m.extras, &"  def extra_#{&1}, do: #{&1}") ++
        ["  def run, do: [" <> Enum.join(run ++ [":ok"], ", ") <> "]"]

    helper =
      if m.helper,
        do: ["", "defmodule #{n.(m.i)}.Helper do", "  def h, do: #{n.(m.i)}.v#{m.i}()", "end"],
        else: []

    Enum.join(
      ["defmodule #{n.(m.i)} do"] ++ header ++ struct ++ macro ++ using ++ body ++ ["end"] ++ helper,
      "\n"
    ) <> "\n"
  end

  @doc """
  Applies one random edit (sometimes two) to the spec; returns the new
  spec and a description of what was done.
  """
  @spec edit(spec()) :: {spec(), [String.t()]}
  def edit(spec) do
    {spec, first} = edit_once(spec)

    if chance(0.15) do
      {spec, second} = edit_once(spec)
      {spec, [first, second]}
    else
      {spec, [first]}
    end
  end

  @kinds [:body, :body, :export, :struct, :macro, :macro, :new_module, :delete]

  defp edit_once(spec) do
    case Enum.random(@kinds) do
      :body -> body(spec)
      :export -> export(spec)
      :struct -> struct_field(spec)
      :macro -> macro(spec)
      :new_module -> new_module(spec)
      :delete -> delete(spec)
    end
  end

  defp random_index(spec, filter \\ fn _ -> true end) do
    case for({i, m} <- spec.modules, filter.(m), do: i) do
      [] -> nil
      candidates -> Enum.random(candidates)
    end
  end

  defp update(spec, i, fun), do: update_in(spec.modules[i], fun)

  # Sometimes the same size (Mix then relies on mtime and digest).
  defp body(spec) do
    i = random_index(spec)
    delta = if chance(0.5), do: 1, else: 100
    {update(spec, i, &%{&1 | value: rem(&1.value + delta, 1000)}), "body of M#{i}"}
  end

  defp export(spec) do
    i = random_index(spec)
    m = spec.modules[i]

    if m.extras != [] and chance(0.5) do
      extra = Enum.random(m.extras)
      {update(spec, i, &%{&1 | extras: &1.extras -- [extra]}), "export removed from M#{i}"}
    else
      extra = :rand.uniform(1000)
      {update(spec, i, &%{&1 | extras: Enum.uniq(&1.extras ++ [extra])}), "export added to M#{i}"}
    end
  end

  defp struct_field(spec) do
    i = random_index(spec)
    fields = spec.modules[i].struct || []
    field = "f#{length(fields)}"
    {update(spec, i, &%{&1 | struct: fields ++ [field]}), "struct field #{field} in M#{i}"}
  end

  defp macro(spec) do
    case random_index(spec, &(&1.macro || &1.using)) do
      nil ->
        body(spec)

      i ->
        m = spec.modules[i]

        cond do
          m.macro && (m.using == nil or chance(0.5)) ->
            {update(spec, i, &%{&1 | macro: rem(&1.macro, 9) + 1}), "macro body of M#{i}"}

          chance(0.5) ->
            {tag, value} = m.using
            {update(spec, i, &%{&1 | using: {tag, rem(value, 9) + 1}}), "__using__ body of M#{i}"}

          true ->
            {tag, value} = m.using
            new_tag = if tag == "a", do: "b", else: "a"
            {update(spec, i, &%{&1 | using: {new_tag, value}}), "__using__ injects another function in M#{i}"}
        end
    end
  end

  defp new_module(spec) do
    k = spec.next
    module = random_module(k, spec.modules, Map.keys(spec.modules))
    spec = %{spec | next: k + 1, modules: Map.put(spec.modules, k, module)}

    case chance(0.5) && random_index(spec, &(&1.i != k)) do
      i when is_integer(i) ->
        {update(spec, i, &%{&1 | calls: Enum.sort([k | &1.calls])}), "new module M#{k}, called by M#{i}"}

      _ ->
        {spec, "new module M#{k}"}
    end
  end

  # Only modules nothing needs at compile time or for exports can go;
  # runtime callers stay (Mix only warns about those). Two modules always
  # stay, so every later edit has a module to change.
  defp delete(spec) when map_size(spec.modules) <= 2, do: body(spec)

  defp delete(spec) do
    needed =
      for {_, m} <- spec.modules,
          j <- m.uses ++ m.requires ++ m.imports ++ m.attrs ++ m.structs,
          into: MapSet.new(),
          do: j

    case random_index(spec, &(not MapSet.member?(needed, &1.i))) do
      nil -> body(spec)
      i -> {%{spec | modules: Map.delete(spec.modules, i)}, "deleted M#{i}"}
    end
  end
end
