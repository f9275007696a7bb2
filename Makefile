# Two commands on a fresh machine: `make demo` and `make test`. Both set themselves up.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
MODEL_DIR ?= .lightbox/models
STAMP := $(VENV)/.installed

.PHONY: venv models demo test bench clean

venv: $(STAMP)

# torch first, from the exact pin (other specs pull multi-GB CUDA builds), then the rest
# resolved against it.
$(STAMP): pyproject.toml constraints.txt
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 11) else "Lightbox needs Python 3.11")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q -c constraints.txt -e '.[dev]'
	touch $@

models: venv
	$(BIN)/lightbox models fetch --model-dir $(MODEL_DIR)

demo: models
	$(BIN)/lightbox run examples/catalog/manifest.csv --out out/demo --model-dir $(MODEL_DIR)

test: models
	LIGHTBOX_MODEL_DIR=$(abspath $(MODEL_DIR)) $(BIN)/python -m pytest

bench: models
	$(BIN)/python bench/cpu_models.py --model-dir $(MODEL_DIR)
	$(BIN)/python bench/qc_gate.py
	$(BIN)/python bench/segmentation_quality.py --model-dir $(MODEL_DIR)

clean:
	rm -rf out .lightbox
