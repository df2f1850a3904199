"""Prompt sets: loading from local files and the seeded per-episode order."""
from __future__ import annotations

import json
import os
from typing import List

import torch

from .config import ConfigError


def load_prompts(path: str, input_key: str = "input", max_samples: int | None = None) -> List[str]:
    """Prompts from a .jsonl / .json / .txt file or a ``datasets.save_to_disk`` folder."""
    try:
        if os.path.isdir(path):
            import datasets

            ds = datasets.load_from_disk(path)
            if isinstance(ds, datasets.DatasetDict):
                ds = ds["train"] if "train" in ds else next(iter(ds.values()))
            rows = list(ds)
        elif path.endswith(".jsonl"):
            with open(path) as f:
                rows = [json.loads(line) for line in f if line.strip()]
        elif path.endswith(".json"):
            with open(path) as f:
                rows = json.load(f)
        else:
            with open(path) as f:
                rows = [line.rstrip("\n") for line in f if line.strip()]
    except (OSError, ValueError) as e:
        raise ConfigError(f"--data.prompt_dataset {path}: cannot read it ({e})")
    prompts = []
    for i, row in enumerate(rows):
        if isinstance(row, str):
            prompts.append(row)
        elif isinstance(row, dict) and isinstance(row.get(input_key), str):
            prompts.append(row[input_key])
        else:
            raise ConfigError(f"--data.prompt_dataset {path}: row {i} has no text field {input_key!r} (set --data.input_key)")
    if not prompts:
        raise ConfigError(f"--data.prompt_dataset {path} holds no prompts")
    return prompts[:max_samples] if max_samples else prompts


def episode_order(n_prompts: int, seed: int, episode: int) -> List[int]:
    """The prompt order of one episode: a function of (seed, episode) only, so a resumed run needs no state for it."""
    g = torch.Generator().manual_seed(seed * 1_000_003 + episode)
    return torch.randperm(n_prompts, generator=g).tolist()


def rollout_prompts(prompts: List[str], rollout_idx: int, batch_size: int, rollouts_per_episode: int, seed: int) -> List[str]:
    episode, k = divmod(rollout_idx, rollouts_per_episode)
    order = episode_order(len(prompts), seed, episode)
    return [prompts[i] for i in order[k * batch_size : (k + 1) * batch_size]]


def minibatch_plan(samples: int, batch_size: int, epochs: int, seed: int, rollout_idx: int) -> List[List[int]]:
    """Sample indices of each optimizer step of one rollout: a fresh shuffle per epoch, seeded by the rollout."""
    g = torch.Generator().manual_seed(seed * 1_000_003 + 7919 * (rollout_idx + 1))
    plan = []
    for _ in range(epochs):
        perm = torch.randperm(samples, generator=g).tolist()
        plan += [perm[i : i + batch_size] for i in range(0, samples, batch_size)]
    return plan
