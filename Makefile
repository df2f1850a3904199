# One-command set-up and runs for a fresh CPU machine. Every target builds .venv/ as it needs it.
#
#   make compare   CFPO vs clipped RLOO on the embedded default, plots + summary in runs/compare/
#   make test      the test suite (installs the openrlhf and eval extras CPU-style first)
#   make bench     the benchmarks under benchmarks/
#
# torch is pinned to 2.13.0 (what openrlhf 0.11.2 and vllm 0.29 expect) and installed first: on a
# CPU machine that is a CPU build, and nothing later may pull a multi-GB CUDA build instead.

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
TORCH := torch==2.13.0
# Build flags that let deepspeed and flash-attn install without CUDA (their ops stay unbuilt).
CPU_BUILD_ENV := DS_BUILD_OPS=0 FLASH_ATTENTION_SKIP_CUDA_BUILD=TRUE FLASH_ATTENTION_FORCE_BUILD=TRUE
PIP_FLAGS ?= -q
OUTPUT ?= runs/compare

.PHONY: compare test bench setup-core setup-test clean

$(VENV)/.torch:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install $(PIP_FLAGS) --upgrade pip
	$(PIP) install $(PIP_FLAGS) $(TORCH)
	touch $@

$(VENV)/.core: $(VENV)/.torch setup.py
	$(PIP) install $(PIP_FLAGS) -e . $(TORCH)
	touch $@

$(VENV)/.test: $(VENV)/.torch setup.py
	$(PIP) install $(PIP_FLAGS) "setuptools<82" wheel
	$(CPU_BUILD_ENV) $(PIP) install $(PIP_FLAGS) --no-build-isolation -e ".[openrlhf-cpu,trl,test,eval,bench]" $(TORCH)
	touch $@ $(VENV)/.core

setup-core: $(VENV)/.core
setup-test: $(VENV)/.test

compare: $(VENV)/.core
	$(VENV)/bin/openrlhf-cfpo compare --output $(OUTPUT)

test: $(VENV)/.test
	$(PY) -m pytest -q

bench: $(VENV)/.test
	$(PY) benchmarks/bench_policy_loss.py
	for b in benchmarks/bench_*.py; do [ "$$b" = benchmarks/bench_policy_loss.py ] || $(PY) $$b || exit 1; done

clean:
	rm -rf $(VENV) build *.egg-info
