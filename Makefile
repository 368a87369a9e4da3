# Every target sets itself up: `.venv` is created and installed into on first use only.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
DEMO := .demo
export TF_CPP_MIN_LOG_LEVEL := 3

.PHONY: setup test test-fast test-slow demo samples picture lint bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

test: $(STAMP)
	$(BIN)/python -m pytest -q -m "not slow"

# A quicker loop while developing (under a minute): no test marked heavy (real architectures,
# verify runs, the benchmark smoke run), stop at the first failure.
test-fast: $(STAMP)
	KERAS_CUT_FAST=1 $(BIN)/python -m pytest -q -x -m "not slow and not heavy"

# The full keras.applications sweep (every family, four cuts each).
test-slow: $(STAMP)
	$(BIN)/python -m pytest -q -m slow

demo: $(STAMP)
	@mkdir -p $(DEMO)
	@echo "== 1. What is in the file (no TensorFlow):"
	$(BIN)/keras-cut inspect sample_models/residual.keras
	@echo
	@echo "== 2. Cut the head from res_b on (the skip connection from res_a crosses the cut):"
	$(BIN)/keras-cut cut sample_models/residual.keras -o $(DEMO)/residual_head.keras --input-layer res_b --force
	@echo
	@echo "== 3. Prove the head computes what the parent computes:"
	$(BIN)/keras-cut verify sample_models/residual.keras $(DEMO)/residual_head.keras

samples: $(STAMP)
	$(BIN)/python sample_models/generate.py

# The README's picture: a cut drawn by `keras-cut graph` (needs Graphviz's `dot`).
picture: $(STAMP)
	@mkdir -p docs
	$(BIN)/keras-cut graph sample_models/residual.keras -o docs/residual_cut.png --input-layer res_b --force

lint: $(STAMP)
	$(BIN)/ruff check keras_cut tests sample_models bench
	$(BIN)/mypy

bench: $(STAMP)
	$(BIN)/python bench/run.py --repeat 3

clean:
	rm -rf $(DEMO) build .pytest_cache .ruff_cache
