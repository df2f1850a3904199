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
  mean of every diagnostic the registry's surrogate declares, under verl's name for it
  (:data:`openrlhf_cfpo.losses.LOGGED_AS`: ``clip_ratio`` is ``actor/pg_clipfrac``, the tokens where PPO's clip
  would bind, as ``vanilla`` counts them; ``ppo_kl`` is ``actor/ppo_kl`` with log r clamped as ``vanilla``
  clamps it; the others ``actor/<name>``). ``vanilla``'s ``actor/pg_clipfrac_lower`` counts its dual clip,
  which CFPO does not have, so it is not reported.
"""

from __future__ import annotations

from typing import Any

import torch

# Safe while `import verl` is still loading its plugins (this module is imported from there): by then
# verl's package __init__ has defined everything core_algos needs from it.
from verl.trainer.ppo.core_algos import agg_loss, register_policy_loss

from openrlhf_cfpo.losses import check_policy_loss_args, logged_name, token_policy_loss, trust_region
from openrlhf_cfpo.ops import token_means

LOSS_MODE = "cfpo"


def compute_policy_loss_cfpo(
    old_log_prob: torch.Tensor,
    log_prob: torch.Tensor,
    advantages: torch.Tensor,
    response_mask: torch.Tensor,
    loss_agg_mode: str = "token-mean",
    config: Any | None = None,
    rollout_is_weights: torch.Tensor | None = None,
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
    # verl's vanilla reads each side's width, falling back to clip_ratio
    eps_low, eps_high = trust_region(config.clip_ratio, config.clip_ratio_low, config.clip_ratio_high)
    surrogate = check_policy_loss_args(LOSS_MODE, eps_low, eps_high)  # clip_ratio_c is PPO's: not passed on

    mask = response_mask.bool()
    per_token = token_policy_loss(surrogate, log_prob, old_log_prob, advantages, mask, eps_low, eps_high)
    per_token_loss = per_token.loss
    if rollout_is_weights is not None:
        per_token_loss = per_token_loss * rollout_is_weights
    loss = agg_loss(
        loss_mat=per_token_loss, loss_mask=response_mask, loss_agg_mode=loss_agg_mode, **config.global_batch_info
    )

    with torch.no_grad():
        metrics = {logged_name("verl", k): v.item() for k, v in token_means(per_token.metrics, mask).items()}
    return loss, metrics


def register() -> None:
    """Put :func:`compute_policy_loss_cfpo` in verl's registry under ``cfpo`` (idempotent)."""
    register_policy_loss(LOSS_MODE)(compute_policy_loss_cfpo)
