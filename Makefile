# Every target sets itself up on a fresh clone: a .venv with the CPU build of torch where there is no GPU.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.lmtailor-installed
# torch 2.13.0 (CPU build) lies on this machine's disk; a bare `torch` would pull a multi-GB CUDA build.
TORCH_CPU ?= torch==2.13.0
TORCH_GPU ?= torch>=2.4,<2.15

.PHONY: setup demo test lint format bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then \
		$(PY) -m pip install -q "$(TORCH_GPU)"; \
	else \
		$(PY) -m pip install -q "$(TORCH_CPU)"; \
	fi
	$(PY) -m pip install -q -e ".[test]"
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/lmtailor demo --out demo-out

test: $(STAMP)
	$(VENV)/bin/ruff check src tests bench
	$(VENV)/bin/ruff format --check src tests bench
	$(VENV)/bin/pytest -q

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests bench

format: $(STAMP)
	$(VENV)/bin/ruff format src tests bench
	$(VENV)/bin/ruff check --fix src tests bench

bench: $(STAMP)
	$(PY) bench/tokenizer_bench.py --out bench/results

clean:
	rm -rf demo-out .pytest_cache
