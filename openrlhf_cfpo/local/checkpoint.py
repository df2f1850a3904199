"""Checkpoints that let `--resume` continue exactly as the uninterrupted run would.

A checkpoint holds the policy weights, optimizer and scheduler states, the step counters, the
current rollout (with its advantages, when saved mid-rollout) and every random stream the run
draws from (torch CPU and CUDA, numpy, python). It is written to a temporary folder and renamed,
so a kill during the save leaves the previous checkpoint intact; one that cannot be read all the same (a disk
fault, a hand edit) is passed over for the previous one on ``--resume``.
"""

from __future__ import annotations

import os
import random
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch

STATE_FILE = "state.pt"
PREFIX = "global_step_"


def rng_state() -> dict[str, Any]:
    state = {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save(ckpt_dir: str, step: int, state: dict[str, Any], max_num: int) -> Path:
    root = Path(ckpt_dir)
    root.mkdir(parents=True, exist_ok=True)
    final = root / f"{PREFIX}{step}"
    tmp = root / f".tmp-{PREFIX}{step}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    torch.save(state, tmp / STATE_FILE)
    shutil.rmtree(final, ignore_errors=True)
    os.replace(tmp, final)
    for old in sorted(_list(root), key=lambda p: _step_of(p))[: -max(max_num, 1)]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def _step_of(path: Path) -> int:
    return int(path.name[len(PREFIX) :])


def _list(root: Path):
    return [p for p in root.glob(f"{PREFIX}*") if p.name[len(PREFIX) :].isdigit() and (p / STATE_FILE).exists()]


def newest_first(ckpt_dir: str) -> list[Path]:
    root = Path(ckpt_dir)
    return sorted(_list(root), key=_step_of, reverse=True) if root.is_dir() else []


def latest(ckpt_dir: str) -> Path | None:
    found = newest_first(ckpt_dir)
    return found[0] if found else None


def load(path: Path) -> dict[str, Any]:
    # weights_only=False: the state holds python and numpy RNG states, written by this package.
    return torch.load(path / STATE_FILE, map_location="cpu", weights_only=False)
