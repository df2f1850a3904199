"""CFPO (arXiv 2601.22801) in TRL 1.16's GRPOTrainer, the surrogate taken from :mod:`openrlhf_cfpo.losses`.

Import the two classes from here instead of ``trl``; the one new setting is ``policy_loss_type``::

    from openrlhf_cfpo.trl import GRPOConfig, GRPOTrainer
    args = GRPOConfig(..., policy_loss_type="cfpo")  # default; "ppo" is TRL's own clipped surrogate

Everything else keeps TRL's meaning: ``loss_type`` only picks the aggregation (grpo, bnpo, dr_grpo, dapo);
``epsilon`` / ``epsilon_high`` are eps_low (used where A < 0) / eps_high (where A > 0); ``beta`` (k3 KL),
the vLLM importance-sampling correction, ``top_entropy_quantile``, the entropy bonus, ``tool_mask``,
``off_policy_mask_threshold`` and the MoE aux loss work as in TRL.

Logged, through TRL's metrics: ``kl``, ``entropy``, ``clip_ratio/{low_mean,low_min,high_mean,high_max,region_mean}``
(where PPO's clip binds, whichever surrogate trains), plus the surrogate's diagnostics from the registry under
their registry names: ``ratio_dev_mean`` (mean |r - 1|), the other shared ones, and for cfpo ``cfpo_penalty``.

Rejected when the config is built: loss types that are surrogates of their own (cispo, sapo, luspo, vespo),
``importance_sampling_level="sequence"`` and ``delta``.
"""
from __future__ import annotations

import inspect
from dataclasses import dataclass, field

import torch
import trl
from trl.trainer.utils import get_config_model_id, nanmax, nanmin

from openrlhf_cfpo.losses import PolicySurrogate, check_policy_loss_args, ratio_from_log_probs

__all__ = ["GRPOConfig", "GRPOTrainer", "AGGREGATIONS", "check_grpo_args"]

# TRL loss types that only aggregate the per-token clipped surrogate; the others each bring their own surrogate.
AGGREGATIONS = ("grpo", "bnpo", "dr_grpo", "dapo")

# Inputs TRL forwards to the model besides the token ids (images and their layout): read off TRL's own signature,
# they are its parameters after `compute_aux_loss`.
_FORWARD_PARAMS = list(inspect.signature(trl.GRPOTrainer._get_per_token_logps_and_entropies).parameters)
_FORWARD_INPUTS = tuple(_FORWARD_PARAMS[_FORWARD_PARAMS.index("compute_aux_loss") + 1 :])


def check_grpo_args(args) -> PolicySurrogate:
    """The surrogate ``args`` select; a setting this adapter does not implement raises one line saying what to do."""
    if args.loss_type not in AGGREGATIONS:
        raise ValueError(
            f"loss_type={args.loss_type!r} is a surrogate of its own; here the surrogate is policy_loss_type and "
            f"loss_type only aggregates it: use one of {', '.join(AGGREGATIONS)} (or trl.GRPOTrainer for {args.loss_type})"
        )
    if args.importance_sampling_level != "token":
        raise ValueError(
            f"importance_sampling_level={args.importance_sampling_level!r} (GSPO) is not supported: policy_loss_type "
            "works on per-token ratios; set importance_sampling_level='token' (or use trl.GRPOTrainer)"
        )
    if args.delta is not None:
        raise ValueError(
            f"delta={args.delta} (two-sided clipping) is not supported: policy_loss_type sets the trust region "
            "by itself; set delta=None (or use trl.GRPOTrainer)"
        )
    eps_high = args.epsilon if args.epsilon_high is None else args.epsilon_high
    return check_policy_loss_args(args.policy_loss_type, args.epsilon, eps_high)


@dataclass
class GRPOConfig(trl.GRPOConfig):
    """TRL's ``GRPOConfig`` plus ``policy_loss_type``."""

    policy_loss_type: str = field(
        default="cfpo",
        metadata={
            "help": "Per-token policy surrogate, from openrlhf_cfpo.losses: 'cfpo' (default; Clipping-Free Policy "
            "Optimization, arXiv 2601.22801: r*A - |A|/(2*eps)*(r-1)^2) or 'ppo' (TRL's clipped surrogate). "
            "`loss_type` then only picks the aggregation (grpo, bnpo, dr_grpo, dapo); `epsilon` / `epsilon_high` "
            "are the trust-region widths where A < 0 / A > 0."
        },
    )

    def __post_init__(self):
        check_grpo_args(self)
        super().__post_init__()


class GRPOTrainer(trl.GRPOTrainer):
    """TRL's ``GRPOTrainer`` with its per-token surrogate taken from ``args.policy_loss_type``."""

    def __init__(self, model, reward_funcs=None, args: GRPOConfig | None = None, *rest, **kwargs):
        if args is None:
            name = model if isinstance(model, str) else get_config_model_id(model.config)
            args = GRPOConfig(f"{name.split('/')[-1]}-GRPO")
        if not isinstance(args, GRPOConfig):
            raise TypeError(
                f"args is a {type(args).__module__}.{type(args).__name__}: pass openrlhf_cfpo.trl.GRPOConfig, "
                "which adds policy_loss_type"
            )
        # Fields can change after the config is built: check again, before any model loads.
        self.policy_surrogate = check_grpo_args(args)
        super().__init__(model, reward_funcs, args, *rest, **kwargs)

    # TRL 1.16 computes its surrogate inline in `_compute_loss`, so this replaces it whole, step for step:
    # forward, masks, ratio, surrogate, KL, aggregation per loss_type, entropy bonus, MoE aux loss, metrics.
    def _compute_loss(self, model, inputs):
        mode = "train" if self.model.training else "eval"
        mask = inputs["completion_mask"]
        if "tool_mask" in inputs:  # tool outputs sit in the completion but are not the policy's actions
            mask = mask * inputs["tool_mask"]
        log_probs, entropies, aux_loss = self._policy_forward(model, inputs)
        entropy_mask = None
        if self.top_entropy_quantile < 1.0:
            entropy_mask = self.get_high_entropy_mask(entropies, mask, 1 - self.top_entropy_quantile)

        advantages = inputs["advantages"]
        if advantages.dim() == 1:  # one advantage per sequence; a subclass may give one per token, (B, T)
            advantages = advantages.unsqueeze(1)
        old_log_probs = inputs.get("old_per_token_logps")
        if old_log_probs is None:  # TRL skips it when each batch is used once, on-policy: r = 1 (with its gradient)
            old_log_probs = log_probs.detach()
        # TRL's exp(log pi - log pi_old) on action tokens (|log r| < 20); 1 on padding, so nothing leaks from there.
        _, ratio = ratio_from_log_probs(log_probs, old_log_probs, mask.bool())

        per_token_loss, token_metrics = self.policy_surrogate(ratio, advantages, self.epsilon_low, self.epsilon_high)
        if self.off_policy_mask_threshold is not None:
            per_token_loss = per_token_loss * self.get_off_policy_mask(
                advantages=advantages,
                per_token_logps=log_probs,
                sampling_per_token_logps=inputs.get("sampling_per_token_logps", old_log_probs),
                mask=mask,
                off_policy_threshold=self.off_policy_mask_threshold,
            )
        if entropy_mask is not None:
            per_token_loss = per_token_loss * entropy_mask
        if self.use_vllm and self.vllm_importance_sampling_correction:  # pi_old / pi_vllm: tokens came from vLLM
            per_token_loss = per_token_loss * inputs["importance_sampling_ratio"]
        per_token_kl = None
        if self.beta != 0.0:
            # k3 estimate of KL(pi_theta || pi_ref); the tokens were sampled from pi_old, hence the optional weight r.
            ref_minus_policy = inputs["ref_per_token_logps"] - log_probs
            per_token_kl = torch.exp(ref_minus_policy) - ref_minus_policy - 1
            if self.args.use_bias_correction_kl:
                per_token_kl = per_token_kl * ratio
            per_token_loss = per_token_loss + self.beta * per_token_kl

        loss, policy_loss = self._aggregate(per_token_loss, mask, inputs, mode)
        if self._entropy_bonus_enabled:
            bonus_mask = mask if entropy_mask is None else mask * entropy_mask
            loss = loss - self._entropy_bonus(entropies, bonus_mask, mode)
            self._metrics[mode]["policy_loss"].append(self.accelerator.gather(policy_loss).nanmean().item())
            self._update_adaptive_entropy(entropies, bonus_mask, mode)
        if self.aux_loss_enabled:  # scaled for accumulation like the policy loss (HF's own scaling is off here)
            loss = loss + self.router_aux_loss_coef * aux_loss / self._accumulation(mode)
            self._metrics[mode]["aux_loss"].append(self.accelerator.gather_for_metrics(aux_loss).mean().item())

        self._log_policy_metrics(mode, mask, advantages, entropies, per_token_kl, token_metrics)
        return loss

    def _policy_forward(self, model, inputs):
        """Per-token log-probs, entropies and MoE aux loss of the completion under ``model``."""
        prompt_ids, completion_ids = inputs["prompt_ids"], inputs["completion_ids"]
        return self._get_per_token_logps_and_entropies(
            model,
            torch.cat([prompt_ids, completion_ids], dim=1),
            torch.cat([inputs["prompt_mask"], inputs["completion_mask"]], dim=1),
            completion_ids.size(1),
            compute_entropy=True,
            compute_aux_loss=self.aux_loss_enabled,
            **{name: inputs[name] for name in _FORWARD_INPUTS if name in inputs},
        )

    def _accumulation(self, mode) -> float:
        """Micro-batches per optimizer step: what each loss is divided by in training, never in eval."""
        return self.current_gradient_accumulation_steps if mode == "train" else 1.0

    def _aggregate(self, per_token_loss, mask, inputs, mode):
        """``(loss to backpropagate, policy loss to log)``, reduced over tokens as TRL's ``loss_type`` says."""
        masked = per_token_loss * mask
        if self.loss_type == "dapo":
            # num_items_in_batch counts the generation batch's tokens on every process; rescale it to this
            # process's share of one accumulation window.
            n_tokens = inputs["num_items_in_batch"].clamp(min=1.0) / self.accelerator.num_processes
            if mode == "train":
                n_tokens = n_tokens * self.current_gradient_accumulation_steps / self.args.steps_per_generation
            loss = masked.sum() / n_tokens
            return loss, loss.detach()
        if self.loss_type == "grpo":  # each sequence's token mean, then the mean over sequences
            loss = (masked.sum(-1) / mask.sum(-1).clamp(min=1.0)).mean()
        elif self.loss_type == "bnpo":  # token mean over the local batch
            loss = masked.sum() / mask.sum().clamp(min=1.0)
        else:  # dr_grpo: a constant denominator, B * max_completion_length
            loss = masked.sum() / (per_token_loss.size(0) * self.max_completion_length)
        return loss / self._accumulation(mode), loss.detach()

    def _entropy_bonus(self, entropies, mask, mode):
        """``coef * mean entropy`` over ``mask``, scaled for accumulation only (not by the loss type's normaliser).

        In adaptive mode the coefficient and its gate come from the previous optimizer step, so every
        micro-batch of a window gets the same bonus.
        """
        coef = self.entropy_coef
        if self.use_adaptive_entropy and self._last_world_entropy > self.args.entropy_target:
            coef = 0.0
        mean_entropy = (entropies * mask).sum() / mask.sum().clamp(min=1.0) / self._accumulation(mode)
        return coef * mean_entropy

    def _update_adaptive_entropy(self, entropies, mask, mode):
        """TRL's adaptive entropy controller, then the coefficient logged at each optimizer step (static or not).

        At each optimizer step the coefficient moves by entropy_coef_delta towards entropy_target. The entropy it
        reads is the token mean over the whole accumulation window on every process, summed micro-batch by
        micro-batch, so a window's last micro-batch does not stand in for all of it.
        """
        if self.use_adaptive_entropy and mode == "train":
            stats = torch.stack([(entropies * mask).sum(), mask.sum()]).detach()
            window = self._entropy_window_stats
            self._entropy_window_stats = stats if window is None else window + stats
            if self.accelerator.sync_gradients:
                totals = self.accelerator.reduce(self._entropy_window_stats, reduction="sum")
                world_entropy = (totals[0] / totals[1].clamp(min=1.0)).item()
                if world_entropy <= self.args.entropy_target:
                    self.entropy_coef = min(self.entropy_coef + self.args.entropy_coef_delta, self.args.entropy_coef_max)
                else:
                    self.entropy_coef = max(self.entropy_coef - self.args.entropy_coef_delta, self.args.entropy_coef_min)
                self._last_world_entropy = world_entropy
                self._entropy_window_stats = None
        if mode == "train" and self.accelerator.sync_gradients:
            self._metrics[mode]["entropy_coef"].append(self.entropy_coef)

    def _global_token_mean(self, values, mask) -> float:
        """Token mean over ``mask`` on all processes (sums and counts first, so each token weighs the same)."""
        totals = self.accelerator.reduce(torch.stack([(values * mask).sum(), mask.sum().float()]), reduction="sum")
        return (totals[0] / totals[1].clamp(min=1.0)).item()

    @torch.no_grad()
    def _log_policy_metrics(self, mode, mask, advantages, entropies, per_token_kl, token_metrics):
        metrics = self._metrics[mode]
        if per_token_kl is not None:
            metrics["kl"].append(self._global_token_mean(per_token_kl, mask))
        metrics["entropy"].append(self._global_token_mean(entropies, mask))

        # TRL's clip metrics, split by the side the ratio left the trust region on (low: A < 0, high: A > 0).
        clipped = token_metrics["clip_ratio"].bool()
        low, high = (clipped & (advantages < 0)).float(), (clipped & (advantages > 0)).float()
        metrics["clip_ratio/low_mean"].append(self._global_token_mean(low, mask))
        metrics["clip_ratio/high_mean"].append(self._global_token_mean(high, mask))
        metrics["clip_ratio/region_mean"].append(self._global_token_mean(clipped.float(), mask))
        # Per-sequence fractions; a sequence with no action tokens gives NaN, which nanmin / nanmax skip.
        seq_low = (low * mask).sum(-1) / mask.sum(-1)
        seq_high = (high * mask).sum(-1) / mask.sum(-1)
        metrics["clip_ratio/low_min"].append(nanmin(self.accelerator.gather(seq_low)).item())
        metrics["clip_ratio/high_max"].append(nanmax(self.accelerator.gather(seq_high)).item())

        # The registry's other diagnostics (|r - 1|, cfpo_penalty, ...): token means, as it declares them.
        for name in self.policy_surrogate.metrics:
            if name != "clip_ratio":
                metrics[name].append(self._global_token_mean(token_metrics[name], mask))
