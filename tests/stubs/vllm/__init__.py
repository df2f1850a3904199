"""Minimal stand-in for vLLM: only what `openrlhf.trainer.ray` imports at module load."""
from dataclasses import dataclass, field
from typing import Any, Dict, Optional

__version__ = "0.29.0"


@dataclass
class SamplingParams:
    n: int = 1
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = -1
    max_tokens: Optional[int] = 16
    min_tokens: int = 0
    skip_special_tokens: bool = True
    include_stop_str_in_output: bool = False
    logprobs: Optional[int] = None
    seed: Optional[int] = None
    extra: Dict[str, Any] = field(default_factory=dict)


class LLM:
    def __init__(self, *args, **kwargs):
        raise RuntimeError("vLLM is a CPU test stand-in here; generation needs the real vLLM on a GPU")


from . import inputs, utils  # noqa: E402,F401
