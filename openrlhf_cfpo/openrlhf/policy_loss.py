"""The ``PolicyLoss`` OpenRLHF 0.11.2's ActorPPOTrainer builds, over our surrogate registry.

A drop-in for ``openrlhf.models.PolicyLoss`` (same constructor, ``forward`` and 5-tuple), with OpenRLHF's
train/rollout importance-sampling correction (``is_correction_*``) applied to every surrogate, CFPO included.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import torch
import torch.nn as nn

from openrlhf_cfpo.losses import DEFAULT_POLICY_LOSS, check_policy_loss_args, token_policy_loss
from openrlhf_cfpo.ops import aggregate_loss, as_weights, masked_mean, token_means


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
    # Both log-probs are read on action tokens only: padding may hold anything (inf, NaN).
    old_log_probs = torch.where(mask, old_log_probs, 0.0)
    rollout_log_probs = torch.where(mask, rollout_log_probs, 0.0)
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


class PolicyLossOutput(NamedTuple):
    """What :meth:`PolicyLoss.compute` returns; its first five fields are OpenRLHF's 5-tuple."""

    loss: torch.Tensor  # the aggregated scalar
    clip_ratio: torch.Tensor  # token mean of the registry's clip_ratio
    ppo_kl: torch.Tensor  # token mean of -log r
    vllm_kl: torch.Tensor | None  # IS-correction diagnostics, None when is_correction_level="off"
    is_filter_ratio: torch.Tensor | None
    metrics: dict[str, torch.Tensor]  # token means of every diagnostic the surrogate declares, registry names


class PolicyLoss(nn.Module):
    """Drop-in for OpenRLHF 0.11.2's ``PolicyLoss``, with ``policy_loss_type`` any registered surrogate.

    Same constructor parameters, same ``forward`` arguments, same 5-tuple
    ``(loss, clip_ratio, ppo_kl, vllm_kl, is_filter_ratio)``; :meth:`compute` returns them with every
    diagnostic as a :class:`PolicyLossOutput`.

    - ``log_probs``, ``old_log_probs``, ``advantages``, ``action_mask``, ``rollout_log_probs``:
      ``(batch, response_len)`` tensors; ``advantages`` already broadcast per token.
    - ``loss``: the aggregated scalar (token-mean or seq-mean-token-mean, see :func:`openrlhf_cfpo.ops.aggregate_loss`).
    - ``clip_ratio``, ``ppo_kl`` and the other metrics: token means over action tokens of the registry's
      diagnostics (:data:`openrlhf_cfpo.losses.SHARED_METRICS`, and ``cfpo_penalty`` for CFPO).
    - ``vllm_kl``, ``is_filter_ratio``: the train/rollout IS-correction diagnostics, ``None`` when
      ``is_correction_level="off"``. The correction applies to CFPO exactly as to PPO.

    Numerics: log r is clamped to +-20 before exp(), so log-ratios of +-50 with |A| = 1e4 still give a finite loss
    and finite gradients (zero beyond the clamp); masked positions are zeroed *before* exp(), so garbage (inf,
    NaN) in padding never reaches the loss or its gradient, and a fully masked row contributes exactly 0.
    """

    def __init__(
        self,
        clip_eps_low: float = 0.2,
        clip_eps_high: float = 0.2,
        dual_clip: float = None,
        token_level_loss: bool = True,
        policy_loss_type: str = DEFAULT_POLICY_LOSS,
        is_correction_level: str = "off",
        is_correction_mode: str = "mask",
        is_correction_gating: str = "ratio",
        is_correction_threshold: list = (0.5, 5.0),
    ) -> None:
        super().__init__()
        self.surrogate = check_policy_loss_args(policy_loss_type, clip_eps_low, clip_eps_high, dual_clip)
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

    def compute(
        self,
        log_probs: torch.Tensor,
        old_log_probs: torch.Tensor,
        advantages: torch.Tensor,
        action_mask: torch.Tensor | None = None,
        rollout_log_probs: torch.Tensor | None = None,
        dp_size: int = 1,
        batch_num_tokens: float | None = None,
        global_batch_size: float | None = None,
    ) -> PolicyLossOutput:
        # OpenRLHF passes an int64 mask: converted once.
        mask = torch.ones_like(log_probs, dtype=torch.bool) if action_mask is None else action_mask.bool()
        per_token = token_policy_loss(
            self.surrogate,
            log_probs,
            old_log_probs,
            advantages,
            mask,
            self.clip_eps_low,
            self.clip_eps_high,
            self.dual_clip,
        )
        loss = per_token.loss
        vllm_kl = is_filter_ratio = None
        if self.is_correction_level != "off":
            if rollout_log_probs is None:
                raise ValueError("is_correction_level != off needs rollout_log_probs (the sampler's log-probs)")
            corr = is_correction(
                old_log_probs,
                rollout_log_probs,
                mask,
                self.is_correction_level,
                self.is_correction_mode,
                self.is_correction_gating,
                self.is_correction_threshold,
            )
            loss = corr.weight * loss
            vllm_kl, is_filter_ratio = corr.vllm_kl, corr.is_filter_ratio

        weights = as_weights(mask, loss)
        loss = aggregate_loss(loss, weights, self.token_level_loss, dp_size, batch_num_tokens, global_batch_size)
        with torch.no_grad():
            metrics = token_means(per_token.metrics, weights)
        return PolicyLossOutput(loss, metrics["clip_ratio"], metrics["ppo_kl"], vllm_kl, is_filter_ratio, metrics)

    def forward(self, *args, **kwargs):
        """OpenRLHF's 5-tuple ``(loss, clip_ratio, ppo_kl, vllm_kl, is_filter_ratio)``; see :meth:`compute`."""
        return tuple(self.compute(*args, **kwargs)[:5])
