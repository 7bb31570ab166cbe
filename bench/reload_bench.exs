# The reload benchmarks of `make bench` (see DebugReload.Bench.Runner).
#
# All benchmark code is compiled here, before any module is interpreted:
# this VM is the debugged one and must not compile once :int is in use.
support = Path.wildcard(Path.join(__DIR__, "support/*.ex"))
{:ok, _modules, _warnings} = Kernel.ParallelCompiler.compile(support)

DebugReload.Bench.Runner.main(System.argv())
