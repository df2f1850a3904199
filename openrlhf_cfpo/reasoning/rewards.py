"""The verifiable reward of the reasoning runs: is the completion's final ``\\boxed{}`` answer the right one?

1.0 when math-verify finds the completion's last boxed expression equal to the label (the MATH solution's last
boxed expression, see :mod:`openrlhf_cfpo.reasoning.data`), else 0.0; a completion with no closed box scores 0.0.
Both sides are parsed as ``\\boxed{...}``, so math-verify reads them the same way (LaTeX, units dropped), and
only the last box counts: math-verify alone would read every box of "\\boxed{3}, no: \\boxed{4}" as the set {3, 4}.

The same rule in each framework's calling convention: :func:`boxed_answer_reward` for TRL's ``reward_funcs``
(a label math-verify cannot parse gives None, which TRL leaves out of the reward), :func:`compute_score` for
verl's ``reward.custom_reward_function`` (0.0 there: verl needs a number).

math-verify bounds its parsing and comparison with ``signal.alarm``, which only the main thread may use; verl's
reward manager calls ``compute_score`` from a thread pool, where the bound is switched off (as TRL's own
``accuracy_reward`` does).
"""
from __future__ import annotations

import logging
import threading
from typing import Optional

from openrlhf_cfpo.reasoning.data import last_boxed
from openrlhf_cfpo.reasoning.verifier import LatexExtractionConfig, parse, verify

PARSE_TIMEOUT_S = 5
VERIFY_TIMEOUT_S = 5

# Only \boxed{...}: the text handed to math-verify is a box we cut out ourselves. math-verify's default LaTeX
# normalisation on both sides (units dropped, TeX shorthands such as \frac12 or \sqrt3 read as written).
_BOXED_ONLY = [LatexExtractionConfig(boxed_match_priority=0, try_extract_without_anchor=False)]


def _timeouts() -> tuple[Optional[int], Optional[int]]:
    if threading.current_thread() is threading.main_thread():
        return PARSE_TIMEOUT_S, VERIFY_TIMEOUT_S
    for name in ("math_verify.parser", "math_verify.grader"):  # their "timeout is disabled" warning, once per call
        logging.getLogger(name).setLevel(logging.ERROR)
    return None, None


def score(completion: str, answer: str) -> Optional[float]:
    """1.0 / 0.0: is ``completion``'s last ``\\boxed{}`` equal to ``answer``? None if ``answer`` does not parse."""
    parse_timeout, verify_timeout = _timeouts()
    gold = parse(f"\\boxed{{{answer}}}", extraction_config=_BOXED_ONLY, parsing_timeout=parse_timeout)
    if not gold:
        return None
    boxed = last_boxed(completion)
    if boxed is None:
        return 0.0
    predicted = parse(f"\\boxed{{{boxed}}}", extraction_config=_BOXED_ONLY, parsing_timeout=parse_timeout)
    if not predicted:
        return 0.0
    return float(verify(gold, predicted, timeout_seconds=verify_timeout))


def _text(completion) -> str:
    """TRL passes a conversational completion as ``[{"role": "assistant", "content": ...}]``, a plain one as str."""
    if isinstance(completion, str):
        return completion
    return "".join(message["content"] for message in completion if message.get("role", "assistant") == "assistant")


def boxed_answer_reward(completions, answer, **kwargs) -> list[Optional[float]]:
    """TRL reward function: :func:`score` of each completion against the ``answer`` column of its prompt."""
    return [score(_text(completion), label) for completion, label in zip(completions, answer, strict=True)]


def compute_score(data_source, solution_str, ground_truth, extra_info=None, **kwargs) -> float:
    """verl ``compute_score``: :func:`score` of the decoded response against ``reward_model.ground_truth``."""
    value = score(solution_str, ground_truth)
    return 0.0 if value is None else value
