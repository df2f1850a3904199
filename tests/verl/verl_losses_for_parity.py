"""verl's registered `cfpo` loss on saved tensors, for the cross-framework parity test (run it in .venv-verl).

    .venv-verl/bin/python tests/verl/verl_losses_for_parity.py IN.pt OUT.pt

IN.pt: a dict saved by torch.save with ``log_probs``, ``old_log_probs``, ``advantages`` (B, T), ``mask``
(B, T, bool), ``eps_low``, ``eps_high``. OUT.pt: ``{mode: {"loss": scalar tensor, "grad": d loss / d log_probs
(B, T), "metrics": {verl metric name: float}}}`` for each mode in LOSS_AGG_MODES, all float64 (inputs are
cast to float64 first). The loss is looked up with verl's ``get_policy_loss_fn`` after ``import verl`` alone,
so it arrives through the ``verl.plugins`` entry point as in a verl worker; no global batch info is set, so
both modes are local means.
"""

import sys

import torch
import verl  # noqa: F401  (loads the verl.plugins entry points, which register cfpo)
from verl.trainer.ppo.core_algos import POLICY_LOSS_REGISTRY, get_policy_loss_fn
from verl.workers.config import ActorConfig, PolicyLossConfig

LOSS_AGG_MODES = ("token-mean", "seq-mean-token-mean")


def verl_cfpo_losses(inputs: dict) -> dict:
    """Loss, gradient and metrics of verl's cfpo loss for each of LOSS_AGG_MODES."""
    old_log_probs = inputs["old_log_probs"].detach().double()
    advantages = inputs["advantages"].detach().double()
    mask = inputs["mask"].bool()
    results = {}
    for mode in LOSS_AGG_MODES:
        config = ActorConfig(
            strategy="fsdp",
            rollout_n=1,
            ppo_micro_batch_size_per_gpu=1,
            clip_ratio_low=float(inputs["eps_low"]),
            clip_ratio_high=float(inputs["eps_high"]),
            loss_agg_mode=mode,
            policy_loss=PolicyLossConfig(loss_mode="cfpo"),
        )
        log_probs = inputs["log_probs"].detach().double().requires_grad_(True)
        loss, metrics = get_policy_loss_fn(config.policy_loss.loss_mode)(
            old_log_prob=old_log_probs,
            log_prob=log_probs,
            advantages=advantages,
            response_mask=mask,
            loss_agg_mode=config.loss_agg_mode,
            config=config,
        )
        (grad,) = torch.autograd.grad(loss, log_probs)
        results[mode] = {"loss": loss.detach(), "grad": grad, "metrics": dict(metrics)}
    return results


def main(argv=None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 2:
        raise SystemExit(f"usage: {sys.argv[0]} IN.pt OUT.pt")
    if "cfpo" not in POLICY_LOSS_REGISTRY:
        raise SystemExit(
            "`import verl` did not register cfpo: is openrlhf-cfpo installed in this environment (make .venv-verl)?"
        )
    torch.save(verl_cfpo_losses(torch.load(argv[0])), argv[1])


if __name__ == "__main__":
    main()
