"""Where and in which precision the engine computes: ``--device`` and ``--ds.param_dtype`` against the machine."""

from __future__ import annotations

import re

import torch

from .errors import ConfigError

# What --device takes (checked with the flags; whether the machine has it, here).
DEVICE_PATTERN = re.compile(r"auto|cpu|cuda(:\d+)?")
DEVICE_CHOICES = "auto, cpu, cuda or cuda:N"


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"--device {name}: no CUDA device is visible; use --device cpu or auto")
    device = torch.device(name)
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise ConfigError(
            f"--device {name}: {torch.cuda.device_count()} CUDA device(s) are visible (cuda:0 ...); choose one of them"
        )
    return device


def resolve_dtype(name: str, device: torch.device) -> torch.dtype:
    """``--ds.param_dtype``: the compute dtype. bf16 is mixed precision (see ``LocalTrainer``), fp32 plain."""
    if name == "bf16":
        if device.type == "cuda" and not torch.cuda.is_bf16_supported():
            raise ConfigError(
                f"--ds.param_dtype bf16: {torch.cuda.get_device_name(device)} has no bf16 support; use "
                "--ds.param_dtype fp32"
            )
        return torch.bfloat16
    return torch.float32
