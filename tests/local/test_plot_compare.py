"""`plot` reads engine runs and OpenRLHF TensorBoard logs; `compare` leaves its runs, plots and summary."""
import os

from torch.utils.tensorboard import SummaryWriter

from openrlhf_cfpo.local.cli import main_compare, main_local, main_plot
from openrlhf_cfpo.local.plot import read_runs


def test_plot_reads_engine_runs_and_openrlhf_tensorboard_logs(local_flags, tmp_path):
    run = tmp_path / "engine"
    assert main_local([*local_flags, "--ckpt.output_dir", str(run), "--actor.policy_loss_type", "cfpo"]) == 0
    tb = tmp_path / "openrlhf_logs"
    writer = SummaryWriter(str(tb / "rloo_run"))
    for step in range(1, 6):  # OpenRLHF's tag layout: train/<metric> per global step
        writer.add_scalar("train/reward", 0.1 * step, step)
        writer.add_scalar("train/response_length", 100 + step, step)
        writer.add_scalar("train/ppo_clip_ratio", 0.01, step)
        writer.add_scalar("train/kl", 0.001 * step, step)
    writer.close()
    runs = read_runs([str(run), str(tb)])
    assert runs[0].label == "cfpo (rloo) kl=0.01" and len(runs[0].series["reward"][0]) == 6
    assert runs[1].series["response_length"] == ([1, 2, 3, 4, 5], [101.0, 102.0, 103.0, 104.0, 105.0])
    png = tmp_path / "fig.png"
    assert main_plot([str(run), str(tb), "--output", str(png)]) == 0
    assert png.stat().st_size > 10_000


def test_plot_names_a_folder_without_runs(tmp_path, capsys):
    assert main_plot([str(tmp_path), "--output", str(tmp_path / "x.png")]) == 2
    assert "neither a run folder" in capsys.readouterr().err


def test_compare_writes_both_runs_the_plot_and_the_summary(local_flags, tmp_path):
    out = tmp_path / "cmp"
    assert main_compare(["--output", str(out), *local_flags, "--data.max_samples", "8", "--train.max_epochs", "2"]) == 0
    for run in ("ppo_kl0.01", "cfpo_kl0.01", "ppo_kl0", "cfpo_kl0"):
        assert (out / run / "metrics.jsonl").exists()
    assert os.path.getsize(out / "training_dynamics.png") > 10_000
    summary = (out / "summary.md").read_text()
    assert "| ppo_kl0.01 |" in summary and "| cfpo_kl0 |" in summary and "wall time" in summary
    # 4 prompts x 2 samples / train batch 4 x 2 epochs: the title says what was run, not a fixed regime
    assert summary.splitlines()[0] == "# ppo vs cfpo on " + local_flags[1] + " (rloo advantages, same seed, 4 optimizer steps per rollout)"
