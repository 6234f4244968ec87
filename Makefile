# Two entry points for a fresh machine: `make demo` and `make test`.
PYTHON ?= python3.11
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STAMP := $(VENV)/.cosmicnet-installed

.PHONY: install demo test lint clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --upgrade pip

# One step: classy is a build requirement (pyproject.toml), so the bridge
# compiles against its headers inside pip's isolated build.
$(STAMP): $(PY) setup.py setup.cfg pyproject.toml cosmicnet_cobaya/hook/_bridge.pyx cosmicnet_cobaya/hook/classy_mirror.h
	$(PIP) install -e ".[train,test]"
	if command -v mpicc >/dev/null 2>&1; then $(PIP) install -e ".[train,test,mpi]"; \
	else echo "No MPI compiler (mpicc): MPI data generation disabled"; fi
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(PY) -m cosmicnet_cobaya.demo

# The full suite on $(PYTHON); on Python 3.12 and 3.13 (where found) a one-step
# `pip install .` without the training extras and the runtime tests.
test: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m pytest
	tests/other_pythons.sh 3.12 3.13

lint: $(STAMP)
	$(PY) -m ruff check . && $(PY) -m ruff format --check .

clean:
	rm -rf build *.egg-info cosmicnet_cobaya/hook/_bridge.cpp cosmicnet_cobaya/hook/*.so
