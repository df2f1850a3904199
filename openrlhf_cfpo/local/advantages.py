"""Advantages as OpenRLHF 0.11.2 computes them for RLOO, REINFORCE++-baseline and group-norm.

The steps, in OpenRLHF's order:

1. group baseline on the scalar rewards, per prompt (:func:`openrlhf_cfpo.advantages.group_baseline`);
2. the shaped scalar is clipped to ``--reward.clip_range`` and placed on the last response token,
   and ``-kl_coef * kl_t`` is added at every response token (KL folded into the reward);
3. returns are reverse cumulative sums (gamma = 1) over the masked per-token rewards, and the
   advantages are those returns;
4. reinforce_baseline alone then whitens the advantages over all response tokens of the rollout.
"""

from __future__ import annotations

import torch

from ..advantages import group_baseline
from ..ops import masked_mean

# OpenRLHF bounds each per-token KL estimate to this range before it enters the reward.
KL_CLAMP = 10.0


def approx_kl(log_probs: torch.Tensor, ref_log_probs: torch.Tensor, estimator: str = "k1") -> torch.Tensor:
    """Per-token estimate of KL(pi || pi_ref) from the sampled tokens' log-probs (Schulman's k1/k2/k3)."""
    log_ratio = log_probs.float() - ref_log_probs.float()
    if estimator == "k1":
        kl = log_ratio
    elif estimator == "k2":
        kl = log_ratio.square() / 2
    elif estimator == "k3":
        # exp overflows beyond here and the value is clamped anyway.
        lr = log_ratio.clamp(min=-KL_CLAMP)
        kl = (-lr).exp() - 1 + lr
    else:
        raise ValueError(f"unknown kl estimator {estimator!r}; choose k1, k2 or k3")
    return kl.clamp(-KL_CLAMP, KL_CLAMP)


def per_token_rewards(
    shaped: torch.Tensor,
    kl: torch.Tensor,
    action_mask: torch.Tensor,
    kl_coef: float,
    clip_range: tuple[float, float] | None,
) -> torch.Tensor:
    """Step 2: ``-kl_coef * kl`` at every token plus the clipped scalar on the last response token."""
    if clip_range is not None:
        shaped = shaped.clamp(min=clip_range[0], max=clip_range[1])
    mask = action_mask.long()
    # Index of the last 1 in each row (rows are right-padded responses).
    last = mask.size(1) - 1 - mask.flip(1).argmax(dim=1, keepdim=True)
    final = torch.zeros_like(kl, dtype=torch.float32).scatter_(1, last, shaped.float().unsqueeze(1))
    return final - max(kl_coef, 0.0) * kl.float()


def cumulative_returns(rewards: torch.Tensor, action_mask: torch.Tensor) -> torch.Tensor:
    """Step 3: ``G_t = sum_{s >= t} r_s`` over response tokens (gamma = 1)."""
    masked = rewards * action_mask
    return masked.flip(1).cumsum(1).flip(1)


def whiten(advantages: torch.Tensor, action_mask: torch.Tensor) -> torch.Tensor:
    """Step 4 (reinforce_baseline): zero mean, unit variance over all response tokens."""
    mean = masked_mean(advantages, action_mask)
    var = masked_mean((advantages - mean).square(), action_mask)
    return (advantages - mean) * var.clamp(min=1e-8).rsqrt()


def compute_advantages(
    rewards: torch.Tensor,
    kl: torch.Tensor,
    action_mask: torch.Tensor,
    n_samples_per_prompt: int,
    estimator: str,
    kl_coef: float,
    clip_range: tuple[float, float] | None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """All four steps for one rollout; returns ``(advantages, returns)``, both (batch, response_len)."""
    shaped = group_baseline(rewards, n_samples_per_prompt, estimator)
    token_rewards = per_token_rewards(shaped, kl, action_mask, kl_coef, clip_range)
    returns = cumulative_returns(token_rewards, action_mask.float())
    advantages = returns.clone()
    if estimator == "reinforce_baseline":
        advantages = whiten(advantages, action_mask.float())
    return advantages, returns
