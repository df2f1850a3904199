"""Policy surrogates for RLHF: PPO's clipped objective and CFPO's quadratic penalty (arXiv 2601.22801).

Notation follows the paper: ``ratio`` r = pi_theta / pi_old per token, ``advantages`` A,
``eps_low`` / ``eps_high`` the trust-region half-widths below and above r = 1.

Every surrogate in :data:`POLICY_LOSSES` has one signature,
``(ratio, advantages, eps_low, eps_high, dual_clip) -> (per_token_loss, metrics)``, returns the
*negated* objective per token (a loss to minimise) and a dict of per-token diagnostics.
Masking, importance-sampling correction and aggregation are done once, in :class:`PolicyLoss`,
which is a drop-in replacement for OpenRLHF 0.11.2's ``openrlhf.models.PolicyLoss``.
"""
from __future__ import annotations

from typing import Callable, Dict, NamedTuple, Optional, Sequence, Tuple

import torch
import torch.nn as nn

Metrics = Dict[str, torch.Tensor]
Surrogate = Callable[..., Tuple[torch.Tensor, Metrics]]

POLICY_LOSSES: Dict[str, Surrogate] = {}

# |log r| is clamped here before exp(). Beyond e^20 (r ~ 5e8) a ratio carries no information the
# optimiser can use, and CFPO's (r-1)^2 overflows float32 near |log r| ~ 44 already; 20 is also the
# bound OpenRLHF's PPO uses, so the two losses see the same ratios.
LOG_RATIO_CLAMP = 20.0


def register_policy_loss(name: str) -> Callable[[Surrogate], Surrogate]:
    def wrap(fn: Surrogate) -> Surrogate:
        POLICY_LOSSES[name] = fn
        return fn

    return wrap


def get_policy_loss(name: str) -> Surrogate:
    """The surrogate registered under ``name``; an unknown name lists the known ones."""
    try:
        return POLICY_LOSSES[name]
    except KeyError:
        raise ValueError(f"unknown policy loss {name!r}; known policy losses: {', '.join(sorted(POLICY_LOSSES))}")


def cfpo_eps(advantages: torch.Tensor, eps_low: float, eps_high: float) -> torch.Tensor | float:
    """The trust-region width CFPO uses per token: eps_high where A > 0, eps_low where A < 0."""
    if eps_low == eps_high:
        return eps_low
    return torch.where(advantages > 0, advantages.new_tensor(eps_high), advantages.new_tensor(eps_low))


# ---------------------------------------------------------------------------------------------
# The surrogates. The difference between PPO and CFPO is these two functions.
# ---------------------------------------------------------------------------------------------


@register_policy_loss("ppo")
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


@register_policy_loss("cfpo")
def cfpo_loss(ratio, advantages, eps_low, eps_high, dual_clip=None):
    """CFPO, paper eq. (7): ``r A - |A| / (2 eps) * (r - 1)^2``.

    Concave in r and maximised at r* = 1 + sign(A) eps, so the trust region is enforced by a
    restoring gradient instead of a flat clip. With asymmetric widths eps is eps_high where A > 0
    and eps_low where A < 0 (r* = 1 + eps_high or 1 - eps_low); equal widths are exactly the paper.
    """
    if dual_clip is not None:
        raise ValueError("dual_clip bounds PPO's clipped objective; CFPO has no clip to bound, drop --actor.dual_clip")
    penalty = advantages.abs() / (2 * cfpo_eps(advantages, eps_low, eps_high)) * (ratio - 1).square()
    return -(ratio * advantages - penalty), {"cfpo_penalty": penalty.detach()}


# ---------------------------------------------------------------------------------------------
# Diagnostics shared by every surrogate (computed under no_grad, next to the loss).
# ---------------------------------------------------------------------------------------------


def outside_trust_region(ratio, advantages, eps_low, eps_high) -> torch.Tensor:
    """Tokens whose ratio has left [1-eps_low, 1+eps_high] in the direction A pushes it.

    This is exactly where PPO's clip binds (OpenRLHF's ``surr2 < surr1``), so ``ppo_clip_ratio``
    means the same for a PPO and a CFPO run and both share one plot.
    """
    return ((advantages > 0) & (ratio > 1 + eps_high)) | ((advantages < 0) & (ratio < 1 - eps_low))


def masked_mean(values: torch.Tensor, mask: torch.Tensor, dim=None) -> torch.Tensor:
    """Mean over ``mask``; an empty mask gives 0, never NaN."""
    return (values * mask).sum(dim=dim) / mask.sum(dim=dim).clamp(min=1)


def aggregate_loss(
    loss: torch.Tensor,
    loss_mask: torch.Tensor,
    token_level_loss: bool = True,
    dp_size: int = 1,
    batch_num_tokens: Optional[float] = None,
    global_batch_size: Optional[float] = None,
) -> torch.Tensor:
    """Reduce a per-token loss to a scalar, as OpenRLHF 0.11.2 does.

    token-mean (``token_level_loss=True``): sum over tokens / ``batch_num_tokens`` * ``dp_size``.
    seq-mean-token-mean: each sequence's token mean, summed / ``global_batch_size`` * ``dp_size``.
    Without the global totals, the local batch's own token or sequence count is used.
    ``dp_size`` cancels the gradient averaging DeepSpeed does across data-parallel ranks.
    Fully masked sequences contribute 0 and are not counted; masked positions are selected out,
    not multiplied by 0, so a non-finite value there cannot turn the sum into NaN.
    """
    loss_mask = loss_mask.bool()
    masked = torch.where(loss_mask, loss, 0.0)
    if token_level_loss:
        if batch_num_tokens is None:
            return masked.sum() / loss_mask.sum().clamp(min=1)
        return masked.sum() / batch_num_tokens * dp_size
    tokens = loss_mask.sum(dim=-1)
    seq_loss = masked.sum(dim=-1) / (tokens + 1e-8)
    if global_batch_size is None:
        return seq_loss.sum() / (tokens > 0).sum().clamp(min=1)
    return seq_loss.sum() / global_batch_size * dp_size


# ---------------------------------------------------------------------------------------------
# Train/rollout importance-sampling correction (OpenRLHF's is_correction_*), for every surrogate.
# ---------------------------------------------------------------------------------------------


class ISCorrection(NamedTuple):
    weight: torch.Tensor  # per-token factor on the loss
    vllm_kl: torch.Tensor  # mean log(pi_rollout / pi_train) over action tokens
    is_filter_ratio: torch.Tensor  # fraction of units (tokens or sequences) gated out or clamped


def is_correction(
    old_log_probs: torch.Tensor,
    rollout_log_probs: torch.Tensor,
    mask: torch.Tensor,
    level: str,
    mode: str,
    gating: str,
    threshold: Sequence[float],
) -> ISCorrection:
    """Correct for the mismatch between the training engine (pi_old) and the sampler (vLLM).

    A gate reads one statistic per unit (per token, or per sequence at ``level="seq"``): the IS
    ratio pi_old/pi_rollout itself (geometric mean per sequence), or a divergence between the two
    sampled-token probabilities (``binary_kl`` or ``tv``, plain mean per sequence).
    ``mode="mask"`` keeps in-band units with their per-token IS weight and drops the rest;
    ``mode="clip"`` clamps the per-token ratio into the band.
    """
    low, high = threshold
    log_is = (old_log_probs - rollout_log_probs).detach()
    if gating == "ratio":
        stat = masked_mean(log_is, mask, dim=-1).unsqueeze(-1) if level == "seq" else log_is
        stat = stat.exp()
    else:
        # Clamp so that the binary KL's logs stay finite for probabilities at 0 or 1.
        p = rollout_log_probs.detach().exp().clamp(1e-6, 1 - 1e-6)
        q = old_log_probs.detach().exp().clamp(1e-6, 1 - 1e-6)
        if gating == "binary_kl":
            stat = p * (p / q).log() + (1 - p) * ((1 - p) / (1 - q)).log()
        else:  # tv
            stat = (p - q).abs()
        if level == "seq":
            stat = masked_mean(stat, mask, dim=-1).unsqueeze(-1)
    if mode == "clip":
        weight = stat.clamp(min=low, max=high)
        filtered = (stat < low) | (stat > high)
    else:
        keep = (stat >= low) & (stat <= high)
        weight = torch.where(keep, log_is.exp(), 0.0)
        filtered = ~keep
    if level == "seq":
        filter_ratio = filtered.float().mean()
    else:
        filter_ratio = masked_mean(filtered.float(), mask)
    vllm_kl = masked_mean(rollout_log_probs - old_log_probs, mask)
    return ISCorrection(weight, vllm_kl, filter_ratio)


def check_is_correction_args(level: str, mode: str, gating: str, threshold: Sequence[float]) -> None:
    if level not in {"off", "token", "seq"}:
        raise ValueError(f"is_correction_level must be off/token/seq, got {level!r}")
    if mode not in {"mask", "clip"}:
        raise ValueError(f"is_correction_mode must be mask/clip, got {mode!r}")
    if gating not in {"ratio", "binary_kl", "tv"}:
        raise ValueError(f"is_correction_gating must be ratio/binary_kl/tv, got {gating!r}")
    if mode == "clip" and (level == "seq" or gating != "ratio"):
        raise ValueError("is_correction_mode=clip clamps a per-token ratio: it needs level=token and gating=ratio")
    if gating != "ratio" and level != "off" and threshold[0] > 0:
        raise ValueError(f"is_correction_gating={gating} bounds a divergence from above: give a single HIGH threshold")


# ---------------------------------------------------------------------------------------------
# The nn.Module OpenRLHF's ActorPPOTrainer builds.
# ---------------------------------------------------------------------------------------------


class PolicyLoss(nn.Module):
    """Drop-in for OpenRLHF 0.11.2's ``PolicyLoss``, with ``policy_loss_type`` "ppo" or "cfpo".

    Same constructor parameters, same ``forward`` arguments, same 5-tuple
    ``(loss, clip_ratio, ppo_kl, vllm_kl, is_filter_ratio)``:

    - ``log_probs``, ``old_log_probs``, ``advantages``, ``action_mask``, ``rollout_log_probs``:
      ``(batch, response_len)`` tensors; ``advantages`` already broadcast per token.
    - ``loss``: the aggregated scalar (token-mean or seq-mean-token-mean, see :func:`aggregate_loss`).
    - ``clip_ratio``: fraction of action tokens outside the trust region in the direction of A
      (where PPO's clip binds), for either loss type.
    - ``ppo_kl``: mean of log(pi_old / pi_theta) over action tokens (the k1 estimate of
      KL(pi_old || pi_theta)).
    - ``vllm_kl``, ``is_filter_ratio``: the train/rollout IS-correction diagnostics, ``None`` when
      ``is_correction_level="off"``. The correction applies to CFPO exactly as to PPO.

    Numerics: log r is clamped to +-20 (:data:`LOG_RATIO_CLAMP`) before exp(), so log-ratios of
    +-50 with |A| = 1e4 still give a finite loss and finite gradients (zero beyond the clamp);
    masked positions are zeroed *before* exp(), so garbage (inf, NaN) in padding never reaches
    the loss or its gradient, and a fully masked row contributes exactly 0.

    ``self.last_metrics`` holds the surrogate's extra diagnostics for the last call (masked means:
    ``ratio_dev_mean``, ``ratio_dev_max`` = mean and max |r - 1|, and ``cfpo_penalty`` for CFPO).
    """

    def __init__(
        self,
        clip_eps_low: float = 0.2,
        clip_eps_high: float = 0.2,
        dual_clip: float = None,
        token_level_loss: bool = True,
        policy_loss_type: str = "ppo",
        is_correction_level: str = "off",
        is_correction_mode: str = "mask",
        is_correction_gating: str = "ratio",
        is_correction_threshold: list = (0.5, 5.0),
    ) -> None:
        super().__init__()
        self.surrogate = get_policy_loss(policy_loss_type)
        if not (clip_eps_low > 0 and clip_eps_high > 0):
            raise ValueError(f"clip eps must be > 0 (got low={clip_eps_low}, high={clip_eps_high}): it is the trust-region width")
        if dual_clip is not None:
            if policy_loss_type == "cfpo":
                raise ValueError(
                    "dual_clip is a lower bound on PPO's clipped objective for A < 0; CFPO's quadratic penalty "
                    "already bounds every ratio, so dual_clip cannot be combined with policy_loss_type=cfpo"
                )
            if dual_clip <= 1.0:
                raise ValueError(f"dual_clip must be > 1.0, got {dual_clip}")
        check_is_correction_args(is_correction_level, is_correction_mode, is_correction_gating, is_correction_threshold)
        self.clip_eps_low = clip_eps_low
        self.clip_eps_high = clip_eps_high
        self.dual_clip = dual_clip
        self.token_level_loss = token_level_loss
        self.policy_loss_type = policy_loss_type
        self.is_correction_level = is_correction_level
        self.is_correction_mode = is_correction_mode
        self.is_correction_gating = is_correction_gating
        self.is_correction_threshold = tuple(is_correction_threshold)
        self.last_metrics: Dict[str, float] = {}

    def forward(
        self,
        log_probs: torch.Tensor,
        old_log_probs: torch.Tensor,
        advantages: torch.Tensor,
        action_mask: Optional[torch.Tensor] = None,
        rollout_log_probs: Optional[torch.Tensor] = None,
        dp_size: int = 1,
        batch_num_tokens: Optional[float] = None,
        global_batch_size: Optional[float] = None,
    ):
        mask = torch.ones_like(log_probs, dtype=torch.bool) if action_mask is None else action_mask.bool()
        # Zeroing log r on padding makes r == 1 there: padding never leaves the trust region, adds
        # nothing to |r - 1| or the penalty, and inf/NaN in padded log-probs cannot reach a gradient.
        log_ratio = torch.where(mask, log_probs - old_log_probs, 0.0)
        ratio = log_ratio.clamp(-LOG_RATIO_CLAMP, LOG_RATIO_CLAMP).exp()
        loss, metrics = self.surrogate(ratio, advantages, self.clip_eps_low, self.clip_eps_high, self.dual_clip)

        vllm_kl = is_filter_ratio = None
        if self.is_correction_level != "off":
            if rollout_log_probs is None:
                raise ValueError("is_correction_level != off needs rollout_log_probs (the sampler's log-probs)")
            corr = is_correction(
                old_log_probs, rollout_log_probs, mask, self.is_correction_level,
                self.is_correction_mode, self.is_correction_gating, self.is_correction_threshold,
            )
            loss = corr.weight * loss
            vllm_kl, is_filter_ratio = corr.vllm_kl, corr.is_filter_ratio

        loss = aggregate_loss(loss, mask, self.token_level_loss, dp_size, batch_num_tokens, global_batch_size)
        with torch.no_grad():
            n_tokens = mask.sum().clamp(min=1)
            clip_ratio = outside_trust_region(ratio, advantages, self.clip_eps_low, self.clip_eps_high).sum() / n_tokens
            ppo_kl = -log_ratio.sum() / n_tokens
            dev = (ratio - 1).abs()
            self.last_metrics = {
                "ratio_dev_mean": dev.sum() / n_tokens,
                "ratio_dev_max": dev.max() if dev.numel() else dev.sum(),
                **{k: torch.where(mask, v, 0.0).sum() / n_tokens for k, v in metrics.items()},
            }
        return loss, clip_ratio, ppo_kl, vllm_kl, is_filter_ratio
