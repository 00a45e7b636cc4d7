# The two commands of the README: `make demo` (compile + bench a bundled model on this CPU)
# and `make test`. Both set up .venv first; re-running reuses it until pyproject.toml changes.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
DEMO_MODEL := build/models/squeezenet.onnx

.PHONY: setup toolchains demo bench test test-slow lint clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test,bench]'
	touch $@

setup: $(BIN)/.installed

$(DEMO_MODEL): $(BIN)/.installed
	$(BIN)/python -m tvmedge.zoo squeezenet -o $@

demo: $(DEMO_MODEL)
	$(BIN)/tvmedge bench $(DEMO_MODEL) --target host --repeat 20 --json build/demo-bench.json

# The benchmark suite on this CPU: a run file under benchmarks/results/suite/, BENCHMARKS.md
# and the plots rewritten from every run file (tens of minutes on 2 cores).
bench: $(BIN)/.installed
	$(BIN)/python -m benchmarks

lint: $(BIN)/.installed
	$(BIN)/ruff check tvmedge tests benchmarks scripts
	$(BIN)/ruff format --check tvmedge tests benchmarks scripts

# Cross compilers and qemu for the device-bundle tests (apt-get; needs root or sudo).
toolchains:
	scripts/install-toolchains.sh

test: lint toolchains
	$(BIN)/pytest -q

# Whole-model runs of every light model (tens of minutes on 2 cores).
test-slow: $(BIN)/.installed
	$(BIN)/pytest -q -m slow

clean:
	rm -rf build $(VENV) *.tvmedge
