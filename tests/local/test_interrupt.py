"""Ctrl-C keeps progress: a run stops at a step boundary, saved, and resumes exactly;
a sweep passes it on to its runs."""

import os
import signal
import subprocess
import sys
import time

import pytest

from openrlhf_cfpo.local.cli import main_local
from openrlhf_cfpo.local.config import parse_args
from openrlhf_cfpo.local.errors import Interrupted
from openrlhf_cfpo.local.logger import read_metrics
from openrlhf_cfpo.local.trainer import LocalTrainer

VOLATILE = ("time", "timing/")
# Far apart: without the save on Ctrl-C, an interrupted run would have no checkpoint to resume from.
FLAGS = ["--train.max_epochs", "2", "--ckpt.save_steps", "100", "--actor.policy_loss_type", "cfpo"]


def _trainer(flags, out, *extra):
    return LocalTrainer(parse_args([*flags, *FLAGS, "--ckpt.output_dir", str(out), *extra]), log=lambda m: None)


def _same_run(a, b):
    a, b = (
        [{k: v for k, v in r.items() if not k.startswith(VOLATILE)} for r in read_metrics(str(d / "metrics.jsonl"))]
        for d in (a, b)
    )
    assert [r.keys() for r in a] == [r.keys() for r in b]
    assert [v for r in a for v in r.values()] == pytest.approx([v for r in b for v in r.values()], rel=1e-5, abs=1e-6)


def _ctrl_c():
    os.kill(os.getpid(), signal.SIGINT)


def test_ctrl_c_stops_a_run_at_the_end_of_its_step_saves_it_and_resume_reproduces_the_uninterrupted_run(
    local_flags, tmp_path
):
    _trainer(local_flags, tmp_path / "full").fit()
    run = _trainer(local_flags, tmp_path / "run")
    run.callbacks.append(
        lambda t, record: _ctrl_c() if record["step"] == 5 else None
    )  # mid-rollout: 4 steps per rollout
    with pytest.raises(Interrupted) as stopped:
        run.fit()
    assert (stopped.value.step, stopped.value.checkpoint.name) == (5, "global_step_5")
    resumed = _trainer(local_flags, tmp_path / "run", "--resume")
    assert resumed.global_step == 5 and resumed.buffer is not None
    resumed.fit()
    _same_run(tmp_path / "full", tmp_path / "run")


def test_ctrl_c_while_a_rollout_is_generated_drops_it_and_resume_redoes_it(local_flags, tmp_path):
    _trainer(local_flags, tmp_path / "full").fit()
    run = _trainer(local_flags, tmp_path / "run")
    make_experience = run.make_experience

    def interrupted_in_the_second_rollout(rollout_idx):
        if rollout_idx == 1:
            _ctrl_c()  # delivered at once: the rollout stops here
        return make_experience(rollout_idx)

    run.make_experience = interrupted_in_the_second_rollout
    with pytest.raises(Interrupted) as stopped:
        run.fit()
    assert (stopped.value.step, stopped.value.checkpoint.name) == (4, "global_step_4")
    resumed = _trainer(local_flags, tmp_path / "run", "--resume")
    assert resumed.global_step == 4 and resumed.buffer is None
    resumed.fit()
    _same_run(tmp_path / "full", tmp_path / "run")


def test_local_says_in_one_line_where_an_interrupted_run_resumes(arithmetic_flags, tmp_path, capsys):
    reward = tmp_path / "reward.py"  # presses Ctrl-C on its 9th call: in rollout 2, after step 2
    reward.write_text(
        "import os, signal, torch\ncalls = 0\ndef reward_func(queries, prompts, labels):\n    global calls\n"
        "    calls += 1\n    if calls == 9:\n        os.kill(os.getpid(), signal.SIGINT)\n"
        "    return {'rewards': torch.tensor([1.0])}\n"
    )
    out = tmp_path / "run"
    assert (
        main_local([*arithmetic_flags, *FLAGS, "--reward.remote_url", str(reward), "--ckpt.output_dir", str(out)])
        == 130
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert (
        err[-1]
        == f"openrlhf-cfpo local: interrupted at step 4/12; saved {out / 'checkpoints' / 'global_step_4'}: `--resume` "
        "continues from it"
    )


def test_ctrl_c_during_start_up_is_one_line(local_flags, tmp_path, capsys, monkeypatch):
    import openrlhf_cfpo.local.preflight as preflight

    def pressed(*args):
        raise KeyboardInterrupt

    monkeypatch.setattr(preflight, "prepare", pressed)
    assert main_local([*local_flags, "--ckpt.output_dir", str(tmp_path / "run")]) == 130
    assert capsys.readouterr().err.strip().splitlines() == [
        "openrlhf-cfpo local: interrupted during start-up, before anything was written"
    ]


def test_ctrl_c_in_a_sweep_saves_every_running_run_and_one_line_says_how_to_resume_them_all(arithmetic_flags, tmp_path):
    flags = [f for f in arithmetic_flags if f not in ("--logger.progress", "none")]
    for name in ("--train.batch_size", "--train.micro_batch_size", "--data.max_samples"):  # the sweep's own choice
        del flags[flags.index(name) : flags.index(name) + 2]
    # The tiny runs train 32 steps in well under a second, faster than the parent can see them start: a reward file
    # that takes 50 ms a sample, and that holds every run from its 49th sample (its 4th rollout) until the test lets
    # go, makes the Ctrl-C land while every started run is still training, however loaded the machine.
    real = flags[flags.index("--reward.remote_url") + 1]
    slow, hold = tmp_path / "slow_reward.py", tmp_path / "hold"
    slow.write_text(
        f"import importlib.util, os, time\nspec = importlib.util.spec_from_file_location('real', {real!r})\n"
        f"real = importlib.util.module_from_spec(spec)\nspec.loader.exec_module(real)\ncalls = [0]\n"
        f"def reward_func(queries, prompts, labels):\n    time.sleep(0.05)\n    calls[0] += 1\n"
        f"    while calls[0] > 48 and os.path.exists({str(hold)!r}):\n        time.sleep(0.05)\n"
        f"    return real.reward_func(queries, prompts, labels)\n"
    )
    hold.touch()
    flags[flags.index("--reward.remote_url") + 1] = str(slow)
    out = tmp_path / "sweep"
    # all 128 prompts of the tiny arithmetic default: 32 rollouts of 4, one step per pass over each
    argv = [
        "sweep",
        "--output",
        str(out),
        "--iterations",
        "1,2",
        "--jobs",
        "2",
        "--window",
        "2",
        *flags,
        "--data.max_samples",
        "128",
        "--ckpt.save_steps",
        "1000",
    ]
    total = {"ppo_it1": 32, "cfpo_it1": 32, "ppo_it2": 64, "cfpo_it2": 64}
    proc = subprocess.Popen([sys.executable, "-m", "openrlhf_cfpo.cli.main", *argv], stderr=subprocess.PIPE, text=True)
    first = out / "ppo_it2" / "metrics.jsonl"  # started first: the longest runs go first
    deadline = time.time() + 120
    while (
        not (first.exists() and len(read_metrics(str(first))) >= 3) and time.time() < deadline and proc.poll() is None
    ):
        time.sleep(0.1)
    proc.send_signal(
        signal.SIGINT
    )  # what the terminal's Ctrl-C sends to the parent (the runs are in their own session)
    time.sleep(1)  # the parent passes it on to each run; then the held reward calls return and each step ends
    hold.unlink()
    err = proc.communicate(timeout=120)[1].strip().splitlines()
    assert proc.returncode == 130, err[-5:]
    assert "Traceback" not in "\n".join(err)
    resume = f"openrlhf-cfpo {' '.join(argv)} --resume"
    assert (
        err[-1]
        == "openrlhf-cfpo sweep: interrupted; every run that started saved its last step (see above); resume them "
        f"all with: {resume}"
    )
    started = [d for d in out.iterdir() if (d / "metrics.jsonl").exists()]
    assert any(len(read_metrics(str(d / "metrics.jsonl"))) < total[d.name] for d in started)  # stopped part-way
    for d in started:  # each saved the step it stopped at; one stopped in its first rollout has no step to save
        rows = read_metrics(str(d / "metrics.jsonl"))
        saved = [f"global_step_{rows[-1]['step']}"] if rows else []
        checkpoints = d / "checkpoints"
        assert (
            sorted(p.name for p in checkpoints.iterdir() if p.name != ".lock") == saved
            if checkpoints.exists()
            else not saved
        )
    from openrlhf_cfpo.local.cli import main_sweep

    assert main_sweep([*argv[1:], "--resume"]) == 0
    for name, steps in total.items():  # every run complete, each step logged once
        assert [r["step"] for r in read_metrics(str(out / name / "metrics.jsonl"))] == list(range(1, steps + 1)), name
