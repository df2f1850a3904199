"""Make our PolicyLoss the one OpenRLHF 0.11.2 builds, in every Ray worker process.

A patch applied in the driver does not reach OpenRLHF's workers: Ray starts fresh Python
processes that import openrlhf anew. So the driver passes Ray a ``worker_process_setup_hook``
(:func:`with_cfpo_workers`) and every worker runs :func:`install` before it executes anything.
There, ``openrlhf.trainer.ray.ppo_actor`` gets:

- ``PolicyLoss`` -> :func:`build_policy_loss`: our :class:`~openrlhf_cfpo.losses.PolicyLoss` for
  the losses in our registry (``ppo``, ``cfpo``; our ppo is OpenRLHF's to 1e-6), OpenRLHF's own
  for anything else (``gspo``);
- ``ActorPPOTrainer`` -> a subclass whose ``training_step`` also logs the loss's extra
  diagnostics (``ratio_dev_mean``, ``ratio_dev_max``, and ``cfpo_penalty``, which only a CFPO run
  has), so a CFPO run is recognisable in its metrics.
"""
from __future__ import annotations

import logging
import os

from openrlhf_cfpo.losses import POLICY_LOSSES, PolicyLoss

SETUP_HOOK = f"{__name__}.install"
logger = logging.getLogger("openrlhf_cfpo")


def with_cfpo_workers(runtime_env: dict | None) -> dict:
    """``runtime_env`` with :func:`install` as every worker's setup hook; its env_vars are kept."""
    runtime_env = dict(runtime_env or {})
    existing = runtime_env.get("worker_process_setup_hook")
    if existing not in (None, SETUP_HOOK):
        raise ValueError(
            f"runtime_env already has worker_process_setup_hook={existing!r}; openrlhf-cfpo needs its own "
            f"({SETUP_HOOK}) to activate CFPO in the workers: call {SETUP_HOOK} from yours instead"
        )
    runtime_env["worker_process_setup_hook"] = SETUP_HOOK
    return runtime_env


def build_policy_loss(*, policy_loss_type: str = "ppo", **kwargs):
    """What ActorPPOTrainer calls as ``PolicyLoss(...)``: ours for our registry's losses."""
    if policy_loss_type not in POLICY_LOSSES:
        from openrlhf.models.loss import PolicyLoss as OpenRLHFPolicyLoss

        return OpenRLHFPolicyLoss(policy_loss_type=policy_loss_type, **kwargs)
    loss_fn = PolicyLoss(policy_loss_type=policy_loss_type, **kwargs)
    eps = (loss_fn.clip_eps_low, loss_fn.clip_eps_high)
    message = (
        f"[openrlhf-cfpo] {policy_loss_type.upper()} policy loss active in pid {os.getpid()} "
        f"(eps_low={eps[0]}, eps_high={eps[1]}, token_level_loss={loss_fn.token_level_loss}, "
        f"is_correction_level={loss_fn.is_correction_level})"
    )
    print(message, flush=True)  # Ray forwards worker stdout to the driver's console
    return loss_fn


def install() -> None:
    """Worker setup hook: route OpenRLHF's PolicyLoss and ActorPPOTrainer through ours. Idempotent."""
    from openrlhf.trainer.ray import ppo_actor

    if getattr(ppo_actor, "_openrlhf_cfpo_installed", False):
        return

    class ActorPPOTrainer(ppo_actor.ActorPPOTrainer):
        def training_step(self, experience, kl_ctl, step, loss_batch_info=None):
            status = super().training_step(experience, kl_ctl, step, loss_batch_info)
            for name, value in getattr(self.actor_loss_fn, "last_metrics", {}).items():
                status["metrics"][name] = value
                status["weights"][name] = "token"
            return status

    ppo_actor.PolicyLoss = build_policy_loss
    ppo_actor.ActorPPOTrainer = ActorPPOTrainer
    ppo_actor._openrlhf_cfpo_installed = True
