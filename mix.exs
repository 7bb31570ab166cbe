defmodule DebugReload.MixProject do
  use Mix.Project

  @version "0.1.0"

  def project do
    [
      app: :debug_reload,
      version: @version,
      elixir: "~> 1.14",
      start_permanent: Mix.env() == :prod,
      # The NIF must exist before :elixir compiles the modules that load it.
      compilers: [:debug_reload_native | Mix.compilers()],
      deps: [],
      elixirc_paths: elixirc_paths(Mix.env()),
      test_coverage: [ignore_modules: [~r/^DebugReload\.Test/]],
      docs: [main: "readme"]
    ]
  end

  def application do
    [extra_applications: [:logger, :debugger, :tools]]
  end

  defp elixirc_paths(:test), do: ["lib", "test/support"]
  defp elixirc_paths(_), do: ["lib"]
end

defmodule Mix.Tasks.Compile.DebugReloadNative do
  @moduledoc """
  Builds the Rust NIF with cargo and installs it into `priv/native/`.

  Runs cargo only when a Rust source, `Cargo.toml` or `Cargo.lock` is newer
  than the installed library, so it costs a few stat calls when nothing
  changed, including when debug_reload is a dependency of another project.
  """
  use Mix.Task.Compiler

  @crate "debug_reload_nif"

  @impl true
  def run(_args) do
    root = Path.expand(__DIR__)
    target = Path.join([root, "priv", "native", "#{@crate}.so"])

    if stale?(root, target) do
      build(root, target)
    else
      Mix.Project.build_structure()
      {:noop, []}
    end
  end

  defp stale?(root, target) do
    inputs =
      [Path.join(root, "Cargo.toml"), Path.join(root, "Cargo.lock")] ++
        Path.wildcard(Path.join(root, "native/**/*.{rs,toml}"))

    Mix.Utils.stale?(inputs, [target])
  end

  defp build(root, target) do
    cargo = find_cargo!()
    Mix.shell().info("Compiling NIF #{@crate} (cargo build --release)")

    args = ["build", "--release", "--locked", "-p", @crate, "--manifest-path", Path.join(root, "Cargo.toml")]

    case System.cmd(cargo, args, cd: root, stderr_to_stdout: true, into: IO.stream(:stderr, :line)) do
      {_, 0} ->
        install(Path.join([cargo_target_dir(root), "release", "lib#{@crate}.so"]), target)
        # Without this the priv symlink may be missing on a clean checkout.
        Mix.Project.build_structure()
        {:ok, []}

      {_, status} ->
        Mix.raise("cargo build failed with exit status #{status}; see the output above")
    end
  end

  defp install(built, target) do
    File.mkdir_p!(Path.dirname(target))
    # Copy to a temporary name and rename: a running VM that mapped the old
    # library keeps its inode intact.
    tmp = target <> ".tmp"
    File.cp!(built, tmp)
    File.rename!(tmp, target)
  end

  defp cargo_target_dir(root) do
    System.get_env("CARGO_TARGET_DIR") || Path.join(root, "target")
  end

  defp find_cargo! do
    System.find_executable("cargo") ||
      Enum.find(
        [Path.expand("~/.cargo/bin/cargo"), "/usr/local/cargo/bin/cargo"],
        &File.exists?/1
      ) ||
      Mix.raise("""
      cargo was not found. debug_reload builds a Rust NIF: install Rust
      (https://rustup.rs) or put cargo on PATH, then run `mix compile` again.
      """)
  end
end
