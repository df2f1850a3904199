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

import importlib
import json
import os

from openrlhf_cfpo.import_hooks import patch_on_import
from openrlhf_cfpo.losses import POLICY_LOSSES
from openrlhf_cfpo.openrlhf.policy_loss import PolicyLoss

SETUP_HOOK = f"{__name__}.install"
PPO_ACTOR = "openrlhf.trainer.ray.ppo_actor"
# A user's own setup hook ("module.function"), run by ours right after it.
USER_HOOK_ENV = "OPENRLHF_CFPO_USER_SETUP_HOOK"
# What a Ray 2.55 worker reads to find its setup hook (ray_constants.WORKER_PROCESS_SETUP_HOOK_ENV_VAR).
# A driver connected directly turns the runtime_env field ``worker_process_setup_hook`` into this
# variable; a Ray Client driver (ray://) never does, so its workers would start without our hook and
# a CFPO run would fail at its first training step. Setting the variable ourselves, instead of the
# field, reaches the workers on both paths (the field and the variable together make Ray Client's
# server fail to start).
RAY_HOOK_ENV = "__RAY_WORKER_PROCESS_SETUP_HOOK_ENV_VAR"
# The runtime_env of a job started by `ray job submit`, which Ray merges into the driver's ray.init.
RAY_JOB_CONFIG_ENV = "RAY_JOB_CONFIG_JSON_ENV_VAR"


def with_cfpo_workers(runtime_env: dict | None) -> dict:
    """``runtime_env`` with :func:`install` as every worker's setup hook (:data:`RAY_HOOK_ENV`); its
    env_vars are kept. A hook the caller already set ("module.function") is chained: ours runs first,
    then theirs.
    """
    runtime_env = dict(runtime_env or {})
    env_vars = dict(runtime_env.get("env_vars") or {})
    theirs = runtime_env.pop("worker_process_setup_hook", None) or env_vars.get(RAY_HOOK_ENV)
    if theirs not in (None, SETUP_HOOK):
        if not isinstance(theirs, str):
            raise ValueError(
                f"worker_process_setup_hook is a callable ({getattr(theirs, '__name__', theirs)!r}); openrlhf-cfpo "
                f"chains a user hook after its own only by name: give it as a 'module.function' string"
            )
        env_vars[USER_HOOK_ENV] = theirs
    env_vars[RAY_HOOK_ENV] = SETUP_HOOK
    runtime_env["env_vars"] = env_vars
    return runtime_env


def job_setup_hook() -> str | None:
    """The setup hook of the `ray job submit` job this driver runs in, if any (from Ray's job config)."""
    config = os.environ.get(RAY_JOB_CONFIG_ENV)
    if not config:
        return None
    runtime_env = (json.loads(config).get("runtime_env") or {})
    return runtime_env.get("worker_process_setup_hook") or (runtime_env.get("env_vars") or {}).get(RAY_HOOK_ENV)


def check_job_setup_hook() -> None:
    """Under `ray job submit`, the job's own setup hook must be ours: Ray refuses to merge two hooks
    (and RAY_OVERRIDE_JOB_RUNTIME_ENV=1 would silently drop one)."""
    hook = job_setup_hook()
    if hook not in (None, SETUP_HOOK):
        raise ValueError(
            f"this job's runtime_env sets worker_process_setup_hook={hook!r}, and CFPO needs its own hook in every "
            f"worker: submit with --runtime-env-json '{{\"worker_process_setup_hook\": \"{SETUP_HOOK}\", "
            f"\"env_vars\": {{\"{USER_HOOK_ENV}\": \"{hook}\"}}}}' (ours runs first, then yours)"
        )


def runtime_env_for_driver(runtime_env: dict | None) -> dict | None:
    """What OpenRLHF's ``ray.init`` gets: our hook added, unless the submitted job already carries it."""
    if job_setup_hook() == SETUP_HOOK:
        return runtime_env  # Ray merges the job's runtime_env (with our hook) into this one
    return with_cfpo_workers(runtime_env)


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
    """Worker setup hook: route OpenRLHF's PolicyLoss and ActorPPOTrainer through ours, then run the
    user's own hook if one was chained (:data:`USER_HOOK_ENV`). Idempotent."""
    patch_on_import(PPO_ACTOR, _patch)
    theirs = os.environ.get(USER_HOOK_ENV)
    if theirs and theirs != SETUP_HOOK:
        module_name, _, func = theirs.rpartition(".")
        print(f"[openrlhf-cfpo] worker setup hook {SETUP_HOOK} done in pid {os.getpid()}; running yours: {theirs}", flush=True)
        getattr(importlib.import_module(module_name), func)()




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
