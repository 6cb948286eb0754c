# Rogatory — two commands on a fresh machine: `make run` and `make test`.
# Only Python 3.11+ and make are assumed; everything else comes from PyPI into .venv.

# The newest Python 3.11+ found: on PATH, else installed by pyenv (whose shims on PATH answer
# only for its global version). 3.12+ is preferred for sys.monitoring, which coverage uses
# (pyproject.toml) at about half the CPU of 3.11's trace function: `make test` in ~4 instead of ~7 minutes here.
PYENV_PYTHONS = $(shell ls -d $${PYENV_ROOT:-$$HOME/.pyenv}/versions/3.*/bin/python3 2>/dev/null | sort -rV)
PYTHON ?= $(shell for p in python3.14 python3.13 python3.12 $(PYENV_PYTHONS) python3.11 python3; do command -v $$p >/dev/null 2>&1 && $$p -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null && echo $$p && break; done)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Include paths besides the protos compiled: protos/ (the Google API protos are vendored in
# protos/google, `make vendor-protos`) and the compiler's own well-known types.
PROTO_INCLUDES = protos $(shell $(BIN)/python -c "import grpc_tools, pathlib; print(pathlib.Path(grpc_tools.__file__).parent / '_proto')")

.PHONY: venv lock run test chromium bytecode test-unit test-integration test-e2e lint proto-image buf-lint buf-breaking proto-release proto vendor-protos demo bench bench-delegation bench-turnaround bench-tracing clean bench-query bench-load

venv: $(STAMP)

# constraints.txt pins every package: a fresh machine installs exactly the set the suite passed
# with, and the generated protobuf code (which names its generator's version) stays reproducible.
$(STAMP): pyproject.toml constraints.txt
	@test -n "$(PYTHON)" || { echo "Python 3.11+ is required"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[dev]"
	@touch $(STAMP)

## lock: re-resolve pyproject.toml's ranges in a scratch venv and write constraints.txt
lock:
	@test -n "$(PYTHON)" || { echo "Python 3.11+ is required"; exit 1; }
	rm -rf build/lock-venv && $(PYTHON) -m venv build/lock-venv
	build/lock-venv/bin/python -m pip install --quiet --upgrade pip
	build/lock-venv/bin/python -m pip install --quiet -e ".[dev]"
	{ grep '^#' constraints.txt; build/lock-venv/bin/python -m pip freeze --exclude-editable; } > constraints.txt.new
	mv constraints.txt.new constraints.txt
	rm -rf build/lock-venv
	@echo "constraints.txt updated: run 'make proto' and 'make test', and commit both"

## run: embedded nats-server + the three services on SQLite; Ctrl-C stops everything
run: venv
	$(BIN)/rogatory run

# `make test` runs the suite on TEST_WORKERS processes (pytest-xdist; tests/scheduling.py says
# how modules are spread) and reports the coverage of the code under test (pyproject.toml).
TEST_WORKERS ?= 2

## test: unit, integration (SQLite, PostgreSQL when reachable, nats-server) and e2e tests, on TEST_WORKERS workers, with coverage
test: venv chromium bytecode
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --cov --cov-report=term

# The project's modules compiled to __pycache__ once (~0.5 s): the suite starts ~70 Python
# processes (services, commands), and where PYTHONDONTWRITEBYTECODE is set, as on the CI
# machine, none of them writes what it compiles, so each service start compiled its ~100
# modules again (~0.25 s of CPU). compileall writes them whatever that variable says.
bytecode: venv
	@$(BIN)/python -m compileall -q registry delegation assistance services protos/rogatory rogatory_client

## chromium: the headless browser the admin report test renders in: Debian's package, installed when missing (needs root and apt-get; otherwise that test is skipped, saying why)
chromium:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing chromium (Debian's package) for the admin report test"; \
	    export DEBIAN_FRONTEND=noninteractive; apt-get update -qq >/dev/null; \
	    apt-get install -y -qq chromium fonts-noto-cjk >/dev/null || apt-get install -y -qq chromium >/dev/null \
	      || echo "chromium could not be installed: the admin report's browser test will be skipped"; \
	  else \
	    echo "chromium is missing (install it as root: apt-get install chromium): the admin report's browser test will be skipped"; \
	  fi; }

test-unit: venv
	$(BIN)/python -m pytest tests/unit

test-integration: venv
	$(BIN)/python -m pytest tests/integration

test-e2e: venv chromium
	$(BIN)/python -m pytest tests/e2e

## lint: ruff over the Python code, the layers (import-linter), types of the domain, plumbing and Python client (mypy); buf lint over the protos, and buf breaking against the last release
lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports --no-cache
	$(BIN)/mypy
	@$(MAKE) -s buf-lint
	@$(MAKE) -s buf-breaking

# A descriptor image of the protos under PROTO_SRC (imports included, so buf needs no registry;
# source info for lint's comment rules and breaking's line numbers, not kept in a release image).
PROTO_SRC ?= protos
PROTO_IMAGE ?= build/protos.binpb
PROTO_SOURCE_INFO ?= --include_source_info
# The released wire contract the protos must stay compatible with (protos/releases/README.md).
RELEASE ?= v1
RELEASE_COMMIT ?= e911477
RELEASE_IMAGE = protos/releases/$(RELEASE).binpb

proto-image:
	@mkdir -p $(dir $(PROTO_IMAGE))
	$(BIN)/python -m grpc_tools.protoc -I$(PROTO_SRC) $(addprefix -I,$(PROTO_INCLUDES)) --include_imports $(PROTO_SOURCE_INFO) \
		--descriptor_set_out=$(PROTO_IMAGE) $$(cd $(PROTO_SRC) && find rogatory -name '*.proto' | sort)

buf-lint: proto-image
	$(BIN)/buf lint $(PROTO_IMAGE) --config protos/buf.yaml --path rogatory

buf-breaking: proto-image
	$(BIN)/buf breaking $(PROTO_IMAGE) --against $(RELEASE_IMAGE) --config protos/buf.yaml --path rogatory

## proto-release: record the protos of RELEASE_COMMIT as the release RELEASE; only when a release is cut
proto-release: venv
	rm -rf build/release && mkdir -p build/release
	git archive $(RELEASE_COMMIT) protos/rogatory | tar -x -C build/release
	@$(MAKE) -s proto-image PROTO_SRC=build/release/protos PROTO_IMAGE=$(RELEASE_IMAGE) PROTO_SOURCE_INFO=

## proto: regenerate Python code and type stubs beside the .proto files, and from the event catalog (services/contract/events.py) the JSON clients load and the event tables of docs/events.md
proto: venv
	$(BIN)/python protos/generate.py
	$(BIN)/python -m services.tools.event_catalog

## vendor-protos: copy the Google API protos the contract needs from the pinned googleapis-common-protos into protos/google
vendor-protos: venv
	$(BIN)/python protos/vendor.py

## demo: against a running `make run`, registers the seed article's case and prints its events
demo: venv
	$(BIN)/rogatory demo

## bench: benchmarks with ratios to raw gRPC / raw JetStream measured in the same run
bench: venv
	$(BIN)/python -m bench.bench_registry --floors

bench-delegation: venv
	$(BIN)/python -m bench.bench_delegation --floors

bench-turnaround: venv
	$(BIN)/python -m bench.bench_turnaround --matters 1000000 --backend sqlite
	$(BIN)/python -m bench.bench_turnaround --matters 1000000 --backend postgres

bench-query: venv
	$(BIN)/python -m bench.bench_query_fanout --agencies 1000

bench-tracing: venv
	$(BIN)/python -m bench.bench_tracing_overhead

## bench-load: 5 minutes of mixed load on the whole stack, with echo / JetStream references
bench-load: venv
	$(BIN)/python -m bench.bench_load --minutes 5

clean:
	rm -rf $(VENV) var build .pytest_cache
