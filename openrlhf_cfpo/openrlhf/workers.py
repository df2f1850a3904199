"""Make our PolicyLoss the one OpenRLHF 0.11.2 builds, in every Ray worker process.

A patch applied in the driver does not reach OpenRLHF's workers: Ray starts fresh Python
processes that import openrlhf anew. So the driver passes Ray a ``worker_process_setup_hook``
(:func:`with_cfpo_workers`) and every worker runs :func:`install` before it executes anything.
``install`` imports nothing heavy: it patches ``openrlhf.trainer.ray.ppo_actor`` when (and only
when) that module is imported, because importing it pulls in DeepSpeed, which OpenRLHF keeps out
of its vLLM engine processes on purpose. The policy worker's ``ppo_actor`` then gets:

- ``PolicyLoss`` -> :func:`build_policy_loss`: our :class:`~openrlhf_cfpo.openrlhf.PolicyLoss` for
  the losses in our registry (``ppo``, ``cfpo``; our ppo is OpenRLHF's to 1e-6), OpenRLHF's own
  for anything else (``gspo``);
- ``ActorPPOTrainer`` -> a subclass whose ``training_step`` also logs the loss's extra
  diagnostics (those the registry declares for the surrogate, e.g. ``ratio_dev_mean`` and, for
  CFPO only, ``cfpo_penalty``), so a CFPO run is recognisable in its metrics.
"""
from __future__ import annotations

import importlib.abc
import importlib.machinery
import os
import sys

from openrlhf_cfpo.losses import POLICY_LOSSES
from openrlhf_cfpo.openrlhf.policy_loss import PolicyLoss

SETUP_HOOK = f"{__name__}.install"
PPO_ACTOR = "openrlhf.trainer.ray.ppo_actor"


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
    module = sys.modules.get(PPO_ACTOR)
    if module is not None:
        _patch(module)
    elif not any(isinstance(finder, _PatchOnImport) for finder in sys.meta_path):
        sys.meta_path.insert(0, _PatchOnImport())


class _PatchOnImport(importlib.abc.MetaPathFinder):
    """Finds ppo_actor as the normal path finder does, and patches it right after it executes."""

    def find_spec(self, fullname, path, target=None):
        if fullname != PPO_ACTOR:
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path, target)
        if spec is None or spec.loader is None:
            return spec
        exec_module = spec.loader.exec_module

        def exec_and_patch(module):
            exec_module(module)
            _patch(module)

        spec.loader.exec_module = exec_and_patch
        return spec


def _patch(ppo_actor) -> None:
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
