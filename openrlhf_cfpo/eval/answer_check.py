"""Scoring of the reasoning benchmarks: the final `\\boxed{}` answer checked with math-verify, GPQA by letter.

- Math (MATH500, GSM8K, AIME24): the answer is the content of the response's last `\\boxed{...}`
  (or `\\fbox{...}`), the form the paper's system prompts ask for. It is parsed and compared with the gold
  answer by math-verify, so equivalent forms (`1/2`, `0.5`, `\\frac{1}{2}`, `\\dfrac12`; `1,000` and `1000`;
  a trailing unit in `\\text{}`) count as equal. A response without a box, or whose box math-verify cannot
  parse, is *unparsed* and counts as wrong.
- GPQA-Diamond: the chosen letter is read from the last `\\boxed{}` (`B`, `(B)`, `\\text{B}`, `B) ...`),
  else from the last "Answer: B" / "answer is B"; anything else is unparsed and counts as wrong.
- pass@1 with k samples per problem is the mean over problems of the share of correct samples (the
  unbiased pass@1 estimate; with k=1 it is plain accuracy).
"""
from __future__ import annotations

import re
from typing import Optional, Sequence

from ..reasoning.data import last_boxed  # the training reward's reading of the final answer

LETTERS = "ABCD"

_TEXT_WRAPPER = re.compile(r"\\(?:text|textbf|mathrm|mathbf|textrm)\s*\{([^{}]*)\}")
_LETTER_IN_BOX = re.compile(r"^\(?([A-Da-d])\)?(?:[\s.:)]|$)")
_LETTER_AFTER_ANSWER = re.compile(r"(?i:answer)\s*(?:(?i:is)\s*)?[:：]?\s*[*_$]*\(?([A-D])\b")


def _math_verify():
    try:
        import math_verify
    except ImportError:
        from .errors import EvalError

        raise EvalError("the reasoning benchmarks need math-verify: pip install math-verify==0.9.0 (the eval extra)") from None
    return math_verify


def parse_gold(answer: str) -> list:
    """The gold answer as math-verify reads it (a LaTeX expression, as MATH-500, AIME and GSM8K give it)."""
    return _math_verify().parse(f"${answer}$")


def check_math(response: str, gold) -> tuple[Optional[str], bool]:
    """(the extracted final answer or None when unparsed, whether it equals `gold`, a str or parse_gold's result)."""
    mv = _math_verify()
    boxed = last_boxed(response)
    if boxed is None or not boxed.strip():
        return None, False
    pred = mv.parse("\\boxed{" + boxed + "}")
    if not pred:
        return None, False
    gold_parsed = parse_gold(gold) if isinstance(gold, str) else gold
    return boxed, bool(gold_parsed) and bool(mv.verify(gold_parsed, pred))


def choice_letter(response: str) -> Optional[str]:
    """The multiple-choice letter a response settles on, or None."""
    boxed = last_boxed(response)
    if boxed is not None:
        inner = boxed
        for _ in range(3):  # \text{\textbf{B}} and the like
            inner = _TEXT_WRAPPER.sub(r"\1", inner)
        inner = inner.strip().strip("$").strip()
        m = _LETTER_IN_BOX.match(inner)
        if m:
            return m.group(1).upper()
    matches = _LETTER_AFTER_ANSWER.findall(response)
    return matches[-1] if matches else None


def check_choice(response: str, gold_letter: str) -> tuple[Optional[str], bool]:
    letter = choice_letter(response)
    return letter, letter == gold_letter


def pass_at_1(correct_by_problem: Sequence[Sequence[bool]]) -> float:
    """Mean over problems of the share of correct samples."""
    if not correct_by_problem:
        return float("nan")
    return sum(sum(c) / len(c) for c in correct_by_problem) / len(correct_by_problem)
