"""The verifiable reward of the reasoning runs, with the paper's reference recipe's semantics.

The paper trains "following the training setup of Zhao et al. (2025)", whose open-r1 fork rewards completions with
open-r1's ``accuracy_reward`` (``reward_funcs: [accuracy]`` in its recipes) on math-verify 0.5.2. Read from its code:
- the gold answer is read from the MATH solution as a whole, the label of every prompt (:mod:`.data`): LaTeX first,
  then plain expressions, from the first tier that has a match ("final answer is $x$. I hope", "final answer ... is",
  a box, "answer: $x$", "answer ... $x$", any LaTeX or number), the rightmost match within it;
- the completion's answer must be LaTeX: a box first (of several, the last; a box cut off before its closing brace is
  none), else ``$x$``, ``\\(x\\)`` or ``\\[x\\]`` after "final answer ... is" or "answer"; plain text ("The answer is
  18.") and LaTeX with no such anchor are no answer. Malformed operators (``\\dfrac12``) are not repaired;
- 1.0 when math-verify finds the two equal, else 0.0; None when the gold cannot be read (TRL leaves None out of the
  reward, verl gets 0.0: it needs a number) or the comparison raises.
The 7B system prompt asks for no box: a completion that ends "the answer is $18$" is rewarded, "the answer is 18" is
not, as in the reference. tests/test_scoring_parity.py checks every reward against the reference's own function
(math-verify 0.5.2, in .venv-lighteval) on a fixed set of responses, and against the eval's verdicts.

The same rule in each framework's calling convention: :func:`boxed_answer_reward` for TRL's ``reward_funcs``,
:func:`compute_score` for verl's ``reward.custom_reward_function`` (called from verl's worker threads: see
:mod:`.verifier`).
"""

from __future__ import annotations

from openrlhf_cfpo.reasoning.verifier import (
    REFERENCE_NORMALIZATION,
    ExprExtractionConfig,
    LatexExtractionConfig,
    NormalizationConfig,
    parse,
    verify,
)

# math-verify 0.5.2's defaults, which the reference uses: 3 s to parse one expression, 3 s to compare.
PARSE_TIMEOUT_S = 3
VERIFY_TIMEOUT_S = 3

# The reference's reading of a gold solution: math-verify's default targets (as 0.5.2 had them) in first-match mode.
_GOLD_TARGETS = [
    LatexExtractionConfig(normalization_config=REFERENCE_NORMALIZATION, boxed_match_priority=50),
    ExprExtractionConfig(),
]
# ... and of a completion: LaTeX only, boxed first, anchored, with no repair of malformed operators or nits.
_ANSWER_TARGETS = [
    LatexExtractionConfig(
        normalization_config=NormalizationConfig(
            nits=False, malformed_operators=False, basic_latex=True, equations=True, boxed="all", units=True
        ),
        boxed_match_priority=0,
        try_extract_without_anchor=False,
    )
]


def read_gold(solution: str) -> list:
    """The gold answer the reference reads from a MATH solution ([] when none)."""
    return parse(solution, _GOLD_TARGETS, extraction_mode="first_match", parsing_timeout=PARSE_TIMEOUT_S)


def read_answer(completion: str) -> list:
    """The answer the reference reads from a completion ([] when none)."""
    return parse(completion, _ANSWER_TARGETS, extraction_mode="first_match", parsing_timeout=PARSE_TIMEOUT_S)


def score(completion: str, solution: str) -> float | None:
    """1.0 / 0.0: does ``completion``'s answer equal the one in ``solution``? None if the gold cannot be read."""
    return score_answer(read_answer(completion), solution)


def score_answer(answer: list, solution: str) -> float | None:
    """:func:`score` of an answer already read with :func:`read_answer`."""
    gold = read_gold(solution)
    if not gold:
        return None
    try:
        return float(verify(gold, answer, timeout_seconds=VERIFY_TIMEOUT_S))
    except Exception:  # the reference skips a completion whose comparison raises
        return None


def _text(completion) -> str:
    """TRL passes a conversational completion as ``[{"role": "assistant", "content": ...}]``, a plain one as str."""
    if isinstance(completion, str):
        return completion
    return "".join(message["content"] for message in completion if message.get("role", "assistant") == "assistant")


def boxed_answer_reward(completions, answer, **kwargs) -> list[float | None]:
    """TRL reward function: :func:`score` of each completion against its prompt's ``answer`` column (the solution)."""
    return [score(_text(completion), label) for completion, label in zip(completions, answer, strict=True)]


def compute_score(data_source, solution_str, ground_truth, extra_info=None, **kwargs) -> float:
    """verl ``compute_score``: :func:`score` of the decoded response against ``reward_model.ground_truth``."""
    value = score(solution_str, ground_truth)
    return 0.0 if value is None else value
