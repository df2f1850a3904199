"""Stand-in for `vllm.sampling_params`: the fields of vLLM 0.29's SamplingParams that callers here set."""
import enum
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional


class RequestOutputKind(enum.Enum):
    CUMULATIVE = 0
    DELTA = 1
    FINAL_ONLY = 2


@dataclass
class SamplingParams:
    n: int = 1
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = 0  # 0 (or -1): all tokens, as in vLLM 0.29
    min_p: float = 0.0
    repetition_penalty: float = 1.0
    presence_penalty: float = 0.0
    frequency_penalty: float = 0.0
    max_tokens: Optional[int] = 16
    min_tokens: int = 0
    stop_token_ids: Optional[List[int]] = None
    skip_special_tokens: bool = True
    include_stop_str_in_output: bool = False
    logprobs: Optional[int] = None
    seed: Optional[int] = None
    output_kind: RequestOutputKind = RequestOutputKind.CUMULATIVE
    extra: Dict[str, Any] = field(default_factory=dict)
