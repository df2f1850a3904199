"""Offline fixtures for the reasoning recipes: MATH-format rows, a word-level chat tokenizer, a tiny policy, the
train scripts' --dry-run output.

Nothing is downloaded: the rows are written here, the tokenizer and the 1-layer Llama are built here.
"""

from __future__ import annotations

import importlib.util
import os
import shlex
import subprocess

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCRIPT_ENV = ("NUM_NODES", "GPUS_PER_NODE", "OUTPUT_DIR", "WANDB_API_KEY", "PYTHON")


def _load_offline_math():
    spec = importlib.util.spec_from_file_location(
        "offline_math", os.path.join(os.path.dirname(__file__), "offline_math.py")
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_offline = _load_offline_math()
build_chat_tokenizer, math_row, write_jsonl = _offline.build_chat_tokenizer, _offline.math_row, _offline.write_jsonl


@pytest.fixture(scope="session")
def chat_tokenizer():
    return build_chat_tokenizer()


def _tiny_policy(path, tokenizer) -> str:
    """A 1-layer Llama over ``tokenizer``'s vocabulary, saved with it; its eos is the tokenizer's."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    model = LlamaForCausalLM(
        LlamaConfig(
            vocab_size=len(tokenizer),
            hidden_size=16,
            intermediate_size=32,
            num_hidden_layers=1,
            num_attention_heads=2,
            num_key_value_heads=2,
            max_position_embeddings=256,
            pad_token_id=tokenizer.pad_token_id,
            eos_token_id=tokenizer.eos_token_id,
            tie_word_embeddings=True,
        )
    )
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return str(path)


@pytest.fixture(scope="session")
def tiny_policy(tmp_path_factory) -> str:
    """A 1-layer Llama over :func:`build_chat_tokenizer`'s vocabulary (eos <|im_end|>, as an Instruct model)."""
    return _tiny_policy(tmp_path_factory.mktemp("tiny-chat-llama"), build_chat_tokenizer())


@pytest.fixture(scope="session")
def tiny_base_policy(tmp_path_factory) -> str:
    """The same with a base model's eos, <|endoftext|>, while its chat turns end at <|im_end|> (Qwen2.5 base)."""
    return _tiny_policy(tmp_path_factory.mktemp("tiny-base-llama"), build_chat_tokenizer(base_eos=True))


def dry_run(script: str, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    """``train_scripts/<script> --dry-run ARGS``, with none of the scripts' environment variables inherited."""
    clean = {k: v for k, v in os.environ.items() if k not in SCRIPT_ENV}
    return subprocess.run(
        ["bash", os.path.join(ROOT, "train_scripts", script), "--dry-run", *args],
        capture_output=True,
        text=True,
        env={**clean, **(env or {})},
        timeout=60,
    )


def after(argv: list[str], module: str) -> list[str]:
    """The arguments that follow ``-m module`` in ``argv``."""
    i = argv.index(module)
    assert argv[i - 1] == "-m", argv
    return argv[i + 1 :]


def trl_command(script: str, *args: str, env: dict | None = None) -> list[str]:
    proc = dry_run(script, *args, env=env)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.strip().split("\n")
    assert len(lines) == 1, proc.stdout
    return shlex.split(lines[0])


# Test modules are imported in importlib mode and cannot import this file: the helpers reach them as fixtures.
@pytest.fixture(name="helpers")
def helpers_fixture():
    class Helpers:
        pass

    h = Helpers()
    for fn in (math_row, write_jsonl, dry_run, after, trl_command, build_chat_tokenizer):
        setattr(h, fn.__name__, staticmethod(fn))
    h.ROOT = ROOT
    return h
