"""math-verify as the paper's references read answers: one pinned release, callable from any thread.

The paper trains with Zhao et al. (2025)'s open-r1 fork, whose reward runs math-verify 0.5.2, and evaluates with
lighteval, whose answer extraction in the release that fork pins (0.9.2) is the code math-verify 0.5 was split from;
both on latex2sympy2_extended 1.0.6, whose LaTeX parser needs antlr4 4.13, while verl's Hydra needs antlr4 4.9. Here
it is math-verify 0.6.0 on latex2sympy2_extended 1.0.9, the next releases, which run on either antlr4 (so the TRL, eval
and verl environments share them) and read answers as the references do: tests/test_scoring_parity.py checks that the
reward (:mod:`openrlhf_cfpo.reasoning.rewards`) and the eval scoring (:mod:`openrlhf_cfpo.eval.answer_check`) give
the references' own verdicts, computed with their exact versions, on a fixed set of responses. Later releases read
differently (math-verify 0.9.0 reads ``\\boxed{3} ... \\boxed{4}`` as the set {3, 4}, where both references read 4).

Four differences of 0.6.0 are undone here: ``LatexExtractionConfig``'s default normalization no longer splits
equations (the references' did: :data:`REFERENCE_NORMALIZATION`), latex2sympy2_extended warns on every answer
normalized that way, math-verify logs a traceback for every comparison that raises, which the references counted as
"not equal" silently (lighteval's precision bug raises on purpose, see answer_check), and two equations are compared
as equations again (:func:`verify`).

math-verify bounds parsing and comparison with ``signal.alarm``, which only the main thread may arm; elsewhere the
alarm raises inside math-verify's own ``try``, so every answer would silently score 0. verl's reward manager calls
``compute_score`` from a thread pool, so off the main thread the bound is dropped (as TRL's ``accuracy_reward`` does
with later math-verify releases); on the main thread math-verify's own bound applies unchanged.
"""

from __future__ import annotations

import logging
import threading

MATH_VERIFY_VERSION = "0.6.0"
INSTALL_HINT = f"pip install math-verify=={MATH_VERIFY_VERSION} (the reasoning and eval extras of openrlhf-cfpo)"

try:
    import math_verify.grader
    import math_verify.parser
    import math_verify.utils
    from latex2sympy2_extended import NormalizationConfig
    from math_verify import ExprExtractionConfig, LatexExtractionConfig, parse
    from sympy import Basic
except ImportError as error:
    raise ImportError(f"{error}: reading answers needs {INSTALL_HINT}") from error


def _check_version() -> None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        installed = version("math-verify")
    except PackageNotFoundError:  # importable but not installed as a distribution (a source tree on the path)
        installed = "unknown"
    if installed != MATH_VERIFY_VERSION:
        raise ImportError(
            f"math-verify {installed} is installed; reading answers as the references do needs {INSTALL_HINT}"
        )


def _bound_on_main_thread(timeout_seconds):
    if threading.current_thread() is threading.main_thread():
        return _signal_timeout(timeout_seconds)
    return lambda function: function


_check_version()
_signal_timeout = math_verify.utils.timeout
# Both modules look the name up at every call, in the calling thread.
math_verify.parser.timeout = _bound_on_main_thread
math_verify.grader.timeout = _bound_on_main_thread
for _name in ("math_verify.grader", "math_verify.parser", "latex2sympy2_extended.math_normalization"):
    logging.getLogger(_name).setLevel(logging.CRITICAL)


def verify(gold, target, float_rounding: int = 6, numeric_precision: int = 15, timeout_seconds: int = 3) -> bool:
    """math-verify's ``verify``, with two equations compared as equations, as 0.5.2 and lighteval 0.9.2 compare them.

    0.6.0 first reduces an assignment (``y = 2x + 3``) to its right-hand side even when the other side is an equation
    too, so it no longer equals ``y - 2x = 3``; both references compare the two relations.
    """

    def equations_equal(g, t) -> bool:
        try:
            return _bound_on_main_thread(timeout_seconds)(
                lambda: (
                    math_verify.grader.sympy_str_eq(g, t)
                    or math_verify.grader.sympy_compare_relational(g, t, float_rounding, numeric_precision)
                )
            )()
        except Exception:
            return False

    def equal(g, t) -> bool:
        if (
            isinstance(g, Basic)
            and isinstance(t, Basic)
            and math_verify.grader.is_equation(g)
            and math_verify.grader.is_equation(t)
        ):
            return equations_equal(g, t)
        return math_verify.grader.verify(
            g, t, float_rounding=float_rounding, numeric_precision=numeric_precision, timeout_seconds=timeout_seconds
        )

    golds = gold if isinstance(gold, list) else [gold]
    targets = target if isinstance(target, list) else [target]
    return any(equal(g, t) for g in golds for t in targets)


# LatexExtractionConfig's default normalization in math-verify 0.5.2 and lighteval 0.9.2 (0.6.0 drops `equations`).
REFERENCE_NORMALIZATION = NormalizationConfig(
    basic_latex=True, units=True, malformed_operators=True, nits=True, boxed="all", equations=True
)

__all__ = [
    "ExprExtractionConfig",
    "LatexExtractionConfig",
    "NormalizationConfig",
    "REFERENCE_NORMALIZATION",
    "parse",
    "verify",
    "INSTALL_HINT",
]
