# tinylstm: two commands do all set-up on a fresh machine.
#   make demo   - the main job on the shipped example model
#   make test   - install what the tests need (Python venv, and the Cortex-M toolchain and
#                 host compilers when this machine lets us), then run the test suite
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(VENV)/bin/pip
# torch is optional; a CPU wheel sits on the CI machines. Set TORCH= to skip it.
TORCH  ?= torch==2.13.0
SYSPKGS := gcc clang libclang-rt-14-dev gcc-arm-none-eabi libnewlib-arm-none-eabi qemu-system-arm
PYTEST_ARGS ?=

.PHONY: demo test venv sysdeps lint bench clean

$(VENV)/.stamp: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q -e '.[test]'
	@if [ -n "$(TORCH)" ]; then \
	  $(PIP) install -q "$(TORCH)" onnxscript || echo "note: torch not installed; torch tests will skip"; \
	fi
	touch $@

venv: $(VENV)/.stamp

# Install compilers and QEMU when we are root or have passwordless sudo; otherwise the
# tests that need them skip and say how to install them.
sysdeps:
	@missing=""; \
	for c in gcc clang arm-none-eabi-gcc qemu-system-arm; do command -v $$c >/dev/null || missing="$$missing $$c"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then SUDO=""; elif sudo -n true 2>/dev/null; then SUDO="sudo -n"; else SUDO=none; fi; \
	  if [ "$$SUDO" = none ]; then \
	    echo "note: missing$$missing and no root/sudo; those tests will skip. Install with:"; \
	    echo "  sudo apt-get install -y $(SYSPKGS)"; \
	  else \
	    echo "installing$$missing ..."; \
	    $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends $(SYSPKGS) >/dev/null \
	      || echo "note: apt-get failed; the tests that need$$missing will skip"; \
	  fi; \
	fi

test: venv sysdeps
	$(VENV)/bin/ruff check $(wildcard tinylstm export codegen tests bench scripts examples)
	$(VENV)/bin/pytest -q $(PYTEST_ARGS)

demo: venv
	$(PY) -m tinylstm.demo

lint: venv
	$(VENV)/bin/ruff check $(wildcard tinylstm export codegen tests bench scripts examples)

# Every benchmark that needs only .venv, one after the other; each writes its table into docs/.
# Options: make bench BENCH_ARGS="--list" (or "--only host,target", "--quick", "--no-write").
bench: venv sysdeps
	$(PY) bench/run_all.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .ruff_cache demo_out
