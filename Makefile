# The commands people type. Each target sets up the virtual environment when it is missing.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
OZI_HOME ?= .ozi
export OZI_HOME

.PHONY: demo test dev lint bench eval clean postgres

$(BIN)/ozi: pyproject.toml
	# llama-cpp-python (the offline LLM server the tests use) builds from source.
	command -v cmake >/dev/null && command -v g++ >/dev/null || \
		{ apt-get update -qq && apt-get install -y -qq cmake g++ make; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	# The CPU build of torch lies on the machine; install it first so nothing pulls CUDA.
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(BIN)/ozi

demo: $(BIN)/ozi
	$(BIN)/ozi demo

# The production-path tests start a real PostgreSQL server: Debian's package.
postgres:
	ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || \
		{ apt-get update -qq && apt-get install -y -qq postgresql; }

test: $(BIN)/ozi postgres
	$(BIN)/pytest

bench: $(BIN)/ozi
	$(BIN)/python -m ozi_tests.bench

# Every question of the evaluation set over the sample, graded against hand-written truth.
eval: $(BIN)/ozi
	$(BIN)/python -m ozi_tests.eval.run

dev: $(BIN)/ozi
	$(BIN)/ozi broker start
	$(BIN)/ozi serve start
	mkdir -p $(OZI_HOME)/dagster && cp dagster.yaml $(OZI_HOME)/dagster/dagster.yaml
	DAGSTER_HOME=$(abspath $(OZI_HOME))/dagster $(BIN)/dagster dev -w workspace.yaml

lint: $(BIN)/ozi
	$(BIN)/ruff check ozi_assets ozi_resources ozi_tests
	$(BIN)/ruff format --check ozi_assets ozi_resources ozi_tests
	$(BIN)/pyright

clean:
	-$(BIN)/ozi serve stop
	-$(BIN)/ozi broker stop
	rm -rf $(OZI_HOME)
