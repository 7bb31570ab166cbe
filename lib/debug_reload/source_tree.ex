defmodule DebugReload.SourceTree do
  @moduledoc """
  The project's sources and the digests the running code was compiled
  from: the baseline every reload diffs against.

  The baseline lives twice: in Rust, next to the scanner, so that asking
  what changed walks the tree and returns only the changes (at a thousand
  files, shipping the whole snapshot across the NIF boundary and diffing
  it costs more than the walk); and here, as a map, for lookups. Both move
  together, only through `accept/2` and `forget/2`.
  """

  alias DebugReload.Native

  @enforce_keys [:ref, :digests]
  defstruct [:ref, :digests, resources: MapSet.new()]

  @type t :: %__MODULE__{ref: reference(), digests: Native.snapshot(), resources: MapSet.t(String.t())}

  @typedoc "A change set with the new `:digests` of the changed and added files."
  @type changes :: %{
          changed: [String.t()],
          added: [String.t()],
          removed: [String.t()],
          unchanged: non_neg_integer(),
          digests: Native.snapshot()
        }

  @doc "Scans `roots` for files ending with one of `extensions`: the first baseline."
  @spec new([String.t()], [String.t()]) :: {t(), Native.scan_errors()}
  def new(roots, extensions) do
    {ref, digests, errors} = Native.source_tree_new(roots, extensions)
    {%__MODULE__{ref: ref, digests: digests}, errors}
  end

  @doc """
  What changed since the baseline: in the whole tree, or among the paths
  of `scope` (a path in scope that is gone counts as removed).
  """
  @spec changes(t(), [String.t()] | nil) :: {changes(), Native.scan_errors()}
  def changes(%__MODULE__{ref: ref}, scope) do
    {errors, changes} = Map.pop(Native.source_tree_changes(ref, scope), :errors)
    {changes, errors}
  end

  @doc "The baseline after `changes` were compiled and loaded."
  @spec accept(t(), changes()) :: t()
  def accept(tree, %{digests: digests, removed: removed}) do
    :ok = Native.source_tree_accept(tree.ref, digests, removed)
    %{tree | digests: tree.digests |> Map.drop(removed) |> Map.merge(digests)}
  end

  @doc """
  Scans `resources` (files compiled code was built from, outside the
  walk: `@external_resource`s) with the tree from now on. Those newly
  tracked join the baseline as they are now; those no longer tracked
  leave it.
  """
  @spec track(t(), Enumerable.t()) :: t()
  def track(tree, resources) do
    resources = MapSet.new(resources)

    if MapSet.equal?(resources, tree.resources) do
      tree
    else
      {joined, dropped} = Native.source_tree_track(tree.ref, MapSet.to_list(resources))
      %{tree | digests: tree.digests |> Map.drop(dropped) |> Map.merge(joined), resources: resources}
    end
  end

  @doc "Tracks `resources` as well as those tracked already (see `track/2`)."
  @spec track_also(t(), [String.t()]) :: t()
  def track_also(tree, resources), do: track(tree, MapSet.union(tree.resources, MapSet.new(resources)))

  @doc "Drops `paths` from the baseline: the next scan reports them as added."
  @spec forget(t(), [String.t()]) :: t()
  def forget(tree, []), do: tree

  def forget(tree, paths) do
    :ok = Native.source_tree_accept(tree.ref, %{}, paths)
    %{tree | digests: Map.drop(tree.digests, paths)}
  end

  @spec digest(t(), String.t()) :: String.t() | nil
  def digest(%__MODULE__{digests: digests}, path), do: Map.get(digests, path)

  @spec member?(t(), String.t()) :: boolean()
  def member?(%__MODULE__{digests: digests}, path), do: Map.has_key?(digests, path)

  @spec paths(t()) :: [String.t()]
  def paths(%__MODULE__{digests: digests}), do: Map.keys(digests)
end
