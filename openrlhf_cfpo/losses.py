"""Policy surrogates for LLM post-training: PPO's clipped objective and CFPO's quadratic penalty (arXiv 2601.22801).

The one place the formulas and their conventions live; it knows no framework. Notation follows the paper:
``ratio`` r = pi_theta / pi_old per token, ``advantages`` A, ``eps_low`` / ``eps_high`` the trust-region
half-widths below and above r = 1. A surrogate maps ``(ratio, advantages, eps_low, eps_high, dual_clip)`` to the
*negated* objective per token (a loss to minimise) and its own per-token diagnostics. :func:`token_policy_loss`
starts from log-probs and adds the diagnostics every surrogate shares; adapters (``openrlhf_cfpo.openrlhf``,
``.trl``, ``.verl``, the local engine) only map their framework's arguments, weights, aggregation and metric
names (:data:`LOGGED_AS`) onto it. Tensor plumbing is in :mod:`openrlhf_cfpo.ops`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import NamedTuple

import torch

from openrlhf_cfpo.ops import ratio_from_log_probs

Metrics = dict[str, torch.Tensor]

# Every adapter defaults to its framework's own surrogate; CFPO is always chosen by name.
DEFAULT_POLICY_LOSS = "ppo"

# Diagnostics every surrogate reports, per token; each is logged as its token mean over action tokens, the one
# statistic that survives how OpenRLHF and verl merge metrics (token-weighted means over micro-batches and ranks).
SHARED_METRICS = {
    "clip_ratio": "1 where r has left [1-eps_low, 1+eps_high] in the direction A pushes it (where PPO's clip binds)",
    "ppo_kl": "-log r, the k1 estimate of KL(pi_old || pi_theta) (log r clamped as the loss sees it)",
    "ratio_dev_mean": "|r - 1|, the distance from the rollout policy",
    "ratio_outside_region": "1 where r is outside [1-eps_low, 1+eps_high] in either direction",
}

# The name each framework logs a registry metric under (absent: the registry name, verl adds "actor/").
# TRL logs clip_ratio as its region_mean, next to the same tokens split by the side r left the region on (low:
# A < 0, high: A > 0), as token means and per-sequence extremes: those are clip_ratio_<side>_<statistic> here.
LOGGED_AS = {
    "openrlhf": {"clip_ratio": "ppo_clip_ratio"},
    "trl": {
        "clip_ratio": "clip_ratio/region_mean",
        "clip_ratio_low_mean": "clip_ratio/low_mean",
        "clip_ratio_low_min": "clip_ratio/low_min",
        "clip_ratio_high_mean": "clip_ratio/high_mean",
        "clip_ratio_high_max": "clip_ratio/high_max",
    },
    "verl": {"clip_ratio": "actor/pg_clipfrac", "*": "actor/{}"},
}


def logged_name(framework: str, metric: str) -> str:
    """What ``framework`` calls the registry's ``metric`` in its logs (the local engine uses OpenRLHF's names)."""
    names = LOGGED_AS[framework]
    return names.get(metric, names.get("*", "{}").format(metric))


@dataclass(frozen=True)
class PolicySurrogate:
    """A registered surrogate: ``fn(ratio, advantages, eps_low, eps_high, dual_clip) -> (loss, own metrics)``."""

    name: str
    fn: Callable[..., tuple[torch.Tensor, Metrics]]
    own_metrics: tuple[str, ...] = field(default_factory=tuple)
    accepts_dual_clip: bool = False

    @property
    def metrics(self) -> tuple[str, ...]:
        """Every per-token diagnostic :func:`token_policy_loss` returns for this surrogate."""
        return (*SHARED_METRICS, *self.own_metrics)

    def __call__(self, ratio, advantages, eps_low, eps_high, dual_clip=None) -> tuple[torch.Tensor, Metrics]:
        if dual_clip is not None and not self.accepts_dual_clip:
            check_policy_loss_args(self.name, eps_low, eps_high, dual_clip)  # raises with the reason
        return self.fn(ratio, advantages, eps_low, eps_high, dual_clip)


POLICY_LOSSES: dict[str, PolicySurrogate] = {}


def register_policy_loss(name: str, metrics: tuple[str, ...] = (), accepts_dual_clip: bool = False):
    """Register ``fn`` under ``name``; ``metrics`` names its own per-token diagnostics (logged as token means)."""

    def wrap(fn):
        POLICY_LOSSES[name] = PolicySurrogate(name, fn, tuple(metrics), accepts_dual_clip)
        return fn

    return wrap


def get_policy_loss(name: str) -> PolicySurrogate:
    """The surrogate registered under ``name``; an unknown name lists the known ones."""
    if name not in POLICY_LOSSES:
        raise ValueError(f"unknown policy loss {name!r}; known policy losses: {', '.join(sorted(POLICY_LOSSES))}")
    return POLICY_LOSSES[name]


def trust_region(eps: float, eps_low: float | None = None, eps_high: float | None = None) -> tuple[float, float]:
    """``(eps_low, eps_high)``: each side's own width where a framework gives one, else the symmetric ``eps``."""
    return (float(eps if eps_low is None else eps_low), float(eps if eps_high is None else eps_high))


def check_policy_loss_args(
    name: str, eps_low: float, eps_high: float, dual_clip: float | None = None
) -> PolicySurrogate:
    """The one validation of a surrogate's settings (every adapter calls it before anything loads)."""
    surrogate = get_policy_loss(name)
    if not (eps_low > 0 and eps_high > 0):
        raise ValueError(f"clip eps must be > 0 (got low={eps_low}, high={eps_high}): it is the trust-region width")
    if dual_clip is not None and not surrogate.accepts_dual_clip:
        raise ValueError(
            f"dual_clip bounds PPO's clipped objective for A < 0; {name} bounds every ratio by itself: drop dual_clip"
        )
    if dual_clip is not None and dual_clip <= 1.0:
        raise ValueError(f"dual_clip must be > 1.0, got {dual_clip}")
    return surrogate


def cfpo_eps(advantages: torch.Tensor, eps_low: float, eps_high: float) -> torch.Tensor | float:
    """The trust-region width on A's side of r = 1: eps_high where A > 0, eps_low where A < 0."""
    if eps_low == eps_high:
        return eps_low
    return torch.where(advantages > 0, advantages.new_tensor(eps_high), advantages.new_tensor(eps_low))


# ---------------------------------------------------------------------------------------------
# The surrogates. The difference between PPO and CFPO is these two functions.
# ---------------------------------------------------------------------------------------------


@register_policy_loss("ppo", accepts_dual_clip=True)
def ppo_loss(ratio, advantages, eps_low, eps_high, dual_clip=None):
    """PPO's clipped surrogate, paper eq. (1)/(6): ``min(r A, clip(r, 1-eps_low, 1+eps_high) A)``.

    With ``dual_clip`` = c > 1 (Ye et al., 2020), tokens with A < 0 are further bounded below by ``c A``, so a
    huge ratio on a bad token cannot dominate the batch.
    """
    objective = torch.min(ratio * advantages, ratio.clamp(1 - eps_low, 1 + eps_high) * advantages)
    if dual_clip is not None:
        objective = torch.where(advantages < 0, torch.max(objective, dual_clip * advantages), objective)
    return -objective, {}


@register_policy_loss("cfpo", metrics=("cfpo_penalty",))
def cfpo_loss(ratio, advantages, eps_low, eps_high, dual_clip=None):
    """CFPO, paper eq. (7): ``r A - |A| / (2 eps) * (r - 1)^2``.

    Concave in r and maximised at r* = 1 + sign(A) eps, so the trust region is enforced by a restoring gradient
    instead of a flat clip. With asymmetric widths eps is eps_high where A > 0 and eps_low where A < 0 (r* = 1 +
    eps_high or 1 - eps_low); equal widths are exactly the paper.
    """
    penalty = advantages.abs() / (2 * cfpo_eps(advantages, eps_low, eps_high)) * (ratio - 1).square()
    return -(ratio * advantages - penalty), {"cfpo_penalty": penalty.detach()}


def outside_trust_region(ratio, advantages, eps_low, eps_high) -> torch.Tensor:
    """Tokens whose r has left the trust region in the direction A pushes it: exactly where PPO's clip binds
    (``surr2 < surr1``), so the clip ratio means the same for either surrogate; A = 0 never counts."""
    return (ratio - 1) * advantages.sign() > cfpo_eps(advantages, eps_low, eps_high)


class TokenLoss(NamedTuple):
    """A surrogate on a batch, per token: the loss (the negated objective, finite on padding where r = 1), r, and
    the diagnostics."""

    loss: torch.Tensor
    ratio: torch.Tensor
    metrics: Metrics  # every name in ``surrogate.metrics``, per token, no grad


def token_policy_loss(
    surrogate: PolicySurrogate, log_probs, old_log_probs, advantages, mask, eps_low, eps_high, dual_clip=None
) -> TokenLoss:
    """``surrogate`` from log-probs: r = exp(log pi - log pi_old) on action tokens (1 on padding), the per-token
    loss, and the shared diagnostics (:data:`SHARED_METRICS`) beside the surrogate's own."""
    log_ratio, ratio = ratio_from_log_probs(log_probs, old_log_probs, mask)
    loss, own = surrogate(ratio, advantages, eps_low, eps_high, dual_clip)
    with torch.no_grad():
        deviation = ratio - 1
        distance = deviation.abs()
        outside = distance > eps_high if eps_low == eps_high else (deviation > eps_high) | (deviation < -eps_low)
        metrics = {
            "clip_ratio": outside_trust_region(ratio, advantages, eps_low, eps_high).to(ratio.dtype),
            "ppo_kl": -log_ratio,
            "ratio_dev_mean": distance,
            "ratio_outside_region": outside.to(ratio.dtype),
            **own,
        }
    return TokenLoss(loss, ratio, metrics)
