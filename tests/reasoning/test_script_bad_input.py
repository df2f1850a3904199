"""Every qwen25_math script refuses bad input in one line, before any data or model loads."""

import json
import os
import stat
import subprocess
import sys

import pytest

SCRIPTS = ["cfpo_qwen25_math_trl.sh", "grpo_qwen25_math_trl.sh", "cfpo_qwen25_math_verl.sh", "grpo_qwen25_math_verl.sh"]
VERL = [s for s in SCRIPTS if "verl" in s]
TRL = [s for s in SCRIPTS if "trl" in s]

BAD_FOR_ALL = [
    (["--model-size", "14B"], "--model-size"),
    (["--model-size", "3b"], "--model-size"),
    (["--iterations", "0"], "--iterations"),
    (["--iterations", "-2"], "--iterations"),
    (["--iterations", "two"], "--iterations"),
    (["--iterations"], "--iterations"),
    (["--max_steps", "5"], "--max_steps"),  # a framework flag before `--`
    (["--dryrun"], "--dryrun"),
]
BAD_FOR_VERL = [
    (["--loss-agg-mode", "mean"], "--loss-agg-mode"),
    (["--", "data.train_batch_size=256"], "data.train_batch_size"),  # the update is 128 problems x 3 rollouts
    (["--", "+actor_rollout_ref.rollout.n=8"], "actor_rollout_ref.rollout.n"),
    (["--", "actor_rollout_ref.actor.ppo_mini_batch_size=32"], "ppo_mini_batch_size"),  # --batch-ratio sets it
    (["--batch-ratio", "3"], "--batch-ratio"),  # 128 problems do not split into 3 mini-batches
    (["--batch-ratio", "256"], "--batch-ratio"),
    (["--batch-ratio", "0"], "--batch-ratio"),
    (["--batch-ratio", "8", "--gpus-per-node", "5"], "--batch-ratio"),  # 48-rollout mini-batches on 5 GPUs
]

BAD_FOR_TRL = [
    (["--loss-type", "sum"], "--loss-type"),
    # flags after -- that change the update (128 problems x 3 completions in one optimizer step)
    (["--", "--per_device_train_batch_size", "2"], "--per_device_train_batch_size"),
    (["--", "--gradient_accumulation_steps=6"], "--gradient_accumulation_steps"),
    (["--", "--num_generations", "8"], "--num_generations"),
    (["--", "--steps_per_generation", "24"], "--steps_per_generation"),
    (["--", "--per_device_train_batch_size", "zero"], "--per_device_train_batch_size"),
    (["--gpus-per-node", "5"], "--gpus-per-node"),  # 5 GPUs x 4 do not divide the 384 completions of an update
    (["--micro-batch-size", "0"], "--micro-batch-size"),
]


@pytest.fixture
def run_script(tmp_path):
    """Run a script for real (no --dry-run) with PYTHON set to a stand-in that records each call.

    The scripts' command line (``-m openrlhf_cfpo.recipes``) goes to the real Python: it checks the flags and starts
    the rest; every other call (the preflight, data preparation, training) is only recorded.
    """
    calls = tmp_path / "python_calls"
    fake_python = tmp_path / "python"
    fake_python.write_text(
        f'#!/bin/sh\n[ "$2" = openrlhf_cfpo.recipes ] && exec {sys.executable} "$@"\necho "$@" >> {calls}\n'
    )
    fake_python.chmod(fake_python.stat().st_mode | stat.S_IEXEC)

    def run(script, *args):
        root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        env = {k: v for k, v in os.environ.items() if k not in ("NUM_NODES", "GPUS_PER_NODE", "WANDB_API_KEY")}
        env.update(PYTHON=str(fake_python), OUTPUT_DIR=str(tmp_path / "runs"))
        proc = subprocess.run(
            ["bash", os.path.join(root, "train_scripts", script), *args],
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
        )
        return proc, calls.read_text().splitlines() if calls.exists() else []

    return run


CASES = (
    [(s, a, f) for s in SCRIPTS for a, f in BAD_FOR_ALL]
    + [(s, a, f) for s in VERL for a, f in BAD_FOR_VERL]
    + [(s, a, f) for s in TRL for a, f in BAD_FOR_TRL]
)


@pytest.mark.parametrize("script,args,flag", CASES)
def test_bad_input_is_one_line_on_stderr_and_nothing_starts(script, args, flag, run_script):
    proc, calls = run_script(script, *args)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.count("\n") == 1 and flag in proc.stderr, proc.stderr
    assert calls == []  # nothing started: no data, no model


@pytest.mark.parametrize("script", SCRIPTS)
def test_good_input_starts_the_printed_commands(script, run_script, tmp_path):
    proc, calls = run_script(script, "--iterations", "2")
    assert proc.returncode == 0, proc.stderr
    printed = proc.stdout.strip().split("\n")
    expected = 2 if script in VERL else 1  # verl: data preparation, then main_ppo
    doctor, *started = calls  # the preflight first
    assert "openrlhf_cfpo.doctor" in doctor
    assert len(printed) == expected and len(started) == expected
    assert "trl_grpo" in started[-1] or "verl.trainer.main_ppo" in started[-1]
    # the run folder records what it was started with, the settings Table 3 leaves open among them
    (record,) = (tmp_path / "runs").glob("*/recipe.json")
    settings = json.loads(record.read_text())["settings"]
    assert settings["epochs"] == 1 and settings["iterations"] == 2
    assert settings["loss_type" if script in TRL else "loss_agg_mode"] == ("bnpo" if script in TRL else "token-mean")


@pytest.mark.parametrize(
    "script,after,key,value",
    [
        ("cfpo_qwen25_math_trl.sh", ["--loss_type", "grpo", "--num_train_epochs", "2"], "loss_type", "grpo"),
        (
            "cfpo_qwen25_math_verl.sh",
            ["actor_rollout_ref.actor.loss_agg_mode=seq-mean-token-mean"],
            "loss_agg_mode",
            "seq-mean-token-mean",
        ),
    ],
)
def test_the_run_record_shows_overrides_after_double_dash(script, after, key, value, run_script, tmp_path):
    proc, _ = run_script(script, "--", *after)
    assert proc.returncode == 0, proc.stderr
    (record,) = (tmp_path / "runs").glob("*/recipe.json")
    recorded = json.loads(record.read_text())
    assert recorded["settings"][key] == value and recorded["passthrough"] == after
