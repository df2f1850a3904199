"""Tensor plumbing under the surrogates: the masked ratio, the one masked mean, and loss aggregation.

Kept apart from :mod:`openrlhf_cfpo.losses` so that file holds the paper's formulas and nothing else.

Padding, one rule: garbage is cut off where it can enter, once, by *selecting* (the log-probs, in
:func:`ratio_from_log_probs`, so r = 1 and log r = 0 on padding whatever the log-probs hold there); every reduction
after that is a sum weighted by the mask (:func:`masked_sum`), as OpenRLHF, TRL and verl reduce, so the values
reduced must be finite on padding. Every per-token value of a surrogate is, given a finite advantage there (OpenRLHF
and verl zero advantages on padding; TRL's are per sequence). Masks are bool or 0/1.
"""

from __future__ import annotations

import torch

# |log r| is clamped here before exp(). Beyond e^20 (r ~ 5e8) a ratio carries no information the optimiser can
# use, and CFPO's (r-1)^2 overflows float32 near |log r| ~ 44 already; 20 is also the bound OpenRLHF's PPO and
# verl's vanilla loss use, so every surrogate sees the same ratios.
LOG_RATIO_CLAMP = 20.0


class _MaskedRatio(torch.autograd.Function):
    """``(log r, r)``: log r = where(mask, log pi - log pi_old, 0) clamped to +-C, r = exp(log r); log r has no grad.

    One function instead of where, clamp and exp, so that the backward is two multiplications (dr/dlog pi = r on
    action tokens inside the clamp, 0 elsewhere) rather than three selects, which with an irregular mask are many
    times slower on CPU.
    """

    @staticmethod
    def forward(ctx, log_probs, old_log_probs, mask):
        raw = torch.where(mask, log_probs - old_log_probs, 0.0)
        log_ratio = raw.clamp(-LOG_RATIO_CLAMP, LOG_RATIO_CLAMP)
        ratio = log_ratio.exp()
        ctx.save_for_backward(torch.where(mask & (raw.abs() <= LOG_RATIO_CLAMP), ratio, 0.0))
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
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(log r, r)`` per token, log r clamped to +-:data:`LOG_RATIO_CLAMP` and 0 on padding (so r = 1 there).

    Zeroing padding *before* exp() means padding never leaves the trust region, adds nothing to |r - 1| or the
    penalty, and inf/NaN in padded log-probs cannot reach a gradient. log r carries no gradient (it is for
    diagnostics such as ppo_kl); r does.
    """
    return _MaskedRatio.apply(log_probs, old_log_probs, mask.bool())


def masked_sum(values: torch.Tensor, mask: torch.Tensor, dim=None) -> torch.Tensor:
    """Sum of ``values`` weighted by ``mask`` (broadcast against ``values``; finite values on padding, see above)."""
    weighted = values * mask
    return weighted.sum() if dim is None else weighted.sum(dim=dim)


def masked_mean(values: torch.Tensor, mask: torch.Tensor, dim=None) -> torch.Tensor:
    """Mean of ``values`` over the positions of ``mask``; an empty mask gives 0, never NaN."""
    count = mask.sum() if dim is None else mask.sum(dim=dim)
    return masked_sum(values, mask, dim) / count.clamp(min=1)


def as_weights(mask: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """``mask`` in ``like``'s dtype when that dtype counts tokens exactly (float32/64), converted once: a product with
    a bool or integer mask converts it again on every call. Other dtypes (bf16) keep the mask, so counts stay exact."""
    if like.dtype not in (torch.float32, torch.float64) or mask.dtype == like.dtype:
        return mask
    return mask.to(like.dtype)


def token_means(per_token: dict[str, torch.Tensor], mask: torch.Tensor) -> dict[str, torch.Tensor]:
    """:func:`masked_mean` of each per-token diagnostic over the whole ``mask``, one dot product each (this runs on
    every micro-batch; float diagnostics)."""
    if not per_token:
        return {}
    dtype = next(iter(per_token.values())).dtype
    count = mask.sum().clamp(min=1)
    weights = mask.reshape(-1).to(dtype)
    return {name: torch.dot(v.expand_as(mask).reshape(-1), weights) / count for name, v in per_token.items()}


def aggregate_loss(
    loss: torch.Tensor,
    mask: torch.Tensor,
    token_level_loss: bool = True,
    dp_size: int = 1,
    batch_num_tokens: float | None = None,
    global_batch_size: float | None = None,
) -> torch.Tensor:
    """Reduce a per-token loss to a scalar: token-mean or seq-mean-token-mean (paper eq. 8).

    token-mean (``token_level_loss=True``): sum over tokens / ``batch_num_tokens`` * ``dp_size``.
    seq-mean-token-mean: each sequence's token mean, summed / ``global_batch_size`` * ``dp_size``.
    Without the global totals, the local batch's own token or sequence count is used. ``dp_size`` cancels the
    gradient averaging done across data-parallel ranks (OpenRLHF's convention). Fully masked sequences
    contribute 0 and are not counted.
    """
    mask = as_weights(mask, loss)
    if token_level_loss:
        if batch_num_tokens is None:
            return masked_mean(loss, mask)
        return masked_sum(loss, mask) / batch_num_tokens * dp_size
    seq_loss = masked_mean(loss, mask, dim=-1)
    if global_batch_size is None:
        return seq_loss.sum() / mask.any(dim=-1).sum().clamp(min=1)
    return seq_loss.sum() / global_batch_size * dp_size
