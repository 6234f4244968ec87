# Two entry points for a fresh machine: `make demo` and `make test`.
PYTHON ?= python3.11
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STAMP := $(VENV)/.cosmicnet-installed
BUILD_DEPS := "setuptools>=68" wheel "cython>=3.0" "numpy>=1.26,<2.3" "scipy>=1.11"

.PHONY: install demo test lint clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --upgrade pip

# classy builds CLASS from source (a few minutes); the bridge compiles against
# its headers, hence --no-build-isolation after classy is in place.
$(STAMP): $(PY) setup.py setup.cfg pyproject.toml cosmicnet_cobaya/hook/_bridge.pyx cosmicnet_cobaya/hook/classy_mirror.h
	$(PIP) install $(BUILD_DEPS)
	$(PIP) install classy==3.4.1.0
	$(PIP) install --no-build-isolation -e ".[train,test]"
	if command -v mpicc >/dev/null 2>&1; then $(PIP) install -e ".[mpi]" --no-build-isolation; \
	else echo "No MPI compiler (mpicc): MPI data generation disabled"; fi
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(PY) -m cosmicnet_cobaya.demo

test: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m pytest

lint: $(STAMP)
	$(PY) -m ruff check . && $(PY) -m ruff format --check .

clean:
	rm -rf build *.egg-info cosmicnet_cobaya/hook/_bridge.cpp cosmicnet_cobaya/hook/*.so
