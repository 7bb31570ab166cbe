# The two commands the README promises: `make demo` and `make test`.
# Both install what is missing first (Debian packages) and build the NIF.

SHELL := /bin/bash
export PATH := $(HOME)/.cargo/bin:$(PATH)
export LANG ?= C.UTF-8
export LC_ALL ?= C.UTF-8
export ELIXIR_ERL_OPTIONS ?= +fnu
MIX := mix

.PHONY: deps build demo test test-rust test-elixir dap-check bench bench-rust bench-plan bench-reload lint format

# The JSON-schema validator the DAP tests run (its own quick-to-build profile).
dap-check:
	cargo build --profile dap-check --locked -p dap_check

deps:
	@scripts/install-deps

build: deps
	MIX_ENV=dev $(MIX) compile

demo: build
	MIX_ENV=dev $(MIX) run --no-start scripts/demo.exs

test: deps test-rust test-elixir

test-rust:
	# The NIF glue is exercised by ExUnit (enif_* only exist in a VM); dap_check has no logic to unit-test.
	cargo test --locked -p debug_reload_core -p debug_reload_io -p debug_reload_watch

test-elixir: dap-check
	MIX_ENV=test $(MIX) test

# Benchmarks (not part of make test). Results go to docs/benchmarks.md.
# The Rust benches and the plan bench run first so the reload bench puts
# the criterion medians on the page.
bench: bench-rust bench-plan bench-reload

bench-rust: deps
	cargo bench --locked -p debug_reload_core --bench remap

# The reload plan: criterion (graph build, plan) and the NIF side by side
# with the same algorithm in Elixir over :digraph.
bench-plan: build
	cargo bench --locked -p debug_reload_core --bench graph
	MIX_ENV=dev $(MIX) run --no-start bench/plan.exs

# Generated Mix projects of 50, 200 and 1,000 modules: reloads against bare
# compiles and restarts, macro edits, no-op, endurance, call overhead (about
# half an hour). BENCH_QUICK=1 for a short run written to bench/out/ instead.
bench-reload: build
	MIX_ENV=dev $(MIX) run --no-start bench/reload_bench.exs

lint:
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets --locked -- -D warnings
	$(MIX) format --check-formatted

format:
	cargo fmt --all
	$(MIX) format
