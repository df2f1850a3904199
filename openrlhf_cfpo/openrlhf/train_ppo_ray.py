"""OpenRLHF 0.11.2's ``train_ppo_ray`` with ``--actor.policy_loss_type cfpo``, active in every worker.

    python -m openrlhf_cfpo.cli.train_ppo_ray <any OpenRLHF 0.11.2 flag> --actor.policy_loss_type cfpo

OpenRLHF builds its parser inside ``if __name__ == "__main__"``, so this entry point runs that
very module as ``__main__`` (nothing of it is copied) with three additions, undone afterwards:

1. ``--actor.policy_loss_type`` also accepts the losses of :data:`openrlhf_cfpo.losses.POLICY_LOSSES`;
2. right after parsing, invalid combinations (cfpo with dual_clip, eps <= 0, group-baseline
   estimators with fewer than 2 samples per prompt, bad IS-correction settings) end the run with
   one error line, in the driver, before Ray starts or any GPU is requested;
3. the ``ray.init`` OpenRLHF makes gets our worker setup hook
   (:func:`openrlhf_cfpo.openrlhf.workers.with_cfpo_workers`), its own env_vars untouched, on a direct
   connection and over Ray Client (``ray://``) alike; under ``ray job submit`` a job whose runtime_env
   sets another hook is refused in the driver with the one line that chains both.
"""
from __future__ import annotations

import argparse
import contextlib
import functools
import runpy
import sys
from typing import Iterator, List, Optional

from openrlhf_cfpo.losses import POLICY_LOSSES
from openrlhf_cfpo.openrlhf.policy_loss import PolicyLoss

OPENRLHF_MODULE = "openrlhf.cli.train_ppo_ray"
LOSS_TYPE_FLAG = "--actor.policy_loss_type"
GROUP_BASELINE_ESTIMATORS = ("rloo", "reinforce_baseline", "group_norm", "dr_grpo")


def check_args(args: argparse.Namespace) -> None:
    """Raise ValueError for combinations that would fail (or silently do nothing) on the GPUs."""
    get = functools.partial(getattr, args)
    eps_low, eps_high = get("actor.eps_clip_low_high") or (get("actor.eps_clip"),) * 2
    estimator = get("algo.advantage.estimator")
    if estimator in GROUP_BASELINE_ESTIMATORS and get("rollout.n_samples_per_prompt") < 2:
        raise ValueError(
            f"--algo.advantage.estimator {estimator} needs a baseline from the other samples of the same "
            f"prompt: set --rollout.n_samples_per_prompt to 2 or more (got {get('rollout.n_samples_per_prompt')})"
        )
    if get("actor.policy_loss_type") in POLICY_LOSSES:
        threshold = list(get("algo.advantage.is_correction_threshold"))
        PolicyLoss(  # its constructor holds every check on the loss's own settings
            clip_eps_low=eps_low,
            clip_eps_high=eps_high,
            dual_clip=get("actor.dual_clip"),
            policy_loss_type=get("actor.policy_loss_type"),
            is_correction_level=get("algo.advantage.is_correction_level"),
            is_correction_mode=get("algo.advantage.is_correction_mode"),
            is_correction_gating=get("algo.advantage.is_correction_gating"),
            is_correction_threshold=[0.0] + threshold if len(threshold) == 1 else threshold,
        )


@contextlib.contextmanager
def openrlhf_with_cfpo() -> Iterator[None]:
    """Patch argparse and ray.init for the duration of one OpenRLHF run."""
    import ray

    from openrlhf_cfpo.openrlhf.workers import check_job_setup_hook, runtime_env_for_driver

    add_argument = argparse.ArgumentParser.add_argument
    parse_args = argparse.ArgumentParser.parse_args
    ray_init = ray.init

    def add_argument_with_our_losses(self, *names, **kwargs):
        if LOSS_TYPE_FLAG in names and kwargs.get("choices"):
            kwargs["choices"] = list(dict.fromkeys([*kwargs["choices"], *POLICY_LOSSES]))
            kwargs["help"] = "policy surrogate; cfpo is Clipping-Free Policy Optimization (arXiv 2601.22801)"
        return add_argument(self, *names, **kwargs)

    def parse_and_check(self, args=None, namespace=None):
        parsed = parse_args(self, args, namespace)
        if hasattr(parsed, "actor.policy_loss_type"):
            try:
                check_args(parsed)
                check_job_setup_hook()
            except ValueError as err:
                self.error(str(err))
        return parsed

    @functools.wraps(ray_init)
    def init_with_cfpo_workers(*args, runtime_env=None, **kwargs):
        return ray_init(*args, runtime_env=runtime_env_for_driver(runtime_env), **kwargs)

    argparse.ArgumentParser.add_argument = add_argument_with_our_losses
    argparse.ArgumentParser.parse_args = parse_and_check
    ray.init = init_with_cfpo_workers
    try:
        yield
    finally:
        argparse.ArgumentParser.add_argument = add_argument
        argparse.ArgumentParser.parse_args = parse_args
        ray.init = ray_init


def main(argv: Optional[List[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    saved_argv = sys.argv
    sys.argv = ["python -m openrlhf_cfpo.cli.train_ppo_ray", *argv]
    try:
        with openrlhf_with_cfpo():
            runpy.run_module(OPENRLHF_MODULE, run_name="__main__", alter_sys=False)
    finally:
        sys.argv = saved_argv
    return 0


if __name__ == "__main__":
    sys.exit(main())
