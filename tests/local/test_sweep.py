"""`sweep`: GRPO (clipped) vs CFPO for each iteration count, a Figure-2-style grid and a summary."""

import pytest

from openrlhf_cfpo.local.cli import main_sweep
from openrlhf_cfpo.local.logger import read_metrics
from openrlhf_cfpo.local.sweep import parse_iterations, rollout_stats


def _rows(rewards, steps_per_rollout=2):
    return [
        {
            "step": k * steps_per_rollout + i + 1,
            "rollout": k,
            "reward": r,
            "ppo_clip_ratio": 0.1,
            "entropy": 1.0,
            "kl": 0.0,
        }
        for k, r in enumerate(rewards)
        for i in range(steps_per_rollout)
    ]


def test_a_reward_that_falls_below_half_its_peak_and_stays_there_is_a_collapse():
    stats = rollout_stats(_rows([0.4, 0.6, 0.8, 0.8, 0.3, 0.2, 0.1, 0.1]), window=2)
    # window means: .5 .7 .8 .55 .25 .15 .1 -> below 0.4 (half of 0.8) from the mean of rollouts 4-5 on
    assert (
        stats["collapse_step"] == 11
        and stats["peak_reward"] == pytest.approx(0.8)
        and stats["final_reward"] == pytest.approx(0.1)
    )
    assert stats["largest_drop"] == pytest.approx(0.7)


def test_a_dip_that_recovers_is_a_drop_not_a_collapse():
    stats = rollout_stats(_rows([0.8, 0.8, 0.1, 0.1, 0.8, 0.8]), window=2)
    assert stats["collapse_step"] is None and stats["largest_drop"] == pytest.approx(0.7)


def test_iteration_counts_are_whole_numbers_from_one():
    assert parse_iterations("16,1,2,2") == [1, 2, 16]
    for bad in ("0,1", "a,b", ""):
        with pytest.raises(ValueError):
            parse_iterations(bad)


def test_sweep_trains_both_losses_per_iteration_count_and_writes_the_grid_and_summary(
    arithmetic_flags, tmp_path, saved_figures
):
    out = tmp_path / "sweep"
    flags = [f for f in arithmetic_flags]
    # the sweep sets the train batch to the whole rollout itself (one step per pass): drop the fixture's
    for name in ("--train.batch_size", "--train.micro_batch_size"):
        i = flags.index(name)
        del flags[i : i + 2]
    assert (
        main_sweep(["--output", str(out), "--iterations", "1,3", "--window", "2", *flags, "--data.max_samples", "8"])
        == 0
    )
    for run, steps in (("ppo_it1", 2), ("cfpo_it1", 2), ("ppo_it3", 6), ("cfpo_it3", 6)):
        rows = read_metrics(str(out / run / "metrics.jsonl"))
        assert len(rows) == steps and {r["epoch"] for r in rows} == set(
            range(steps // 2)
        )  # 2 rollouts, one step per pass
    (fig,) = saved_figures
    assert fig.path == str(out / "figure2.png")
    # one column per iteration count (titled by it), reward then clip ratio, both losses in every panel as logged
    grid = [fig.fig.axes[:2], fig.fig.axes[2:]]
    assert [ax.get_title() for ax in grid[0]] == ["1 iteration", "3 iterations"]
    for j, k in enumerate((1, 3)):
        for i, metric in enumerate(("reward", "ppo_clip_ratio")):
            for loss, label in (("ppo", "GRPO (clipped)"), ("cfpo", "CFPO")):
                rows = read_metrics(str(out / f"{loss}_it{k}" / "metrics.jsonl"))
                steps, values = fig.curve(grid[i][j], label, raw=True)
                assert steps == [r["step"] for r in rows] and values == pytest.approx([r[metric] for r in rows])
    summary = (out / "summary.md").read_text()
    assert "| 1 | GRPO (clipped) | 2 |" in summary and "| 3 | CFPO | 6 |" in summary
    assert "Collapsed: the reward averaged over 2 consecutive rollouts falls below 0.5 x its running peak" in summary
    # on-policy (one iteration) the two losses are the same update: same rewards, no clipping
    a, b = (read_metrics(str(out / r / "metrics.jsonl")) for r in ("ppo_it1", "cfpo_it1"))
    assert [r["reward"] for r in a] == [r["reward"] for r in b] and all(r["ppo_clip_ratio"] == 0 for r in a)


def test_sweep_refuses_bad_iterations_in_one_line(capsys, tmp_path):
    assert main_sweep(["--output", str(tmp_path / "s"), "--iterations", "0,2"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--iterations 0,2" in err[0]


def test_sweep_refuses_the_loss_and_epochs_it_sets_per_run_naming_its_own_options(capsys, tmp_path, monkeypatch):
    import openrlhf_cfpo.local.runs as runs

    monkeypatch.setattr(runs, "train_children", lambda *a, **k: pytest.fail("a run started"))
    argv = ["--output", str(tmp_path / "s"), "--actor.policy_loss_type", "cfpo", "--train.max_epochs", "3"]
    assert main_sweep(argv) == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        "openrlhf-cfpo sweep: error: --actor.policy_loss_type cfpo is set per run by sweep: give --losses cfpo instead",
        "openrlhf-cfpo sweep: error: --train.max_epochs 3 is set per run by sweep: give --iterations 3 instead",
    ]
    assert not (tmp_path / "s").exists()
