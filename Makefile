# The commands people type. Each target sets up the virtual environment when it is missing.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
OZI_HOME ?= .ozi
export OZI_HOME

.PHONY: demo test dev lint bench eval clean postgres

# The runtime: what `make demo` and `make dev` need, and all a production image has. Every
# package is a binary wheel; the steps say what they do, since the first install takes minutes.
$(BIN)/ozi: pyproject.toml
	@echo "==> virtual environment $(VENV)"
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	@echo "==> torch, CPU build (the largest download: about a minute)"
	# The CPU build lies on the machine; install it first so nothing pulls CUDA.
	$(BIN)/pip install --progress-bar on torch==2.13.0
	@echo "==> Ozi and its runtime dependencies"
	$(BIN)/pip install --progress-bar on -e .
	$(BIN)/python -c "import ozi_assets.definitions" >/dev/null
	touch $(BIN)/ozi

# What only the tests need: the test LLM server (llama-cpp-python builds from source, minutes),
# the system's Chromium for the page tests, pytest and the linters.
$(VENV)/.dev: $(BIN)/ozi pyproject.toml
	command -v cmake >/dev/null && command -v g++ >/dev/null && command -v chromium >/dev/null || \
		{ apt-get update -qq && apt-get install -y -qq cmake g++ make chromium; }
	@echo "==> test dependencies (the offline LLM server compiles: several minutes)"
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(VENV)/.dev

demo: $(BIN)/ozi
	$(BIN)/ozi demo

# The production-path tests start a real PostgreSQL server: Debian's package.
postgres:
	ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || \
		{ apt-get update -qq && apt-get install -y -qq postgresql; }

# Two workers, each taking whole test files (a file's fixtures, such as a materialized
# sample, are built once), the slowest files first (ozi_tests/conftest.py): much of a test's
# time is spent waiting on a broker, a daemon or a server, which the other worker fills.
test: $(VENV)/.dev postgres
	$(BIN)/pytest -n 2 --dist loadfile --no-loadscope-reorder

bench: $(VENV)/.dev
	$(BIN)/python -m ozi_tests.bench

# Every question of the evaluation set over the sample, graded against hand-written truth.
eval: $(BIN)/ozi
	$(BIN)/python -m ozi_tests.eval.run

dev: $(BIN)/ozi
	$(BIN)/ozi broker start
	$(BIN)/ozi serve start
	$(BIN)/ozi token new --name dev --if-missing
	mkdir -p $(OZI_HOME)/dagster && cp dagster.yaml $(OZI_HOME)/dagster/dagster.yaml
	DAGSTER_HOME=$(abspath $(OZI_HOME))/dagster $(BIN)/dagster dev -w workspace.yaml

lint: $(VENV)/.dev
	$(BIN)/ruff check ozi_assets ozi_resources ozi_tests
	$(BIN)/ruff format --check ozi_assets ozi_resources ozi_tests
	$(BIN)/pyright
	DAGSTER_HOME=$$(mktemp -d) $(BIN)/dagster definitions validate -w workspace.yaml

clean:
	-$(BIN)/ozi serve stop
	-$(BIN)/ozi broker stop
	rm -rf $(OZI_HOME)
