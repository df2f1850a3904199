"""Hugging Face folders in and out: a load that fails is one error line; a save does not import DeepSpeed.

transformers' ``save_pretrained`` asks accelerate to unwrap the model from a DeepSpeed engine whenever DeepSpeed is
installed (OpenRLHF installs it), which imports DeepSpeed: seconds of start-up and a "Setting accelerator to CPU"
warning (and, on a machine without libaio, linker noise) in the middle of a run that never uses DeepSpeed. The
engine never wraps a model in one, so DeepSpeed is hidden from that check while it saves.

A run's ``model/`` is written whole or not at all (:func:`save_model`), and :func:`model_complete` tells a whole one
from what an older version left after a failed save (a ``config.json`` without weights).
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from pathlib import Path

from .errors import ConfigError


def load_pretrained(kind, flag: str, folder: str, **kwargs):
    """``kind.from_pretrained(folder)`` on a resolved local folder, its failures as one line naming ``--flag``."""
    try:
        return kind.from_pretrained(folder, **kwargs)
    except (OSError, ValueError, KeyError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ConfigError(f"--{flag} {folder}: cannot load it as {kind.__name__} ({first})") from None


@contextlib.contextmanager
def _deepspeed_hidden() -> Iterator[None]:
    """``importlib.util.find_spec("deepspeed")`` answers None (what transformers and accelerate test) meanwhile."""
    if "deepspeed" in sys.modules:  # imported already by something else in this process: nothing left to avoid
        yield
        return
    sys.modules["deepspeed"] = None  # type: ignore[assignment]  # find_spec: None; import: ImportError
    try:
        yield
    finally:
        if "deepspeed" in sys.modules and sys.modules["deepspeed"] is None:
            del sys.modules["deepspeed"]


def save_pretrained(obj, folder: str | os.PathLike) -> None:
    """``obj.save_pretrained(folder)`` (a model or a tokenizer), without importing DeepSpeed."""
    with _deepspeed_hidden():
        obj.save_pretrained(folder)


# Where transformers' save_pretrained puts a model's weights: one file, or an index naming its shards.
_WEIGHTS = ("model.safetensors", "pytorch_model.bin")
_INDEXES = ("model.safetensors.index.json", "pytorch_model.bin.index.json")


def save_model(model, tokenizer, folder: str | os.PathLike) -> None:
    """``model`` and ``tokenizer`` saved to ``folder`` through a temporary sibling folder renamed at the end, so
    ``folder`` is either the whole new model, or (after a kill or a full disk) what it was before."""
    from .checkpoint import tensor_bytes, write_folder

    def write(tmp) -> None:
        save_pretrained(model, tmp)
        save_pretrained(tokenizer, tmp)

    write_folder(Path(folder), write, tensor_bytes(model.state_dict()) + 10_000_000)


def model_complete(folder: str | os.PathLike) -> bool:
    """Whether ``folder`` holds a model's config, its tokenizer and all of its weights."""
    import json

    folder = Path(folder)
    if not (folder / "config.json").is_file() or not (folder / "tokenizer_config.json").is_file():
        return False
    if any((folder / name).is_file() for name in _WEIGHTS):
        return True
    for name in _INDEXES:
        try:
            shards = set(json.loads((folder / name).read_text())["weight_map"].values())
        except (OSError, ValueError, KeyError, AttributeError):
            continue
        return all((folder / shard).is_file() for shard in shards)
    return False
