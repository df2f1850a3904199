"""A non-finite reward, advantage, loss or gradient never reaches the weights or a checkpoint:
the run stops in one line."""

import math

import pytest
import torch

from openrlhf_cfpo.local import checkpoint
from openrlhf_cfpo.local.cli import main_local
from openrlhf_cfpo.local.config import parse_args
from openrlhf_cfpo.local.errors import NonFiniteError
from openrlhf_cfpo.local.logger import read_metrics
from openrlhf_cfpo.local.trainer import LocalTrainer

# Counts its calls in this process; from call FROM on it returns VALUE, alternating with 0 when ALTERNATE.
REWARD = """
import torch
calls = 0

def reward_func(queries, prompts, labels):
    global calls
    calls += 1
    bad = calls >= {start} and (not {alternate} or calls % 2)
    return {{"rewards": torch.tensor([{value} if bad else float(len(queries[0]) % 3)])}}
"""


# A reward clip range as wide as float32 allows (without an exponent: argparse takes "-3e38" for a flag).
WIDE = ["-3" + "0" * 38 + ".0", "3" + "0" * 38]


def _reward_file(tmp_path, value, start=1, alternate=False):
    path = tmp_path / "reward.py"
    path.write_text(REWARD.format(value=value, start=start, alternate=alternate))
    return str(path)


def _finite(state):
    return all(torch.isfinite(t).all() for t in state["model"].values())


def test_a_nan_reward_stops_the_run_before_any_step_uses_it_and_keeps_the_last_good_checkpoint(
    arithmetic_flags, tmp_path, capsys
):
    # 4 prompts x 2 samples per rollout, 2 optimizer steps each: the 9th call is the first of rollout 2, before step 3
    out = tmp_path / "run"
    flags = [
        *arithmetic_flags,
        "--reward.remote_url",
        _reward_file(tmp_path, 'float("nan")', start=9),
        "--ckpt.save_steps",
        "1",
        "--ckpt.max_num",
        "1",
        "--ckpt.output_dir",
        str(out),
    ]
    assert main_local(flags) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("openrlhf-cfpo local: error: step 3: the reward is not finite (reward_func of ")
    assert "returned nan for the query" in err[-1] and "global_step_2" in err[-1] and "--resume" in err[-1]
    assert [r["step"] for r in read_metrics(str(out / "metrics.jsonl"))] == [1, 2]  # nothing of step 3 is logged
    # --ckpt.max_num 1 kept the last good checkpoint: no bad one was saved to rotate it out
    assert sorted(p.name for p in (out / "checkpoints").iterdir() if p.name != ".lock") == ["global_step_2"]
    assert _finite(checkpoint.load(out / "checkpoints" / "global_step_2")) and not (out / "model").exists()
    # it resumes (the reward file counts from 1 again in a new process: its rewards are finite up to call 9)
    assert main_local([*flags, "--resume"]) == 1
    assert "step 5: the reward is not finite" in capsys.readouterr().err


def test_a_nan_advantage_from_a_broken_reference_model_stops_the_run_before_the_step(arithmetic_flags, tmp_path):
    trainer = LocalTrainer(
        parse_args([*arithmetic_flags, "--ckpt.output_dir", str(tmp_path / "run")]), log=lambda m: None
    )
    with torch.no_grad():
        trainer.ref.get_input_embeddings().weight.fill_(math.nan)  # its log-probs, and so the KL in the reward, are nan
    before = [p.detach().clone() for p in trainer.policy.parameters()]
    with pytest.raises(
        NonFiniteError,
        match=r"step 1: the advantage is not finite \(group_norm advantages of rollout 0 from the "
        r"finite rewards \[.*\] and a KL to the reference of nan per token",
    ):
        trainer.fit()
    assert all(torch.equal(p, q) for p, q in zip(before, trainer.policy.parameters()))


def test_a_loss_that_overflows_stops_the_run_before_the_backward_pass(arithmetic_flags, tmp_path):
    # finite advantages of +-3e38 (3e38 against 0 within each pair) overflow the token sum of the loss
    flags = [
        *arithmetic_flags,
        "--reward.remote_url",
        _reward_file(tmp_path, "3e38", alternate=True),
        "--algo.advantage.estimator",
        "rloo",
        "--reward.clip_range",
        *WIDE,
        "--ckpt.output_dir",
        str(tmp_path / "run"),
    ]
    trainer = LocalTrainer(parse_args(flags), log=lambda m: None)
    with pytest.raises(NonFiniteError, match="step 1: the loss is not finite"):
        trainer.fit()
    assert all(p.grad is None for p in trainer.policy.parameters())  # nothing was back-propagated


def test_a_nan_gradient_stops_the_run_before_the_optimizer_step(arithmetic_flags, tmp_path):
    trainer = LocalTrainer(
        parse_args([*arithmetic_flags, "--ckpt.output_dir", str(tmp_path / "run"), "--ckpt.save_steps", "1"]),
        log=lambda m: None,
    )
    weights = []

    def poison_after_first_step(t, record):
        if record["step"] == 1:
            weights[:] = [p.detach().clone() for p in t.policy.parameters()]
            t.policy.get_input_embeddings().weight.register_hook(lambda g: g * math.nan)

    trainer.callbacks.append(poison_after_first_step)
    with pytest.raises(NonFiniteError, match=r"step 2: the gradient is not finite \(norm nan"):
        trainer.fit()
    assert all(torch.equal(p, q) for p, q in zip(weights, trainer.policy.parameters()))  # step 2 never applied
    assert sorted(p.name for p in (tmp_path / "run" / "checkpoints").iterdir() if p.name != ".lock") == [
        "global_step_1"
    ]
