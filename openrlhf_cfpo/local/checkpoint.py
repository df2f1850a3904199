"""Checkpoints that let `--resume` continue exactly as the uninterrupted run would.

A checkpoint holds the policy weights, optimizer and scheduler states, the step counters, the
current rollout (with its advantages, when saved mid-rollout) and every random stream the run
draws from (torch CPU and CUDA, numpy, python). It is written to a temporary folder and renamed,
so a kill during the save leaves the previous checkpoint intact; one that cannot be read all the same (a disk
fault, a hand edit) is passed over for the previous one on ``--resume``. A full disk stops the save with
:class:`.errors.DiskFullError`, the half-written folder removed.

Each checkpoint also holds ``run.json``: the id of the run that wrote it (made at the run's first start, also in its
``run_config.json``), its run folder and its flags. A checkpoint folder shared by two runs is refused before either
prunes or resumes from the other's checkpoints, and a run folder that lost ``run_config.json`` is still compared
with the flags its checkpoints were computed with.
"""

from __future__ import annotations

import json
import os
import random
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .errors import DiskFullError, free_bytes, no_space

STATE_FILE = "state.pt"
RUN_FILE = "run.json"  # {"run_id", "output_dir", "flags"}: the run a checkpoint belongs to
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


def tensor_bytes(obj: Any) -> int:
    """Bytes of the tensors in ``obj`` (nested dicts, lists, tuples): about what saving it writes."""
    if isinstance(obj, torch.Tensor):
        return obj.numel() * obj.element_size()
    if isinstance(obj, dict):
        return sum(tensor_bytes(v) for v in obj.values())
    if isinstance(obj, (list, tuple)):
        return sum(tensor_bytes(v) for v in obj)
    return 0


def write_folder(final: Path, write, need: int) -> None:
    """``write(tmp)`` into a temporary sibling of ``final``, then renamed to ``final`` (an old ``final`` is moved aside
    first and deleted last, so some whole version exists at every moment). A failed write leaves no trace; one that
    found the disk full (or needed more than is free) raises DiskFullError naming ``final`` and the space it needs."""
    tmp, aside = final.with_name(f".tmp-{final.name}"), final.with_name(f".old-{final.name}")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        tmp.mkdir(parents=True)
        write(tmp)
    except BaseException as e:
        shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(e, Exception) and (no_space(e) or free_bytes(final.parent) < need):
            raise DiskFullError(final, need) from None
        raise
    if final.exists():
        shutil.rmtree(aside, ignore_errors=True)
        os.replace(final, aside)
    os.replace(tmp, final)
    shutil.rmtree(aside, ignore_errors=True)


def save(ckpt_dir: str, step: int, state: dict[str, Any], max_num: int, run: dict[str, Any]) -> Path:
    """Save ``state`` as step ``step`` of the run ``run`` (its RUN_FILE), then prune that run's oldest checkpoints
    down to ``max_num``; other runs' checkpoints are never touched."""
    root = Path(ckpt_dir)
    root.mkdir(parents=True, exist_ok=True)
    final = root / f"{PREFIX}{step}"

    def write(tmp: Path) -> None:
        with open(tmp / STATE_FILE, "wb") as f:  # (a Python file: a full disk's OSError is kept as the cause)
            torch.save(state, f)
        with open(tmp / RUN_FILE, "w", encoding="utf-8") as f:
            json.dump(run, f)

    write_folder(final, write, tensor_bytes(state) + 1_000_000)
    mine = [p for p in _list(root) if run_id_of(p) in (run["run_id"], None)]
    for old in sorted(mine, key=_step_of)[: -max(max_num, 1)]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def run_of(path: Path) -> dict[str, Any] | None:
    """The RUN_FILE of the checkpoint ``path``, or None (written before run ids, or unreadable)."""
    try:
        run = json.loads((path / RUN_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return run if isinstance(run, dict) and isinstance(run.get("run_id"), str) else None


def run_id_of(path: Path) -> str | None:
    run = run_of(path)
    return run["run_id"] if run else None


def _step_of(path: Path) -> int:
    return int(path.name[len(PREFIX) :])


def _list(root: Path):
    return [p for p in root.glob(f"{PREFIX}*") if p.name[len(PREFIX) :].isdigit() and (p / STATE_FILE).exists()]


def newest_first(ckpt_dir: str, run_id: str | None = None) -> list[Path]:
    """The checkpoints in ``ckpt_dir``, newest first: with ``run_id``, only that run's (and ones without a run id)."""
    root = Path(ckpt_dir)
    found = sorted(_list(root), key=_step_of, reverse=True) if root.is_dir() else []
    return found if run_id is None else [p for p in found if run_id_of(p) in (run_id, None)]


def latest(ckpt_dir: str, run_id: str | None = None) -> Path | None:
    found = newest_first(ckpt_dir, run_id)
    return found[0] if found else None


def load(path: Path) -> dict[str, Any]:
    # weights_only=False: the state holds python and numpy RNG states, written by this package.
    return torch.load(path / STATE_FILE, map_location="cpu", weights_only=False)
