# The interpreter is global to the VM: tests that interpret run serially.
ExUnit.start(capture_log: true)
