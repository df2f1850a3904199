"""Hugging Face folders in and out: a load that fails is one error line; a save does not import DeepSpeed.

transformers' ``save_pretrained`` asks accelerate to unwrap the model from a DeepSpeed engine whenever DeepSpeed is
installed (OpenRLHF installs it), which imports DeepSpeed: seconds of start-up and a "Setting accelerator to CPU"
warning (and, on a machine without libaio, linker noise) in the middle of a run that never uses DeepSpeed. The
engine never wraps a model in one, so DeepSpeed is hidden from that check while it saves.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator

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
