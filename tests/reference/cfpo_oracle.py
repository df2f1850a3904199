"""The test suite's one reference for CFPO (paper eq. 7), written from the paper alone.

Plain arithmetic only, so it shares no code with ``openrlhf_cfpo.losses`` and works alike on Python floats and on
torch tensors (elementwise, differentiable: gradient tests backpropagate through it). A test that compares the
package against it compares two independent readings of the paper. Tests ``import cfpo_oracle``:
tests/conftest.py puts this folder on their path (in .venv-verl too).
"""

from __future__ import annotations

import math


def cfpo_eps(advantage, eps_low=0.2, eps_high=0.2):
    """The width on A's side of r = 1: eps_high where A > 0, eps_low where A <= 0 (equal widths: the paper)."""
    return eps_low + (eps_high - eps_low) * (advantage > 0)


def cfpo_penalty(ratio, advantage, eps_low=0.2, eps_high=0.2):
    """|A| / (2 eps) (r - 1)^2."""
    return abs(advantage) / (2 * cfpo_eps(advantage, eps_low, eps_high)) * (ratio - 1) ** 2


def cfpo_token_loss(ratio, advantage, eps_low=0.2, eps_high=0.2):
    """The negated eq. 7 per token: -(r A - |A| / (2 eps) (r - 1)^2)."""
    return -(ratio * advantage - cfpo_penalty(ratio, advantage, eps_low, eps_high))


def cfpo_loss_grid(ratios, advantages, eps_low=0.2, eps_high=0.2):
    """:func:`cfpo_token_loss` over nested lists (rows of tokens) of ratios and per-token advantages."""
    return [[cfpo_token_loss(r, a, eps_low, eps_high) for r, a in zip(rr, aa)] for rr, aa in zip(ratios, advantages)]


def ratios(log_probs, old_log_probs):
    """r = exp(log pi - log pi_old), per token, over nested lists."""
    return [[math.exp(lp - olp) for lp, olp in zip(row, old)] for row, old in zip(log_probs, old_log_probs)]
