"""The training loop's mechanics: loss equivalence on-policy, exact resume, the files a run leaves."""

import json
import os

import pytest
import torch

from openrlhf_cfpo.local.cli import main_local
from openrlhf_cfpo.local.config import parse_args
from openrlhf_cfpo.local.logger import read_metrics
from openrlhf_cfpo.local.trainer import LocalTrainer

VOLATILE = ("time", "timing/")


def _trainer(flags, out, *extra):
    return LocalTrainer(parse_args([*flags, "--ckpt.output_dir", str(out), *extra]), log=lambda m: None)


def _deterministic(rows):
    return [{k: v for k, v in r.items() if not k.startswith(VOLATILE)} for r in rows]


def test_cfpo_and_ppo_agree_when_every_rollout_gets_one_step(local_flags, tmp_path):
    # 4 prompts x 2 samples = 8 = --train.batch_size: one optimizer step per rollout, ratio == 1.
    params = {}
    for loss in ("ppo", "cfpo"):
        t = _trainer(
            local_flags,
            tmp_path / loss,
            "--actor.policy_loss_type",
            loss,
            "--train.batch_size",
            "8",
            "--train.micro_batch_size",
            "4",
        )
        assert t.sizes.steps_per_rollout == 1
        t.fit()
        params[loss] = torch.cat([p.detach().flatten() for p in t.policy.parameters()])
    assert torch.allclose(params["ppo"], params["cfpo"], atol=1e-6)
    ppo, cfpo = (read_metrics(str(tmp_path / k / "metrics.jsonl")) for k in ("ppo", "cfpo"))
    assert [r["reward"] for r in ppo] == pytest.approx([r["reward"] for r in cfpo], abs=1e-5)


def test_cfpo_and_ppo_updates_differ_once_a_rollout_gets_several_steps(local_flags, tmp_path):
    params = {}
    for loss in ("ppo", "cfpo"):
        t = _trainer(
            local_flags,
            tmp_path / loss,
            "--actor.policy_loss_type",
            loss,
            "--train.max_epochs",
            "3",
            "--actor.adam.lr",
            "1e-2",
        )
        t.fit()
        params[loss] = torch.cat([p.detach().flatten() for p in t.policy.parameters()])
    # Past the first step r != 1 and CFPO's penalty gradient -|A|/eps (r - 1) is not zero.
    assert not torch.allclose(params["ppo"], params["cfpo"], atol=1e-6)


def test_resume_reproduces_the_uninterrupted_run(local_flags, tmp_path):
    flags = [*local_flags, "--train.max_epochs", "2", "--ckpt.save_steps", "3", "--actor.policy_loss_type", "cfpo"]
    full = _trainer(flags, tmp_path / "full")
    full.fit()

    class Killed(Exception):
        pass

    def kill_at_step_5(trainer, record):
        if record["step"] == 5:
            raise Killed

    run = _trainer(flags, tmp_path / "killed")
    run.callbacks.append(kill_at_step_5)
    with pytest.raises(Killed):
        run.fit()
    assert len(read_metrics(str(tmp_path / "killed" / "metrics.jsonl"))) == 5  # steps 4-5 are past the checkpoint
    resumed = _trainer(flags, tmp_path / "killed", "--resume")
    assert resumed.global_step == 3 and resumed.buffer is not None  # mid-rollout: 2 steps per epoch x 2 epochs
    resumed.fit()
    a = _deterministic(read_metrics(str(tmp_path / "full" / "metrics.jsonl")))
    b = _deterministic(read_metrics(str(tmp_path / "killed" / "metrics.jsonl")))
    assert [r["step"] for r in b] == list(range(1, len(a) + 1))
    for ra, rb in zip(a, b):
        assert ra.keys() == rb.keys()
        assert [ra[k] for k in ra] == pytest.approx([rb[k] for k in ra], rel=1e-5, abs=1e-6)
    for p, q in zip(full.policy.parameters(), resumed.policy.parameters()):
        assert torch.allclose(p, q, atol=1e-6)


def test_local_writes_metrics_tensorboard_checkpoints_and_the_model(local_flags, tmp_path, capsys):
    out = tmp_path / "run"
    assert main_local([*local_flags, "--ckpt.output_dir", str(out), "--ckpt.save_steps", "2"]) == 0
    rows = read_metrics(str(out / "metrics.jsonl"))
    assert [r["step"] for r in rows] == list(range(1, len(rows) + 1)) and len(rows) == 6  # 3 rollouts x 2 steps
    required = {
        "step",
        "reward",
        "response_length",
        "ppo_clip_ratio",
        "ppo_kl",
        "kl",
        "policy_loss",
        "entropy",
        "actor_grad_norm",
        "ratio_dev_mean",
        "ratio_outside_region",
    }
    assert all(required <= r.keys() for r in rows)
    assert any(f.startswith("events.out.tfevents") for f in os.listdir(out / "tensorboard"))
    assert sorted(f for f in os.listdir(out / "checkpoints") if f != ".lock") == [
        "global_step_4",
        "global_step_6",
    ]  # max_num 2
    assert (out / "model" / "config.json").exists()
    assert json.loads((out / "run_summary.json").read_text())["steps"] == 6


def test_python_dash_m_runs_the_local_engine_without_start_up_warnings(local_flags, tmp_path):
    import subprocess
    import sys

    out = tmp_path / "run"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "openrlhf_cfpo.local",
            *local_flags,
            "--data.max_samples",
            "4",
            "--ckpt.output_dir",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert len(read_metrics(str(out / "metrics.jsonl"))) == 2 and (out / "model" / "config.json").exists()
    # neither pynvml's deprecation nor DeepSpeed's accelerator warning (on stdout: saving the model imported DeepSpeed)
    assert proc.stderr.splitlines()[-1].startswith("trained 2 steps in ")
    output = (proc.stdout + proc.stderr).lower().splitlines()
    assert not [line for line in output if "warn" in line or "deepspeed" in line or "accelerator" in line]


def test_building_an_embedded_default_imports_no_deepspeed(tmp_path):
    import subprocess
    import sys

    code = (
        "import sys; from openrlhf_cfpo.local.embedded import chat; "
        f"chat.DEFAULT.build({str(tmp_path / 'chat')!r}, chat.ChatSettings(hidden=8, layers=1, heads=2, sft_steps=1, "
        "rm_steps=1, batch_size=2, n_prompts=2)); print(sys.modules.get('deepspeed') is not None)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and proc.stdout.strip() == "False", proc.stderr[-2000:]


def test_metrics_records_cut_by_a_kill_inside_a_write_are_dropped_on_read_and_on_resume(tmp_path):
    from openrlhf_cfpo.local.logger import truncate_metrics

    path = tmp_path / "metrics.jsonl"
    path.write_text('{"step": 1, "reward": 0.5}\n{"step": 2, "reward": 0.6}\n{"step": 3, "rew')
    assert [r["step"] for r in read_metrics(str(path))] == [1, 2]
    truncate_metrics(str(path), last_step=2)
    assert path.read_text() == '{"step": 1, "reward": 0.5}\n{"step": 2, "reward": 0.6}\n'


def test_tensorboard_holds_every_logged_metric_of_every_step(local_flags, tmp_path):
    from openrlhf_cfpo.local.plot import read_tensorboard_run

    out = tmp_path / "run"
    assert main_local([*local_flags, "--ckpt.output_dir", str(out)]) == 0
    rows = read_metrics(str(out / "metrics.jsonl"))
    tb = read_tensorboard_run(out / "tensorboard", "run")
    for metric in ("reward", "response_length", "ppo_clip_ratio", "kl", "ppo_kl", "ratio_dev_mean"):
        steps, values = tb.series[metric]
        assert steps == [r["step"] for r in rows] and values == pytest.approx([r[metric] for r in rows], rel=1e-6)


def test_resume_falls_back_to_the_previous_checkpoint_when_the_newest_cannot_be_read(local_flags, tmp_path, capsys):
    flags = [*local_flags, "--ckpt.save_steps", "2", "--ckpt.max_num", "3", "--ckpt.output_dir", str(tmp_path / "run")]
    full = _trainer(local_flags, tmp_path / "full", "--ckpt.save_steps", "2")
    full.fit()
    assert main_local(flags) == 0
    ckpts = tmp_path / "run" / "checkpoints"
    (ckpts / "global_step_6" / "state.pt").write_bytes(b"not a checkpoint")  # a disk fault, a hand edit
    (ckpts / "global_step_4" / "state.pt").write_bytes(
        (ckpts / "global_step_4" / "state.pt").read_bytes()[:1000]
    )  # truncated
    capsys.readouterr()
    logs = []
    resumed = LocalTrainer(parse_args([*flags, "--resume"]), log=logs.append)
    assert resumed.global_step == 2
    assert (
        logs[0].startswith(f"warning: checkpoint {ckpts / 'global_step_6'} cannot be read (")
        and "falling back" in logs[0]
    )
    assert logs[1].startswith(f"warning: checkpoint {ckpts / 'global_step_4'} cannot be read (")
    assert logs[2] == f"resumed from {ckpts / 'global_step_2'} (step 2/6)"
    resumed.fit()  # and continues exactly as the uninterrupted run
    a, b = (_deterministic(read_metrics(str(tmp_path / r / "metrics.jsonl"))) for r in ("full", "run"))
    assert [r.keys() for r in a] == [r.keys() for r in b]
    assert [v for r in a for v in r.values()] == pytest.approx([v for r in b for v in r.values()], rel=1e-5, abs=1e-6)


def test_resume_stops_in_one_line_when_no_checkpoint_can_be_read(local_flags, tmp_path, capsys):
    flags = [*local_flags, "--ckpt.save_steps", "3", "--ckpt.output_dir", str(tmp_path / "run")]
    assert main_local(flags) == 0
    for state in (tmp_path / "run" / "checkpoints").glob("*/state.pt"):
        state.write_bytes(b"")
    capsys.readouterr()
    assert main_local([*flags, "--resume"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert [line.split(" cannot be read")[0] for line in err[:-1]] == [
        f"warning: checkpoint {tmp_path / 'run' / 'checkpoints' / f'global_step_{k}'}" for k in (6, 3)
    ]
    assert err[-1].startswith("openrlhf-cfpo local: error: --resume: no checkpoint in ") and "can be read" in err[-1]


def test_the_last_line_says_what_this_session_trained(local_flags, tmp_path, capsys):
    def stop_after_step_4(trainer, record):
        if record["step"] == 4:
            raise KeyboardInterrupt

    run = _trainer(local_flags, tmp_path / "run", "--ckpt.save_steps", "4")
    run.callbacks.append(stop_after_step_4)
    with pytest.raises(KeyboardInterrupt):
        run.fit()

    def last_line(argv):
        assert main_local([*local_flags, "--ckpt.save_steps", "4", *argv]) == 0
        return capsys.readouterr().err.strip().splitlines()[-1]

    resume = ["--ckpt.output_dir", str(tmp_path / "run"), "--resume"]
    assert last_line(resume).startswith("trained steps 5-6 of 6 in ")
    assert last_line(resume).startswith(
        "nothing left to train: the run had finished all 6 steps; metrics in "
    )  # not "trained 6"
    assert last_line(["--ckpt.output_dir", str(tmp_path / "fresh")]).startswith("trained 6 steps in ")
