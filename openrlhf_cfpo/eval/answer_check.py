"""Scoring of the reasoning benchmarks exactly as lighteval scores them (the paper's evaluation library).

The reference is lighteval 0.9.2, the release whose task definitions and metrics equal those of commit d3da6b9,
which the paper's reference recipe (Zhao et al. 2025's open-r1 fork) pins; its tasks ``lighteval|math_500|0|0``,
``lighteval|aime24|0|0``, ``lighteval|gsm8k|0|0`` and ``lighteval|gpqa:diamond|0|0``. Its answer extraction is the
code math-verify 0.5 was split from, so each metric is math-verify configured as the task configures its extraction
(:mod:`openrlhf_cfpo.reasoning.verifier`); tests/test_scoring_parity.py checks every verdict against lighteval's own
code on a fixed set of responses.

- MATH-500 and AIME24 (``math_pass@1:1_samples``): gold and response are both searched for a math expression or a
  LaTeX answer ("final answer is $x$. I hope", "final answer ... is x", a box, "answer: x", then any number, expression
  or LaTeX, the rightmost first within each of these tiers); MATH-500's gold is read from the reference solution,
  AIME's from its answer. Kept for parity, two lighteval bugs: the prediction is passed where the gold belongs (so an
  equation such as ``17 \\times 12 = 204`` is not reduced to its right-hand side) and the task's Doc where the
  rounding precision belongs, so a comparison that needs rounding a float fails (``0.50``, ``18.0``, ``5/2`` against a
  gold 2.5, each counts as wrong; equal floats as written still match).
- GSM8K (``expr_gold_metric``): the gold is the last number of the reference solution ('#### n'); a response is
  searched for a box first, then numbers and expressions as above, with a fall-back to the first string matched;
  floats compared to 5 decimals.
- GPQA-Diamond (``gpqa_pass@1:1_samples``): the chosen letter (A-D, capitals only), from "final answer is X. I hope",
  "final answer ... is X", "answer: X", "answer ... X", a letter opening the response, a letter between spaces or
  punctuation, then any capital A-D at all; the rightmost match of the first tier that has one. Written here:
  math-verify's string extraction differs (it has no last tier and counts newlines as spaces).
- pass@1 with k samples per problem is the mean over problems of the share of correct samples (lighteval's
  unbiased pass@1 estimate, plain accuracy for k=1).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

LETTERS = "ABCD"
REFERENCE = "lighteval 0.9.2 (= commit d3da6b9, which the paper's reference recipe pins)"
# lighteval's extraction gives up on one expression after 5 s; its math comparison after 3 s (math-verify's default),
# GSM8K's after 5 s.
PARSE_TIMEOUT_S = 5


def _verifier():
    try:
        from ..reasoning import verifier
    except ImportError as error:
        from .errors import EvalError

        raise EvalError(f"the reasoning benchmarks need math-verify: {' '.join(str(error).split())}") from None
    return verifier


class _DocInPlaceOfPrecision:
    """What lighteval 0.9.2's math pass@1 hands over as the rounding precision: not a number, so rounding raises."""


DOC_AS_PRECISION = _DocInPlaceOfPrecision()


def _parse(text: str, targets: list, fallback_mode: str) -> list:
    return _verifier().parse(
        text, targets, fallback_mode=fallback_mode, extraction_mode="any_match", parsing_timeout=PARSE_TIMEOUT_S
    )


def _math_targets() -> list:
    v = _verifier()
    # lighteval's own LatexExtractionConfig tries a box after "final answer ... is $x$" (55; math-verify's default 50)
    return [
        v.ExprExtractionConfig(),
        v.LatexExtractionConfig(boxed_match_priority=55, normalization_config=v.REFERENCE_NORMALIZATION),
    ]


def _gsm8k_targets() -> list:
    v = _verifier()
    return [
        v.ExprExtractionConfig(),
        v.LatexExtractionConfig(boxed_match_priority=0, normalization_config=v.REFERENCE_NORMALIZATION),
    ]


def _shown(extracted: list) -> str | None:
    return str(extracted[0]) if extracted else None


def read_math(text: str) -> list:
    """What ``math_pass@1`` reads from MATH-500's solution, AIME's answer or a response (no fall-back string)."""
    return _parse(text.strip(), _math_targets(), "no_fallback")


def check_math(response: str, gold) -> tuple[str | None, bool]:
    """MATH-500 / AIME24: (the extracted answer or None when unparsed, whether lighteval counts it correct).

    ``gold`` is the gold text (MATH-500's solution, AIME's answer) or :func:`read_math` of it.
    """
    gold_parsed = read_math(gold) if isinstance(gold, str) else gold
    if not response:
        return None, False
    predicted = read_math(response)
    # lighteval's PassAtK calls compare_gold_target(prediction, gold, doc): both bugs kept, see the module docstring
    correct = _verifier().verify(predicted, gold_parsed, float_rounding=DOC_AS_PRECISION)
    return _shown(predicted), bool(correct)


def parse_gsm8k_gold(gold: str) -> list:
    """GSM8K's reference solution as ``expr_gold_metric`` reads it (the text itself when no number is found)."""
    v = _verifier()
    return _parse(gold, [v.ExprExtractionConfig()], "first_match") or [gold]


def check_gsm8k(response: str, gold) -> tuple[str | None, bool]:
    """GSM8K: (the extracted answer or None when unparsed, whether lighteval counts it correct).

    ``gold`` is lighteval's gold choice (a space, then the reference solution) or :func:`parse_gsm8k_gold` of it.
    """
    gold_parsed = parse_gsm8k_gold(gold) if isinstance(gold, str) else gold
    predicted = _parse(response, _gsm8k_targets(), "first_match")
    correct = bool(predicted) and _verifier().verify(gold_parsed, predicted, float_rounding=5, timeout_seconds=5)
    return _shown(predicted), bool(correct)


# GPQA's letter: lighteval's tiers in priority order. Its "space" is the sentence space, a plain " ".
_LETTER = "(?P<letter>[ABCD])"
_OPENS = r"(?:^| )(?:\*\*)?"
_CLOSES = r"(?:\*\*)?(?:[.,:]| |$)"
_LETTER_TIERS = [
    re.compile(pattern)
    for pattern in (
        rf"(?i:final answer is):?\s*{_LETTER}\.?\s?I hope",
        rf"(?i:final answer.{{0,100}}?)\s+is:?\s*{_LETTER}",
        rf"(?i:answer):.{{0,50}}?{_OPENS}{_LETTER}{_CLOSES}",
        rf"(?i:answer).{{0,50}}?{_OPENS}{_LETTER}{_CLOSES}",
        rf"^(?:\*\*)?{_LETTER}{_CLOSES}",
        rf"{_OPENS}{_LETTER}{_CLOSES}",
        _LETTER,
    )
]


def choice_letter(response: str) -> str | None:
    """The multiple-choice letter lighteval reads from a response, or None."""
    for pattern in _LETTER_TIERS:
        matches = list(pattern.finditer(response))
        if matches:  # the rightmost end wins, then the leftmost start
            return max(matches, key=lambda m: (m.end(), -m.start())).group("letter")
    return None


def check_choice(response: str, gold_letter: str) -> tuple[str | None, bool]:
    letter = choice_letter(response)
    return letter, letter == gold_letter


@dataclass(frozen=True)
class Metric:
    name: str  # lighteval's
    extraction: str  # what it reads, in a line (written into results.json)
    read_gold: Callable  # gold text -> what `check` compares with (read once per problem)
    check: Callable  # (response, read gold) -> (extracted answer or None, correct)


METRICS = {  # Benchmark.kind -> its metric
    "math": Metric(
        "math_pass@1:1_samples",
        "math-verify expression and LaTeX extraction of gold and response "
        "('final answer is', box, 'answer:', any), as lighteval 0.9.2, its two comparison bugs kept",
        read_math,
        check_math,
    ),
    "gsm8k": Metric(
        "expr_gold_metric",
        "gold: the solution's last number; response: box first, then numbers and "
        "expressions, as lighteval 0.9.2 (5 decimals)",
        parse_gsm8k_gold,
        check_gsm8k,
    ),
    "choice": Metric(
        "gpqa_pass@1:1_samples",
        "the letter A-D by lighteval 0.9.2's tiers ('final answer is', "
        "'answer:', 'answer', opening letter, delimited letter, any capital A-D)",
        str,
        check_choice,
    ),
}


def pass_at_1(correct_by_problem: Sequence[Sequence[bool]]) -> float:
    """Mean over problems of the share of correct samples."""
    if not correct_by_problem:
        return float("nan")
    return sum(sum(c) / len(c) for c in correct_by_problem) / len(correct_by_problem)
