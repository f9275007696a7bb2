# Two commands on a fresh machine: `make demo` and `make test`. Both set themselves up.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
MODEL_DIR ?= .lightbox/models
STAMP := $(VENV)/.installed

.PHONY: venv models demo test lint browser bench clean up down status

venv: $(STAMP)

# torch first, from the exact pin (other specs pull multi-GB CUDA builds), then the rest
# resolved against it. One line on the terminal; pip's own output (including warnings from
# the machine's pip config) goes to .venv/pip.log and is shown only when a step fails.
$(STAMP): pyproject.toml constraints.txt
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 11) else "Lightbox needs Python 3.11")'
	@echo "setting up $(VENV) (first run only) ..."
	@$(PYTHON) -m venv $(VENV)
	@{ $(BIN)/python -m pip install -q --upgrade pip \
	  && $(BIN)/python -m pip install -q torch==2.13.0 \
	  && $(BIN)/python -m pip install -q -c constraints.txt -e '.[dev]'; } > $(VENV)/pip.log 2>&1 \
	  || { cat $(VENV)/pip.log; echo "make: setting up $(VENV) failed; pip's log: $(VENV)/pip.log"; exit 1; }
	@touch $@

models: venv
	$(BIN)/lightbox models fetch --model-dir $(MODEL_DIR)

# The sample catalog holds 3 hostile files out of 7 rows on purpose (a truncated JPEG, a text
# file named .jpg, a 1x1 PNG): each must fail with its reason while the rest goes on. That
# is 43 % failed, past the 20 % at which a batch ends Failed (exit 1), hence 0.5 here.
demo: models
	@$(BIN)/lightbox run examples/catalog/manifest.csv --out out/demo --model-dir $(MODEL_DIR) \
	  --upscaler realesrgan-x4plus-ncnn --max-failed-share 0.5

test: models browser lint
	LIGHTBOX_MODEL_DIR=$(abspath $(MODEL_DIR)) $(BIN)/python -m pytest

# ruff, configured in pyproject.toml: lint (pyflakes, pycodestyle, isort, bugbear, pyupgrade)
# and the formatter's check. `$(BIN)/ruff format .` fixes the format.
lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# The UI test (tests/ui) looks at the Prefect UI in a headless Chromium. Installed here when
# missing and we are root on a Debian-like system; otherwise that test skips and says why.
browser:
	@if [ -x /usr/bin/chromium ]; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y chromium \
	  || { apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y chromium; } \
	  || echo "make: could not install chromium; tests/ui will be skipped"; \
	else echo "make: no /usr/bin/chromium and not root: tests/ui will be skipped (apt-get install -y chromium)"; fi

bench: models
	$(BIN)/python bench/cpu_models.py --model-dir $(MODEL_DIR)
	$(BIN)/python bench/qc_calibration.py --model-dir $(MODEL_DIR)
	$(BIN)/python bench/qc_audit.py
	$(BIN)/python bench/qc_gate.py --with-segmentation $(MODEL_DIR)
	$(BIN)/python bench/segmentation_quality.py --model-dir $(MODEL_DIR)

# The production shape on one machine, no containers (infra/stack.py): Prefect server +
# UI on 127.0.0.1:4200, bootstrap, prefect deploy --all, a CPU and a GPU-pool worker, the
# Shopify webhook receiver on 127.0.0.1:8787. Pids and logs under .lightbox/stack/.
up: models
	LIGHTBOX_MODEL_DIR=$(abspath $(MODEL_DIR)) $(BIN)/python -m infra.stack up

# Workers first, then the receiver, then the server (a process worker ignores SIGTERM
# once its server is gone). Standard library only: works without the venv.
down:
	$(if $(wildcard $(BIN)/python),$(BIN)/python,$(PYTHON)) -m infra.stack down

status:
	$(if $(wildcard $(BIN)/python),$(BIN)/python,$(PYTHON)) -m infra.stack status

clean:
	-[ -d .lightbox/stack/pids ] && $(MAKE) down
	rm -rf out .lightbox
