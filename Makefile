# `make demo` and `make test` build their own virtual environment (.venv) from nothing.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install lint test demo bench wheelhouse clean

install: $(STAMP)

# torch is installed first and pinned to the CPU wheel that lies on disk here: letting pip resolve
# torch through fairseq's requirements would download a multi-GB CUDA build.
$(STAMP): setup.cfg setup.py
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -c "import torch" 2>/dev/null || $(BIN)/python -m pip install --quiet "torch==2.13.0"
	$(BIN)/python -m pip install --quiet -e '.[test,plots]'
	touch $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# two test processes, one per core: most tests wait on single-threaded subprocesses (fairseq-train, ...);
# whole files go to one process, so a file's module-scoped fixtures are built once
test: lint
	$(BIN)/python -m pytest -q -n 2 --dist loadfile tests

demo: $(STAMP)
	$(BIN)/python examples/demo/run.py

bench: $(STAMP)
	$(BIN)/python benchmarks/pretrain_throughput.py

# the wheels an offline GPU node lacks, for benchmarks/gpu_suite.sh --wheels: `make wheelhouse` (a node with torch
# alone, Python 3.12: ~98 MiB), `make wheelhouse NODE_PACKAGES=benchmarks/node-packages-h200.txt` (~25 MiB), or your
# node's `python3 -m pip list --format=freeze` as NODE_PACKAGES; NODE_PYTHON=3.11 for a node whose python3 is 3.11
WHEELHOUSE ?= wheelhouse
NODE_PYTHON ?= 3.12
NODE_PACKAGES ?=
wheelhouse: $(STAMP)
	$(BIN)/python benchmarks/wheelhouse.py $(WHEELHOUSE) --python $(NODE_PYTHON) $(if $(NODE_PACKAGES),--node-packages $(NODE_PACKAGES))

clean:
	rm -rf $(VENV) demo-out build *.egg-info wheelhouse gpu-suite-out
