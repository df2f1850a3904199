"""Policy surrogates for LLM post-training: PPO's clipped objective and CFPO's quadratic penalty (arXiv 2601.22801).

This registry is the only place the formulas live; it knows no framework. Notation follows the paper:
``ratio`` r = pi_theta / pi_old per token, ``advantages`` A, ``eps_low`` / ``eps_high`` the trust-region
half-widths below and above r = 1.

A surrogate maps ``(ratio, advantages, eps_low, eps_high, dual_clip)`` to the *negated* objective per token
(a loss to minimise) and per-token diagnostics. Each registered surrogate declares those diagnostics and
how each may be reduced over tokens, and whether it takes a dual clip; :func:`check_policy_loss_args` is
the one validation of its settings. Importance weights and aggregation belong to each framework's adapter
(``openrlhf_cfpo.openrlhf``, ``.trl``, ``.verl``, and the local engine), which reduce the per-token
values with their own conventions.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Dict, Mapping, Optional, Tuple

import torch

Metrics = Dict[str, torch.Tensor]

# |log r| is clamped here before exp(). Beyond e^20 (r ~ 5e8) a ratio carries no information the
# optimiser can use, and CFPO's (r-1)^2 overflows float32 near |log r| ~ 44 already; 20 is also the
# bound OpenRLHF's PPO uses, so the two losses see the same ratios.
LOG_RATIO_CLAMP = 20.0

# Per-token diagnostics every surrogate reports, with their reduction over action tokens. Every one is
# a token mean: the one statistic that survives how OpenRLHF and verl merge metrics (token-weighted
# averages over micro-batches and ranks), so each logged number means what its name says.
# - clip_ratio: 1 where the ratio has left [1-eps_low, 1+eps_high] in the direction A pushes it (where
#   PPO's clip binds), so a PPO and a CFPO run share one plot; OpenRLHF ppo_clip_ratio, TRL
#   clip_ratio/region_mean, verl actor/pg_clipfrac;
# - ratio_dev_mean: |r - 1|, the distance from the rollout policy;
# - ratio_outside_region: 1 where r is outside [1-eps_low, 1+eps_high] in either direction.
SHARED_METRICS: Mapping[str, str] = {"clip_ratio": "mean", "ratio_dev_mean": "mean", "ratio_outside_region": "mean"}
REDUCTIONS = ("mean",)


@dataclass(frozen=True)
class PolicySurrogate:
    """A registered surrogate: ``fn(ratio, advantages, eps_low, eps_high, dual_clip) -> (loss, own metrics)``."""

    name: str
    fn: Callable[..., Tuple[torch.Tensor, Metrics]]
    own_metrics: Mapping[str, str] = field(default_factory=dict)  # metric -> reduction over tokens
    accepts_dual_clip: bool = False

    @property
    def metrics(self) -> Dict[str, str]:
        """Every per-token diagnostic this surrogate returns, with its reduction over tokens ("mean")."""
        return {**SHARED_METRICS, **self.own_metrics}

    def __call__(self, ratio, advantages, eps_low, eps_high, dual_clip=None) -> Tuple[torch.Tensor, Metrics]:
        """Per-token loss (same shape as ``ratio``) and the per-token values of :attr:`metrics` (no grad)."""
        loss, own = self.fn(ratio, advantages, eps_low, eps_high, dual_clip)
        with torch.no_grad():
            # Written as few whole-tensor ops as possible: this runs on every micro-batch.
            deviation = ratio - 1
            dev = deviation.abs()
            if eps_low == eps_high:
                outside = dev > eps_high
            else:
                outside = (deviation > eps_high) | (deviation < -eps_low)
            metrics = {
                "clip_ratio": outside_trust_region(ratio, advantages, eps_low, eps_high).to(ratio.dtype),
                "ratio_dev_mean": dev,
                "ratio_outside_region": outside.to(ratio.dtype),
                **{k: v.detach() for k, v in own.items()},
            }
        return loss, metrics


POLICY_LOSSES: Dict[str, PolicySurrogate] = {}


def register_policy_loss(name: str, metrics: Mapping[str, str] = (), accepts_dual_clip: bool = False):
    """Register ``fn`` under ``name``; ``metrics`` names its own per-token diagnostics and their reductions."""
    metrics = dict(metrics)
    if set(metrics.values()) - set(REDUCTIONS):
        raise ValueError(f"metric reductions must be one of {REDUCTIONS}, got {metrics}")

    def wrap(fn):
        POLICY_LOSSES[name] = PolicySurrogate(name, fn, metrics, accepts_dual_clip)
        return fn

    return wrap


def get_policy_loss(name: str) -> PolicySurrogate:
    """The surrogate registered under ``name``; an unknown name lists the known ones."""
    try:
        return POLICY_LOSSES[name]
    except KeyError:
        raise ValueError(f"unknown policy loss {name!r}; known policy losses: {', '.join(sorted(POLICY_LOSSES))}") from None


def check_policy_loss_args(name: str, eps_low: float, eps_high: float, dual_clip: Optional[float] = None) -> PolicySurrogate:
    """The one validation of a surrogate's settings (every adapter calls it before anything loads)."""
    surrogate = get_policy_loss(name)
    if not (eps_low > 0 and eps_high > 0):
        raise ValueError(f"clip eps must be > 0 (got low={eps_low}, high={eps_high}): it is the trust-region width")
    if dual_clip is not None:
        if not surrogate.accepts_dual_clip:
            raise ValueError(
                f"dual_clip bounds PPO's clipped objective for A < 0; {name} bounds every ratio by itself: drop dual_clip"
            )
        if dual_clip <= 1.0:
            raise ValueError(f"dual_clip must be > 1.0, got {dual_clip}")
    return surrogate


def cfpo_eps(advantages: torch.Tensor, eps_low: float, eps_high: float) -> torch.Tensor | float:
    """The trust-region width CFPO uses per token: eps_high where A > 0, eps_low where A < 0."""
    if eps_low == eps_high:
        return eps_low
    return torch.where(advantages > 0, advantages.new_tensor(eps_high), advantages.new_tensor(eps_low))


# ---------------------------------------------------------------------------------------------
# The surrogates. The difference between PPO and CFPO is these two functions.
# ---------------------------------------------------------------------------------------------


@register_policy_loss("ppo", accepts_dual_clip=True)
def ppo_loss(ratio, advantages, eps_low, eps_high, dual_clip=None):
    """PPO's clipped surrogate, paper eq. (1)/(6): ``min(r A, clip(r, 1-eps_low, 1+eps_high) A)``.

    With ``dual_clip`` = c > 1 (Ye et al., 2020), tokens with A < 0 are further bounded below by
    ``c A``, so a huge ratio on a bad token cannot dominate the batch.
    """
    surr1 = ratio * advantages
    surr2 = ratio.clamp(1 - eps_low, 1 + eps_high) * advantages
    objective = torch.min(surr1, surr2)
    if dual_clip is not None:
        objective = torch.where(advantages < 0, torch.max(objective, dual_clip * advantages), objective)
    return -objective, {}


@register_policy_loss("cfpo", metrics={"cfpo_penalty": "mean"})
def cfpo_loss(ratio, advantages, eps_low, eps_high, dual_clip=None):
    """CFPO, paper eq. (7): ``r A - |A| / (2 eps) * (r - 1)^2``.

    Concave in r and maximised at r* = 1 + sign(A) eps, so the trust region is enforced by a
    restoring gradient instead of a flat clip. With asymmetric widths eps is eps_high where A > 0
    and eps_low where A < 0 (r* = 1 + eps_high or 1 - eps_low); equal widths are exactly the paper.
    """
    if dual_clip is not None:
        raise ValueError("dual_clip bounds PPO's clipped objective; CFPO has no clip to bound: drop dual_clip")
    penalty = advantages.abs() / (2 * cfpo_eps(advantages, eps_low, eps_high)) * (ratio - 1).square()
    return -(ratio * advantages - penalty), {"cfpo_penalty": penalty}


# ---------------------------------------------------------------------------------------------
# Helpers every adapter shares.
# ---------------------------------------------------------------------------------------------


def outside_trust_region(ratio, advantages, eps_low, eps_high) -> torch.Tensor:
    """Tokens whose ratio has left [1-eps_low, 1+eps_high] in the direction A pushes it.

    This is exactly where PPO's clip binds (``surr2 < surr1``), so the clip ratio means the same for
    a PPO and a CFPO run. (r - 1)·sign(A) > eps is that condition in one comparison; A = 0 never counts.
    """
    return (ratio - 1) * advantages.sign() > cfpo_eps(advantages, eps_low, eps_high)


class _MaskedRatio(torch.autograd.Function):
    """``exp(clamp(where(mask, log_probs - old_log_probs, 0), -C, C))`` and the unclamped log r (no grad).

    One function instead of where, clamp and exp, so that the backward is two multiplications
    (dr/dlog pi = r on action tokens inside the clamp, 0 elsewhere) rather than three selects, which
    with an irregular mask are many times slower on CPU.
    """

    @staticmethod
    def forward(ctx, log_probs, old_log_probs, mask):
        log_ratio = torch.where(mask, log_probs - old_log_probs, 0.0)
        ratio = log_ratio.clamp(-LOG_RATIO_CLAMP, LOG_RATIO_CLAMP).exp()
        ctx.save_for_backward(ratio * (mask & (log_ratio.abs() <= LOG_RATIO_CLAMP)))
        ctx.set_materialize_grads(True)
        ctx.mark_non_differentiable(log_ratio)
        return log_ratio, ratio

    @staticmethod
    def backward(ctx, _, grad_ratio):
        (dratio,) = ctx.saved_tensors
        grad = grad_ratio * dratio
        return grad, -grad if ctx.needs_input_grad[1] else None, None


def ratio_from_log_probs(
    log_probs: torch.Tensor, old_log_probs: torch.Tensor, mask: torch.Tensor
) -> Tuple[torch.Tensor, torch.Tensor]:
    """``(log r, r)`` with log r zeroed on padding (r = 1 there); r from log r clamped to +-LOG_RATIO_CLAMP.

    Zeroing padding *before* exp() means padding never leaves the trust region, adds nothing to
    |r - 1| or the penalty, and inf/NaN in padded log-probs cannot reach a gradient. log r carries no
    gradient (it is for diagnostics such as ppo_kl); r does.
    """
    return _MaskedRatio.apply(log_probs, old_log_probs, mask.bool())


def masked_mean(values: torch.Tensor, mask: torch.Tensor, dim=None) -> torch.Tensor:
    """Mean over ``mask``; an empty mask gives 0, never NaN. Masked positions are selected out, not
    multiplied by 0, so a non-finite value there (padding) cannot reach the mean."""
    return torch.where(mask.bool(), values, 0.0).sum(dim=dim) / mask.sum(dim=dim).clamp(min=1)


def reduce_metrics(metrics: Metrics, mask: torch.Tensor) -> Metrics:
    """Token means of per-token diagnostics over ``mask`` (bool or 0/1; the reduction every metric declares).

    An empty mask gives 0. Padding is weighted by 0, so the values there must be finite, as every
    registered surrogate's are when r = 1 on padding (:func:`ratio_from_log_probs`) and A is finite.
    """
    if not metrics:
        return {}
    stacked = torch.stack(list(metrics.values()))  # one multiply and one sum for all of them
    mask_f = mask.to(stacked.dtype)
    sums = (stacked * mask_f).flatten(1).sum(1) / mask_f.sum().clamp(min=1)
    return dict(zip(metrics, sums.unbind()))


def aggregate_loss(
    loss: torch.Tensor,
    loss_mask: torch.Tensor,
    token_level_loss: bool = True,
    dp_size: int = 1,
    batch_num_tokens: Optional[float] = None,
    global_batch_size: Optional[float] = None,
) -> torch.Tensor:
    """Reduce a per-token loss to a scalar: token-mean or seq-mean-token-mean (paper eq. 8).

    token-mean (``token_level_loss=True``): sum over tokens / ``batch_num_tokens`` * ``dp_size``.
    seq-mean-token-mean: each sequence's token mean, summed / ``global_batch_size`` * ``dp_size``.
    Without the global totals, the local batch's own token or sequence count is used.
    ``dp_size`` cancels the gradient averaging done across data-parallel ranks (OpenRLHF's convention).
    Fully masked sequences contribute 0 and are not counted. ``loss_mask`` is bool or 0/1; padding is
    weighted by 0, so the loss there must be finite (a surrogate's is, at r = 1 with a finite A).
    """
    mask_f = loss_mask.to(loss.dtype)
    masked = loss * mask_f
    if token_level_loss:
        if batch_num_tokens is None:
            return masked.sum() / mask_f.sum().clamp(min=1)
        return masked.sum() / batch_num_tokens * dp_size
    tokens = mask_f.sum(dim=-1)
    seq_loss = masked.sum(dim=-1) / tokens.clamp(min=1)
    if global_batch_size is None:
        return seq_loss.sum() / (tokens > 0).sum().clamp(min=1)
    return seq_loss.sum() / global_batch_size * dp_size
