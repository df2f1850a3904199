"""`plot` reads engine runs and OpenRLHF TensorBoard logs; `compare` leaves its runs, plots and summary.

The figures are checked by what they plot: each test records the figure `save_figure` writes and reads its
lines back.
"""

import pytest
from matplotlib.image import imread
from torch.utils.tensorboard import SummaryWriter

from openrlhf_cfpo.local.cli import main_compare, main_local, main_plot
from openrlhf_cfpo.local.logger import read_metrics


def test_plot_draws_engine_runs_and_openrlhf_tensorboard_logs_as_logged(local_flags, tmp_path, saved_figures):
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
    png = tmp_path / "fig.png"
    assert main_plot([str(run), str(tb), "--output", str(png), "--smooth", "0"]) == 0
    (fig,) = saved_figures
    assert fig.path == str(png) and imread(str(png)).ndim == 3  # a PNG matplotlib reads back
    rows = read_metrics(str(run / "metrics.jsonl"))
    steps, rewards = fig.curve(fig.panel("(a) reward"), "cfpo (rloo) kl=0.01")
    assert steps == [r["step"] for r in rows] and rewards == pytest.approx([r["reward"] for r in rows])
    assert fig.curve(fig.panel("(b) response length"), "openrlhf_logs/rloo_run") == (
        [1, 2, 3, 4, 5],
        [101.0, 102.0, 103.0, 104.0, 105.0],
    )
    # OpenRLHF's log has no mean |r - 1|: only the engine's run is drawn there
    assert [ln.get_label() for ln in fig.panel("(f) mean |r - 1|").get_lines()] == ["cfpo (rloo) kl=0.01"]


def test_plot_names_a_folder_without_runs(tmp_path, capsys):
    assert main_plot([str(tmp_path), "--output", str(tmp_path / "x.png")]) == 2
    assert "neither a run folder" in capsys.readouterr().err


def test_compare_writes_both_runs_the_plot_and_the_summary(local_flags, tmp_path, saved_figures):
    out = tmp_path / "cmp"
    assert main_compare(["--output", str(out), *local_flags, "--data.max_samples", "8", "--train.max_epochs", "2"]) == 0
    runs = ("ppo_kl0.01", "cfpo_kl0.01", "ppo_kl0", "cfpo_kl0")
    (fig,) = saved_figures
    assert fig.path == str(out / "training_dynamics.png")
    labels = {
        "ppo_kl0.01": "ppo (rloo) kl=0.01",
        "cfpo_kl0.01": "cfpo (rloo) kl=0.01",
        "ppo_kl0": "ppo (rloo) kl=0",
        "cfpo_kl0": "cfpo (rloo) kl=0",
    }
    for run in runs:  # every run's reward and clip ratio, as its metrics.jsonl logged them
        rows = read_metrics(str(out / run / "metrics.jsonl"))
        for title, metric in (("(a) reward", "reward"), ("(c) clip ratio", "ppo_clip_ratio")):
            steps, values = fig.curve(fig.panel(title), labels[run], raw=True)
            assert steps == [r["step"] for r in rows] and values == pytest.approx([r[metric] for r in rows])
    summary = (out / "summary.md").read_text()
    assert "| ppo_kl0.01 |" in summary and "| cfpo_kl0 |" in summary and "wall time" in summary
    # 4 prompts x 2 samples / train batch 4 x 2 epochs: the title says what was run, not a fixed regime
    assert (
        summary.splitlines()[0]
        == "# ppo vs cfpo on " + local_flags[1] + " (rloo advantages, same seed, 4 optimizer steps per rollout)"
    )
    assert fig.fig.get_suptitle() == summary.splitlines()[0][2:]  # the figure's title is the summary's


def test_two_runs_of_the_same_settings_get_different_legend_labels(local_flags, tmp_path, saved_figures):
    for name in ("a", "b"):
        assert (
            main_local(
                [*local_flags, "--ckpt.output_dir", str(tmp_path / name / "run"), "--train.seed", str(len(name))]
            )
            == 0
        )
    assert (
        main_plot([str(tmp_path / "a" / "run"), str(tmp_path / "b" / "run"), "--output", str(tmp_path / "fig.png")])
        == 0
    )
    (fig,) = saved_figures
    legend = [t.get_text() for t in fig.fig.legends[0].get_texts()]
    assert legend == [
        f"ppo (rloo) kl=0.01 ({tmp_path / 'a' / 'run'})",
        f"ppo (rloo) kl=0.01 ({tmp_path / 'b' / 'run'})",
    ]


@pytest.mark.parametrize("columns", [1, 3])
def test_a_long_title_stays_inside_the_figure_and_above_the_panels(tmp_path, columns):
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    from openrlhf_cfpo.local.plot import RunCurves, plot_grid

    run = RunCurves("CFPO", {"reward": ([1, 2, 3], [0.1, 0.2, 0.3]), "ppo_clip_ratio": ([1, 2, 3], [0.0, 0.1, 0.0])})
    title = (
        "GRPO (clipped) vs CFPO under sample reuse on the embedded arithmetic default "
        "(group_norm advantages, same seed, 64 rollouts, 1 step per pass)"
    )
    fig = plot_grid(
        [(f"{k} iterations", [run]) for k in range(columns)],
        [("reward", "reward"), ("ppo_clip_ratio", "clip ratio")],
        str(tmp_path / "grid.png"),
        title=title,
    )
    renderer = FigureCanvasAgg(fig).get_renderer()
    (text,) = [t for t in fig.texts if t.get_text().replace("\n", " ") == title]  # wrapped, every word kept
    box = text.get_window_extent(renderer)
    assert box.x0 >= 0 and box.x1 <= fig.bbox.x1 and box.y1 <= fig.bbox.y1
    assert box.y0 >= max(ax.get_tightbbox(renderer).y1 for ax in fig.axes)  # the column titles are below it


def test_plot_reads_the_clip_ratio_under_openrlhfs_logged_name_and_starts_without_torch():
    import subprocess
    import sys

    from openrlhf_cfpo.losses import logged_name

    probe = "import sys; from openrlhf_cfpo.local import plot; print(plot.PANELS[2][0], 'torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout.split()
    assert out == [logged_name("openrlhf", "clip_ratio"), "False"]


def test_compare_refuses_the_loss_and_kl_it_sets_per_run_naming_its_own_options(capsys, tmp_path, monkeypatch):
    import openrlhf_cfpo.local.runs as runs

    monkeypatch.setattr(runs, "train_children", lambda *a, **k: pytest.fail("a run started"))
    argv = ["--output", str(tmp_path / "c"), "--algo.kl.init_coef", "0.05", "--actor.policy_loss_type", "ppo"]
    assert main_compare(argv) == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        "openrlhf-cfpo compare: error: --actor.policy_loss_type ppo is set per run by compare: give --losses ppo "
        "instead",
        "openrlhf-cfpo compare: error: --algo.kl.init_coef 0.05 is set per run by compare: give --kl_coefs 0.05 "
        "instead",
    ]
    assert not (tmp_path / "c").exists()


def _log(folder, text):
    folder.mkdir(parents=True)
    (folder / "metrics.jsonl").write_text(text)
    return folder


def test_plot_leaves_out_lines_that_hold_no_step_record_with_one_warning_naming_them(tmp_path, capsys, saved_figures):
    run = _log(
        tmp_path / "joined",
        '{"step": 1, "reward": 0.1}\n'
        "<<<<<<< HEAD\n"
        '{"step": 2, "reward": 0.2}{"step": 3, "reward": 0.3}\n'  # two logs joined without a newline
        "[4]\n"
        '{"step": 4, "reward": 0.4}\n',
    )
    assert main_plot([str(run), "--output", str(tmp_path / "fig.png"), "--smooth", "0"]) == 0
    assert capsys.readouterr().err.strip().splitlines() == [
        f"warning: {run / 'metrics.jsonl'}: lines 2, 3 and 4 are not a step record (a JSON object with a step; "
        "hand-edited, or two logs joined?); left out"
    ]
    (fig,) = saved_figures
    assert fig.curve(fig.panel("(a) reward"), "joined") == ([1, 4], [0.1, 0.4])


def test_a_log_with_no_step_is_one_line_and_no_figure(tmp_path, capsys, saved_figures):
    empty = _log(tmp_path / "empty", "")
    assert main_plot([str(empty), "--output", str(tmp_path / "fig.png")]) == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        f"openrlhf-cfpo plot: error: {empty}: no step of the plotted metrics logged (yet); no figure written"
    ]
    assert saved_figures == [] and not (tmp_path / "fig.png").exists()
    # next to a run that has steps, it is left out with a warning
    full = _log(tmp_path / "full", '{"step": 1, "reward": 0.5}\n')
    assert main_plot([str(full), str(empty), "--output", str(tmp_path / "fig.png")]) == 0
    assert capsys.readouterr().err.strip().splitlines() == [
        f"warning: {empty}: no step of the plotted metrics logged (yet); left out of the figure"
    ]
    (fig,) = saved_figures
    assert [ln.get_label() for ln in fig.panel("(a) reward").get_lines()] == ["_raw full", "full"]


def test_the_engines_own_readers_name_a_line_that_holds_no_step_record(tmp_path):
    run = _log(tmp_path / "run", '{"step": 1}\nnot json\n')
    with pytest.raises(ValueError, match=r"metrics.jsonl, line 2: not a step record .*'not json'"):
        read_metrics(str(run / "metrics.jsonl"))
