"""CFPO inside OpenRLHF 0.11.2: the entry point's flags and checks, and the loss in a Ray worker."""

import os

import pytest
import torch

pytest.importorskip("openrlhf.trainer.ray", reason="needs the openrlhf extra")
import ray  # noqa: E402

from openrlhf_cfpo.openrlhf import (
    PolicyLoss,  # noqa: E402
    train_ppo_ray,  # noqa: E402
)
from openrlhf_cfpo.openrlhf.train_ppo_ray import (  # noqa: E402
    RAY_HOOK_ENV,
    RAY_JOB_CONFIG_ENV,
    SETUP_HOOK,
    USER_HOOK_ENV,
    runtime_env_for_driver,
    with_cfpo_workers,
)

BASE_ARGS = [
    "--actor.model_name_or_path",
    "/nonexistent/policy",
    "--reward.model_name_or_path",
    "/nonexistent/rm",
    "--algo.advantage.estimator",
    "rloo",
    "--rollout.n_samples_per_prompt",
    "2",
    "--rollout.batch_size",
    "8",
    "--train.batch_size",
    "4",
]


class RayInitReached(Exception):
    pass


@pytest.fixture
def fake_ray_init(monkeypatch):
    """Stands in for ray.init: records what OpenRLHF's train() passes, then stops the run there."""
    calls = []

    def fake_init(*args, **kwargs):
        calls.append(kwargs)
        raise RayInitReached

    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.setattr(ray, "init", fake_init)
    return calls


def test_entry_point_accepts_cfpo_and_gives_ray_the_worker_hook(fake_ray_init, monkeypatch):
    checked = []
    check_args = train_ppo_ray.check_args
    monkeypatch.setattr(train_ppo_ray, "check_args", lambda args: checked.append(args) or check_args(args))
    with pytest.raises(RayInitReached):
        train_ppo_ray.main(BASE_ARGS + ["--actor.policy_loss_type", "cfpo", "--algo.kl.init_coef", "0"])
    (kwargs,) = fake_ray_init
    assert kwargs["runtime_env"]["env_vars"][RAY_HOOK_ENV] == SETUP_HOOK
    # OpenRLHF's own env_vars for the workers survive
    assert {"TOKENIZERS_PARALLELISM", "NCCL_DEBUG"} <= set(kwargs["runtime_env"]["env_vars"])
    (args,) = checked
    assert getattr(args, "actor.policy_loss_type") == "cfpo"


def test_entry_point_still_accepts_openrlhfs_own_loss_types(fake_ray_init):
    for loss in ("ppo", "gspo"):
        with pytest.raises(RayInitReached):
            train_ppo_ray.main(BASE_ARGS + ["--actor.policy_loss_type", loss])
    assert len(fake_ray_init) == 2


@pytest.mark.parametrize(
    "extra,message",
    [
        (["--actor.policy_loss_type", "cfpo", "--actor.dual_clip", "3.0"], "dual_clip"),
        (["--actor.policy_loss_type", "cfpo", "--actor.eps_clip", "0"], "eps"),
        (["--actor.policy_loss_type", "cfpo", "--actor.eps_clip_low_high", "0.2", "-0.1"], "eps"),
        (["--actor.policy_loss_type", "cfpo", "--rollout.n_samples_per_prompt", "1"], "n_samples_per_prompt"),
        (["--actor.policy_loss_type", "spo"], "invalid choice"),
    ],
)
def test_entry_point_rejects_bad_combinations_before_ray_starts(fake_ray_init, capsys, extra, message):
    with pytest.raises(SystemExit) as exit_info:
        train_ppo_ray.main(BASE_ARGS + extra)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err
    assert fake_ray_init == []


def test_a_users_own_setup_hook_is_chained_after_ours_not_replaced():
    env = with_cfpo_workers({"worker_process_setup_hook": "mypkg.setup", "env_vars": {"A": "1"}})
    assert env["env_vars"] == {"A": "1", RAY_HOOK_ENV: SETUP_HOOK, USER_HOOK_ENV: "mypkg.setup"}
    assert "worker_process_setup_hook" not in env


def test_a_callable_setup_hook_is_refused_with_what_to_give_instead():
    with pytest.raises(ValueError, match="'module.function' string"):
        with_cfpo_workers({"worker_process_setup_hook": lambda: None})


def job_config(hook):
    import json

    return json.dumps({"runtime_env": {"worker_process_setup_hook": hook}})


def test_a_submitted_job_with_its_own_setup_hook_fails_in_the_driver_with_the_line_that_chains_both(
    fake_ray_init, monkeypatch, capsys
):
    monkeypatch.setenv(RAY_JOB_CONFIG_ENV, job_config("mypkg.setup"))
    with pytest.raises(SystemExit) as exit_info:
        train_ppo_ray.main(BASE_ARGS + ["--actor.policy_loss_type", "cfpo"])
    assert exit_info.value.code == 2 and fake_ray_init == []
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert "worker_process_setup_hook='mypkg.setup'" in err
    assert f'"worker_process_setup_hook": "{SETUP_HOOK}"' in err and f'"{USER_HOOK_ENV}": "mypkg.setup"' in err


def test_a_submitted_job_that_carries_our_hook_is_not_given_it_twice(fake_ray_init, monkeypatch):
    monkeypatch.setenv(RAY_JOB_CONFIG_ENV, job_config(SETUP_HOOK))
    assert runtime_env_for_driver({"env_vars": {"A": "1"}}) == {"env_vars": {"A": "1"}}
    with pytest.raises(RayInitReached):
        train_ppo_ray.main(BASE_ARGS + ["--actor.policy_loss_type", "cfpo"])
    # Ray refuses to merge a job's and a driver's setup hooks: the driver adds none of its own
    assert RAY_HOOK_ENV not in fake_ray_init[0]["runtime_env"]["env_vars"]


@ray.remote(num_cpus=1)
class ActorLikeOpenRLHFs:
    """Imports ppo_actor as the policy worker does and builds its loss as ActorPPOTrainer does."""

    def cfpo_loss(self, log_probs, old_log_probs, advantages, action_mask):
        from types import SimpleNamespace

        from openrlhf.trainer.ray import ppo_actor

        args = SimpleNamespace(
            actor=SimpleNamespace(
                eps_clip_low_high=(0.2, 0.2), dual_clip=None, loss_agg_mode="token-mean", policy_loss_type="cfpo"
            ),
            algo=SimpleNamespace(
                advantage=SimpleNamespace(
                    is_correction_level="off",
                    is_correction_mode="mask",
                    is_correction_gating="ratio",
                    is_correction_threshold=[0.5, 5.0],
                )
            ),
        )
        loss_fn = ppo_actor.PolicyLoss(
            clip_eps_low=args.actor.eps_clip_low_high[0],
            clip_eps_high=args.actor.eps_clip_low_high[1],
            dual_clip=args.actor.dual_clip,
            token_level_loss=args.actor.loss_agg_mode == "token-mean",
            policy_loss_type=args.actor.policy_loss_type,
            is_correction_level=args.algo.advantage.is_correction_level,
            is_correction_mode=args.algo.advantage.is_correction_mode,
            is_correction_gating=args.algo.advantage.is_correction_gating,
            is_correction_threshold=args.algo.advantage.is_correction_threshold,
        )
        out = loss_fn.compute(log_probs, old_log_probs, advantages, action_mask=action_mask)
        return {
            "loss": out.loss.item(),
            "clip_ratio": out.clip_ratio.item(),
            "loss_class": f"{type(loss_fn).__module__}.{type(loss_fn).__qualname__}",
            "trainer_logs_extra_metrics": ppo_actor.ActorPPOTrainer.__module__ != "openrlhf.trainer.ray.ppo_actor",
            "metrics": sorted(out.metrics),
            "user_hook": os.environ.get("USER_HOOK_SAW_OURS"),
        }


USER_HOOK = """
import os, sys
def setup():
    from openrlhf_cfpo.openrlhf.train_ppo_ray import PatchAfterImport
    os.environ["USER_HOOK_SAW_OURS"] = str(any(isinstance(f, PatchAfterImport) for f in sys.meta_path))
"""


def test_a_ray_worker_started_like_our_entry_point_computes_the_cfpo_loss_and_runs_a_chained_user_hook(tmp_path):
    g = torch.Generator().manual_seed(0)
    old = -torch.rand(3, 5, generator=g)
    logp = old + 0.5 * torch.randn(3, 5, generator=g)
    adv = torch.randn(3, 1, generator=g).expand(3, 5).contiguous()
    mask = torch.ones(3, 5, dtype=torch.bool)
    expected = PolicyLoss(policy_loss_type="cfpo")(logp, old, adv, action_mask=mask)

    (tmp_path / "user_hook_module.py").write_text(USER_HOOK)
    pythonpath = os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")])
    runtime_env = {
        "env_vars": {"TOKENIZERS_PARALLELISM": "false", "PYTHONPATH": pythonpath},
        "worker_process_setup_hook": "user_hook_module.setup",
    }
    ray.init(num_cpus=1, include_dashboard=False, log_to_driver=False, runtime_env=with_cfpo_workers(runtime_env))
    try:
        worker = ActorLikeOpenRLHFs.remote()
        got = ray.get(worker.cfpo_loss.remote(logp, old, adv, mask), timeout=240)
    finally:
        ray.shutdown()
    assert got["loss_class"] == "openrlhf_cfpo.openrlhf.policy_loss.PolicyLoss"
    assert got["loss"] == pytest.approx(expected[0].item(), rel=1e-6)
    assert got["clip_ratio"] == pytest.approx(expected[1].item(), rel=1e-6)
    assert got["trainer_logs_extra_metrics"]
    assert "cfpo_penalty" in got["metrics"]
    assert got["user_hook"] == "True"  # theirs ran, after ours


def test_worker_loss_builder_announces_cfpo_once_and_leaves_gspo_to_openrlhf(capsys):
    from openrlhf.models.loss import PolicyLoss as OpenRLHFPolicyLoss

    from openrlhf_cfpo.openrlhf.train_ppo_ray import build_policy_loss

    ours = build_policy_loss(clip_eps_low=0.2, clip_eps_high=0.28, policy_loss_type="cfpo")
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("[openrlhf-cfpo]")]
    assert isinstance(ours, PolicyLoss) and ours.clip_eps_high == 0.28
    assert len(lines) == 1 and "CFPO policy loss active" in lines[0]
    assert type(build_policy_loss(policy_loss_type="gspo")) is OpenRLHFPolicyLoss


def test_worker_hook_patches_ppo_actor_only_when_it_is_imported():
    """OpenRLHF keeps DeepSpeed out of its vLLM engine processes; the hook must not pull it in."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from openrlhf_cfpo.openrlhf.train_ppo_ray import install, build_policy_loss\n"
        "install(); install()\n"
        "assert 'openrlhf.trainer.ray.ppo_actor' not in sys.modules and 'deepspeed' not in sys.modules\n"
        "from openrlhf.trainer.ray import ppo_actor\n"
        "assert ppo_actor.PolicyLoss is build_policy_loss, ppo_actor.PolicyLoss\n"
        "assert ppo_actor.ActorPPOTrainer.__module__ == 'openrlhf_cfpo.openrlhf.train_ppo_ray'\n"
        "print('patched')\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip().endswith("patched")
