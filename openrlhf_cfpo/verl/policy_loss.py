"""CFPO's loss in verl 0.9.1's policy-loss signature; the package ``__init__`` registers it (see there).

The loss formula is the registry's (:mod:`openrlhf_cfpo.losses`); this module only maps verl's arguments
and conventions onto it:

- eps_low / eps_high are ``config.clip_ratio_low`` / ``clip_ratio_high``, each falling back to
  ``config.clip_ratio`` when None, as verl's ``vanilla`` reads them;
- ``config.clip_ratio_c`` (verl's dual clip, which ``vanilla`` always applies) is ignored: it bounds PPO's
  clipped objective for A < 0, and CFPO has no clip to bound (its penalty already bounds every ratio);
- ``rollout_is_weights`` multiply the per-token loss before aggregation, and aggregation is verl's
  ``agg_loss`` with ``config.global_batch_info``, both exactly as ``vanilla`` does;
- metrics are floats, as ``vanilla`` returns them (verl mean-reduces them over micro-batches): the token
  mean of every diagnostic the registry's surrogate declares, as ``actor/<name>``, except ``clip_ratio``,
  which is verl's ``actor/pg_clipfrac`` (tokens outside [1-eps_low, 1+eps_high] in A's direction: where
  PPO's clip would bind, the tokens ``vanilla`` counts); and ``actor/ppo_kl``, the token mean of -log r
  with log r clamped as ``vanilla`` clamps it. ``vanilla``'s ``actor/pg_clipfrac_lower`` counts its dual
  clip, which CFPO does not have, so it is not reported.
"""
from __future__ import annotations

from typing import Any, Optional

import torch

# Safe while `import verl` is still loading its plugins (this module is imported from there): by then
# verl's package __init__ has defined everything core_algos needs from it.
from verl.trainer.ppo.core_algos import agg_loss, register_policy_loss

from openrlhf_cfpo.losses import LOG_RATIO_CLAMP, check_policy_loss_args, masked_mean, ratio_from_log_probs, reduce_metrics

LOSS_MODE = "cfpo"
# Registry diagnostics that verl already names; every other one is logged as actor/<name>.
VERL_METRIC_NAMES = {"clip_ratio": "actor/pg_clipfrac"}


def clip_widths(config) -> tuple[float, float]:
    """``(eps_low, eps_high)`` from a verl actor config: ``clip_ratio_low`` / ``_high``, else ``clip_ratio``."""
    eps_low = config.clip_ratio_low if config.clip_ratio_low is not None else config.clip_ratio
    eps_high = config.clip_ratio_high if config.clip_ratio_high is not None else config.clip_ratio
    return float(eps_low), float(eps_high)


def compute_policy_loss_cfpo(
    old_log_prob: torch.Tensor,
    log_prob: torch.Tensor,
    advantages: torch.Tensor,
    response_mask: torch.Tensor,
    loss_agg_mode: str = "token-mean",
    config: Optional[Any] = None,
    rollout_is_weights: Optional[torch.Tensor] = None,
) -> tuple[torch.Tensor, dict[str, float]]:
    """CFPO's loss, paper eq. (7), in verl's policy-loss signature (every argument comes by keyword).

    Args:
        old_log_prob, log_prob: (batch, response_length) log-probabilities under the rollout and the current
            policy; the gradient flows through ``log_prob``.
        advantages: (batch, response_length) A per token.
        response_mask: (batch, response_length) the tokens that count.
        loss_agg_mode: verl's aggregation ("token-mean", "token-sum", "seq-mean-token-sum",
            "seq-mean-token-mean", "seq-mean-token-sum-norm").
        config: verl's ``ActorConfig`` (or a legacy DictConfig with ``clip_ratio``, ``clip_ratio_low``,
            ``clip_ratio_high`` and ``global_batch_info``). verl 0.9.1's distillation accepts only
            ``vanilla`` as its policy loss, so this is the actor's loss only.
        rollout_is_weights: optional (batch, response_length) importance weights, multiplied in per token.

    Returns:
        The scalar loss (the negated objective, aggregated by ``agg_loss``) and verl metrics as floats.
    """
    if config is None:
        raise ValueError("the cfpo policy loss reads its trust-region widths from config (verl's ActorConfig)")
    eps_low, eps_high = clip_widths(config)
    surrogate = check_policy_loss_args(LOSS_MODE, eps_low, eps_high)  # clip_ratio_c is PPO's: not passed on

    mask = response_mask.bool()
    log_ratio, ratio = ratio_from_log_probs(log_prob, old_log_prob, mask)
    per_token_loss, per_token_metrics = surrogate(ratio, advantages, eps_low, eps_high)
    if rollout_is_weights is not None:
        per_token_loss = per_token_loss * rollout_is_weights
    loss = agg_loss(loss_mat=per_token_loss, loss_mask=response_mask, loss_agg_mode=loss_agg_mode, **config.global_batch_info)

    with torch.no_grad():
        metrics = {VERL_METRIC_NAMES.get(k, f"actor/{k}"): v.item() for k, v in reduce_metrics(per_token_metrics, mask).items()}
        metrics["actor/ppo_kl"] = masked_mean(-log_ratio.clamp(-LOG_RATIO_CLAMP, LOG_RATIO_CLAMP), mask).item()
    return loss, metrics


def register() -> None:
    """Put :func:`compute_policy_loss_cfpo` in verl's registry under ``cfpo`` (idempotent)."""
    register_policy_loss(LOSS_MODE)(compute_policy_loss_cfpo)
