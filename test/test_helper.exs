# The interpreter is global to the VM: tests that interpret run serially.
# Tests of what only Elixir 1.14's Mix needs are left out on later ones.
exclude = if Version.match?(System.version(), "< 1.15.0"), do: [], else: [:elixir_1_14_only]
ExUnit.start(capture_log: true, exclude: exclude)
