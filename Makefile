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

# The TensorFlow venv of the Keras exporter and the peer benchmark (docs/keras.md, docs/peers.md):
# never the project venv. `make peers-venv`; versions as measured in those docs.
PEERS_PYTHON ?= python3.11
PEERS_VENV   ?= .venv-peers
PEERS_PKGS   ?= tf2onnx==1.17.0 ai-edge-litert==2.3.0 tflite-micro onnx==1.23.2 onnxruntime==1.32.0 numpy pytest

.PHONY: demo test venv peers-venv sysdeps lint bench clean

$(VENV)/.stamp: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q -e '.[test]'
	@if [ -n "$(TORCH)" ]; then \
	  $(PIP) install -q "$(TORCH)" onnxscript || echo "note: torch not installed; torch tests will skip"; \
	fi
	touch $@

venv: $(VENV)/.stamp

# tf_keras with --no-deps: otherwise it pulls the full `tensorflow` wheel beside tensorflow-cpu
$(PEERS_VENV)/.stamp: pyproject.toml
	$(PEERS_PYTHON) -m venv $(PEERS_VENV)
	$(PEERS_VENV)/bin/pip install -q tensorflow-cpu==2.21.0
	$(PEERS_VENV)/bin/pip install -q --no-deps tf_keras==2.21.0
	$(PEERS_VENV)/bin/pip install -q $(PEERS_PKGS)
	$(PEERS_VENV)/bin/pip install -q --no-deps -e .
	touch $@

peers-venv: $(PEERS_VENV)/.stamp

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
