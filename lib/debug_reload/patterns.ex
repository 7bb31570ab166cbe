defmodule DebugReload.Patterns do
  @moduledoc """
  Module name patterns in the syntax of ElixirLS's
  `debugInterpretModulesPatterns`: `*` matches any run of characters and
  everything else is literal, so `"MyApp.*"` matches `MyApp.Repo` but not
  `MyApp` itself. Elixir modules are matched by their name without the
  `Elixir.` prefix; Erlang modules by their atom name, with or without
  the leading colon (`":my_mod"` or `"my_mod"`).
  """

  @opaque t :: [Regex.t()]

  @doc "Compiles patterns; raises `ArgumentError` naming a bad pattern."
  @spec compile([String.t()]) :: t()
  def compile(patterns) when is_list(patterns), do: Enum.map(patterns, &compile_one/1)

  def compile(other),
    do: raise(ArgumentError, "interpret patterns must be a list of strings, got: #{inspect(other)}")

  defp compile_one(pattern) when is_binary(pattern) do
    source = pattern |> Regex.escape() |> String.replace("\\*", ".*")
    Regex.compile!("\\A" <> source <> "\\z")
  end

  defp compile_one(other),
    do: raise(ArgumentError, "interpret pattern must be a string, got: #{inspect(other)}")

  @doc "True when `module` matches any of the compiled patterns."
  @spec match?(t(), module()) :: boolean()
  def match?([], _module), do: false

  def match?(regexes, module) when is_atom(module) do
    names = names(module)
    Enum.any?(regexes, fn regex -> Enum.any?(names, &Regex.match?(regex, &1)) end)
  end

  defp names(module) do
    case Atom.to_string(module) do
      "Elixir." <> name -> [name]
      name -> [name, ":" <> name]
    end
  end
end
