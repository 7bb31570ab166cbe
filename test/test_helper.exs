# The interpreter is global to the VM: tests that interpret run serially.
# Tests of what only Elixir 1.14's Mix needs are left out on later ones.
exclude = if Version.match?(System.version(), "< 1.15.0"), do: [], else: [:elixir_1_14_only]
# Several tests run fresh `mix` processes and boot a compile worker node,
# which on a loaded 2-core machine can outgrow ExUnit's 60 s default.
ExUnit.start(capture_log: true, exclude: exclude, timeout: 300_000)
