"""Prompt sets (with their labels, for verifiable rewards): local files, folders or hub datasets, and the seeded order."""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Any, List, Optional

import torch

from .errors import ConfigError


@dataclass
class PromptSet:
    """Prompt texts and, with ``--data.label_key``, each prompt's label (what OpenRLHF passes to ``reward_func``)."""

    prompts: List[str]
    labels: List[Any] = field(default_factory=list)  # "" per prompt without --data.label_key, as OpenRLHF
    fields: List[str] = field(default_factory=list)  # the fields of the first row (none for plain-text prompts)

    def __len__(self) -> int:
        return len(self.prompts)


def _rows_from_datasets(path: str, data_dir: Optional[str], split: str, flag: str) -> list:
    try:
        import datasets
    except ImportError:
        raise ConfigError(f"--{flag} {path}: reading this needs the `datasets` package (pip install datasets)") from None
    try:
        if os.path.isdir(path) and data_dir is None:
            try:
                ds = datasets.load_from_disk(path)
            except FileNotFoundError:  # not a save_to_disk folder: data files (a hub dataset's snapshot, parquet, ...)
                ds = datasets.load_dataset(path)
        elif os.path.isdir(path):
            ds = datasets.load_dataset(path, data_dir=data_dir)
        else:
            ext = os.path.splitext(path)[1].lower().lstrip(".")
            ds = datasets.load_dataset({"jsonl": "json"}.get(ext, ext), data_files=path)
    except (OSError, ValueError) as e:
        raise ConfigError(f"--{flag} {path}: cannot read it ({str(e).splitlines()[0] if str(e) else type(e).__name__})") from None
    if isinstance(ds, datasets.DatasetDict):
        if split not in ds:
            raise ConfigError(f"--{flag} {path} has no split {split!r} (it has {', '.join(ds)}); set --data.prompt_split")
        ds = ds[split]
    return list(ds)


def load_prompts(
    path: str,
    input_key: str = "input",
    max_samples: int | None = None,
    label_key: str | None = None,
    split: str = "train",
    data_dir: str | None = None,
    flag: str = "data.prompt_dataset",
) -> PromptSet:
    """Prompts (and labels) from a .jsonl / .json / .txt file, a .parquet / .csv file, or a dataset folder.

    A folder is a ``datasets.save_to_disk`` folder or a folder of data files (what a hub dataset's
    snapshot is); ``--data.prompt_split`` picks the split, as OpenRLHF does.
    """
    try:
        if os.path.isdir(path) or path.endswith((".parquet", ".csv", ".arrow")):
            rows = _rows_from_datasets(path, data_dir, split, flag)
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
        raise ConfigError(f"--{flag} {path}: cannot read it ({e})") from None
    prompts, labels = [], []
    for i, row in enumerate(rows):
        if isinstance(row, str) and label_key is None:
            prompts.append(row)
        elif isinstance(row, dict) and isinstance(row.get(input_key), str):
            if label_key is not None and label_key not in row:
                raise ConfigError(f"--{flag} {path}: row {i} has no label field {label_key!r} (--data.label_key; its fields: "
                                  f"{', '.join(map(str, row))})")
            prompts.append(row[input_key])
            labels.append(row[label_key] if label_key is not None else "")
        elif isinstance(row, str):
            raise ConfigError(f"--{flag} {path} holds plain-text prompts, which have no label field {label_key!r} (--data.label_key)")
        else:
            raise ConfigError(f"--{flag} {path}: row {i} has no text field {input_key!r} (set --data.input_key)")
    if not prompts:
        raise ConfigError(f"--{flag} {path} holds no prompts")
    labels = labels or [""] * len(prompts)
    n = max_samples if max_samples else len(prompts)
    return PromptSet(prompts[:n], labels[:n], [str(k) for k in rows[0]] if isinstance(rows[0], dict) else [])


def episode_order(n_prompts: int, seed: int, episode: int) -> List[int]:
    """The prompt order of one episode: a function of (seed, episode) only, so a resumed run needs no state for it."""
    g = torch.Generator().manual_seed(seed * 1_000_003 + episode)
    return torch.randperm(n_prompts, generator=g).tolist()


def rollout_indices(n_prompts: int, rollout_idx: int, batch_size: int, rollouts_per_episode: int, seed: int) -> List[int]:
    """Indices into the prompt set of the prompts of one rollout."""
    episode, k = divmod(rollout_idx, rollouts_per_episode)
    return episode_order(n_prompts, seed, episode)[k * batch_size : (k + 1) * batch_size]


def minibatch_plan(samples: int, batch_size: int, epochs: int, seed: int, rollout_idx: int) -> List[List[int]]:
    """Sample indices of each optimizer step of one rollout: a fresh shuffle per epoch, seeded by the rollout."""
    g = torch.Generator().manual_seed(seed * 1_000_003 + 7919 * (rollout_idx + 1))
    plan = []
    for _ in range(epochs):
        perm = torch.randperm(samples, generator=g).tolist()
        plan += [perm[i : i + batch_size] for i in range(0, samples, batch_size)]
    return plan
