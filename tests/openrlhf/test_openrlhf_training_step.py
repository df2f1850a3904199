"""CFPO through OpenRLHF 0.11.2's own policy update: PolicyModelActor and ActorPPOTrainer on CPU.

The update runs in a process of its own (openrlhf_training_step_job.py: it patches torch.cuda for
good and leaves a process group open), once per loss and regime, on the same tiny Llama and the same
rollout: args parsed and checked by ``python -m openrlhf_cfpo.cli.train_ppo_ray``'s entry point, our
worker hook installed as Ray installs it, DeepSpeed ZeRO 2 in bf16 with gloo, 8 samples in 4
micro-batches of 2 feeding one optimizer step. Here we check what it recorded.
"""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import cfpo_oracle

pytest.importorskip("openrlhf.trainer.ray", reason="needs the openrlhf extra")

from openrlhf_cfpo.openrlhf.train_ppo_ray import SETUP_HOOK  # noqa: E402

JOB = Path(__file__).with_name("openrlhf_training_step_job.py")
LOSSES, REGIMES = ("cfpo", "ppo"), ("on_policy", "off_policy")
EPS = 0.2  # the job's --actor.eps_clip
LR = 1e-3  # the job's --actor.adam.lr
OUR_LOSS = "openrlhf_cfpo.openrlhf.policy_loss.PolicyLoss"
RAY_HOOK_ENV = "__RAY_WORKER_PROCESS_SETUP_HOOK_ENV_VAR"  # ray_constants.WORKER_PROCESS_SETUP_HOOK_ENV_VAR


@pytest.fixture(scope="module")
def job(tmp_path_factory):
    from openrlhf_cfpo.gpu_smoke import save_tiny_llama

    out = tmp_path_factory.mktemp("openrlhf_training_step")
    # 32 wide, two heads of 16 (meets no vLLM): the bf16 round-off the tolerances below allow for is this model's
    policy = save_tiny_llama(out / "policy", seed=0, hidden=32, heads=2, kv_heads=2)
    extensions = out / "torch_extensions"
    env = dict(os.environ, DS_ACCELERATOR="cpu", TORCH_EXTENSIONS_DIR=str(extensions))
    proc = subprocess.run(
        [sys.executable, str(JOB), policy, str(out)], capture_output=True, text=True, timeout=600, env=env
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    # CI starts cold: nothing may be compiled on first use (DeepSpeed's CPU Adam or shared-memory comm op).
    assert not extensions.exists() or not any(extensions.iterdir()), sorted(p.name for p in extensions.iterdir())
    results = torch.load(out / "results.pt", weights_only=False)
    results["stdout"] = proc.stdout
    return results


def hook_ray_gives_workers(runtime_env):
    """The setup hook a Ray worker runs for this runtime_env (the field, or the variable Ray turns it into)."""
    return runtime_env.get("worker_process_setup_hook") or runtime_env.get("env_vars", {}).get(RAY_HOOK_ENV)


def per_token(run):
    """Every action token of the update, as the trainer saw it: log r (from the policy's own forward), A."""
    log_ratio, advantages, rows = [], [], []
    for exp in run["experiences"]:
        mask = exp["action_mask"].bool()
        log_r = exp["policy_log_probs"] - exp["action_log_probs"]
        log_ratio.append(log_r[mask])
        advantages.append(exp["advantages"][mask])
        rows += [log_r[i][mask[i]] for i in range(len(mask))]
    return torch.cat(log_ratio).double(), torch.cat(advantages).double(), rows


def expected_token_means(run):
    """What each logged metric's name promises: a mean over every action token of the step."""
    log_ratio, adv, _ = per_token(run)
    ratio = log_ratio.exp()
    outside = (ratio > 1 + EPS) | (ratio < 1 - EPS)
    expected = {
        "ppo_clip_ratio": (((adv > 0) & (ratio > 1 + EPS)) | ((adv < 0) & (ratio < 1 - EPS))).double().mean(),
        "ppo_kl": (-log_ratio).mean(),
        "ratio_dev_mean": (ratio - 1).abs().mean(),
        "ratio_outside_region": outside.double().mean(),
    }
    if run["loss_type"] == "cfpo":
        expected["cfpo_penalty"] = torch.tensor(
            [cfpo_oracle.cfpo_penalty(r, a) for r, a in zip(ratio.tolist(), adv.tolist())], dtype=torch.float64
        ).mean()
    return {k: v.item() for k, v in expected.items()}


def relative_difference(a, b):
    return ((a - b).norm() / b.norm()).item()


@pytest.mark.parametrize("loss", LOSSES)
def test_openrlhfs_policy_worker_trains_with_our_loss_from_args_our_entry_point_parsed(job, loss):
    for regime in REGIMES:
        run = job[loss, regime]
        assert hook_ray_gives_workers(run["runtime_env"]) == SETUP_HOOK
        assert run["loss_class"] == OUR_LOSS
        assert run["loss_type"] == loss and run["eps"] == (EPS, EPS)
        assert run["trainer_module"] == "openrlhf_cfpo.openrlhf.train_ppo_ray"  # the trainer that logs our metrics
    announced = [
        line
        for line in job["stdout"].splitlines()
        if line.startswith(f"[openrlhf-cfpo] {loss.upper()} policy loss active")
    ]
    assert len(announced) == sum(1 for key in job if isinstance(key, tuple) and key[0] == loss)  # one per update run


@pytest.mark.parametrize("loss", LOSSES)
@pytest.mark.parametrize("regime", REGIMES)
def test_four_micro_batches_feed_one_optimizer_step_that_moves_every_weight_matrix(job, loss, regime):
    run = job[loss, regime]
    assert run["micro_batches"] == 4 and len(run["gradients"]) == 1
    before, after = run["weights_before"], run["weights_after"]
    matrices = [name for name, w in before.items() if w.dim() == 2]
    assert matrices and all(not torch.equal(before[n], after[n]) for n in matrices)
    # one Adam step moves no weight by more than lr (plus bf16 rounding of the stored weight)
    assert max((after[n].float() - before[n].float()).abs().max().item() for n in before) < 2 * LR


def test_cfpo_and_ppo_apply_the_same_gradient_when_the_ratio_is_one(job):
    cfpo, ppo = job["cfpo", "on_policy"], job["ppo", "on_policy"]
    for run in (cfpo, ppo):  # old log-probs from the policy worker's own forward: r = 1 up to bf16 round-off
        assert run["status"]["ratio_dev_mean"] < 1e-3
    (g_cfpo,), (g_ppo,) = cfpo["gradients"], ppo["gradients"]
    assert g_ppo.norm() > 0
    assert relative_difference(g_cfpo, g_ppo) < 1e-2


def test_cfpo_and_ppo_apply_different_gradients_off_policy(job):
    (g_cfpo,), (g_ppo,) = job["cfpo", "off_policy"]["gradients"], job["ppo", "off_policy"]["gradients"]
    assert relative_difference(g_cfpo, g_ppo) > 0.2


@pytest.mark.parametrize("loss", LOSSES)
@pytest.mark.parametrize("regime", REGIMES)
def test_openrlhfs_logged_status_holds_each_metric_as_a_token_mean_over_the_step(job, loss, regime):
    run = job[loss, regime]
    status, expected = run["status"], expected_token_means(run)
    assert ("cfpo_penalty" in status) == (loss == "cfpo")
    for name, value in expected.items():
        if name in ("ppo_clip_ratio", "ratio_outside_region"):
            # fractions of the step's tokens: no token sits within bf16 round-off of a region edge,
            # so only OpenRLHF's float32 merge separates the two
            assert status[name] == pytest.approx(value, abs=1e-6), name
        else:
            # the trainer's own forward pass (other micro-batch shapes) moves log r by bf16 round-off:
            # on policy it logs a mean |r - 1| of about 6e-5 where the expected value is exactly 0
            assert status[name] == pytest.approx(value, rel=1e-3, abs=1e-4), name


def test_the_token_means_checked_differ_from_per_sample_means(job):
    """The check above can tell a token mean from a mean of per-sample means, and sees off-policy tokens."""
    run = job["cfpo", "off_policy"]
    expected = expected_token_means(run)
    *_, rows = per_token(run)
    per_sample_dev = torch.stack([(r.double().exp() - 1).abs().mean() for r in rows]).mean().item()
    per_sample_outside = (
        torch.stack([((r.exp() > 1 + EPS) | (r.exp() < 1 - EPS)).double().mean() for r in rows]).mean().item()
    )
    assert abs(per_sample_dev - expected["ratio_dev_mean"]) > 0.02
    assert abs(per_sample_outside - expected["ratio_outside_region"]) > 0.05
    assert 0 < expected["ppo_clip_ratio"] < expected["ratio_outside_region"] < 1


def test_a_nan_advantage_stops_every_rank_before_backward_with_one_line_and_moves_no_weight(job):
    run = job[("cfpo", "nan_advantage")]
    assert run["error"] is not None, "OpenRLHF trained on a nan advantage"
    kind, message = run["error"]
    assert kind == "NonFiniteTraining" and "\n" not in message
    # OpenRLHF's replay buffer shuffles the four micro-batches: the nan one is at its step of the round
    assert re.match(r"\[openrlhf-cfpo\] micro-batch (\d) of this training round: the advantages ", message), message
    step = int(message.split()[2])
    assert "stopped before backward on every rank" in message
    # the micro-batches before it were computed, and no optimizer step was taken (it comes after the fourth)
    assert run["micro_batches"] == step + 1 and run["optimizer_steps"] == 0 and run["weights_unchanged"]
