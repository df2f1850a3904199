"""Training curves from this engine's runs and OpenRLHF TensorBoard logs alike: Figure 3 panels and Figure 2 grids.

A RUN argument is either a folder with ``metrics.jsonl`` (this engine) or a folder holding
TensorBoard event files somewhere below it (OpenRLHF's ``--logger.tensorboard_dir``; each
sub-folder with events is one run). Both log ``train/<metric>`` under OpenRLHF's names, read
here with TensorBoard's ``EventAccumulator``.
"""

from __future__ import annotations

import json
import os
import sys
import textwrap
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from .logger import CLIP_RATIO, METRICS_FILE, RUN_CONFIG, read_metrics

# (metric, panel title). The first four are the paper's Figure 3 panels; the KL there is between
# consecutive policies (ppo_kl), shown next to the KL to the reference.
PANELS: list[tuple[str, str]] = [
    ("reward", "(a) reward"),
    ("response_length", "(b) response length"),
    (CLIP_RATIO, "(c) clip ratio"),
    ("ppo_kl", "(d) KL(pi_old || pi) per step"),
    ("kl", "(e) KL to reference"),
    ("ratio_dev_mean", "(f) mean |r - 1|"),
]
# OpenRLHF tag spellings that differ from the metric names above, across versions.
TAG_ALIASES = {
    "reward": ["train/reward", "train/rewards"],
    "response_length": ["train/response_length", "train/gen_len"],
    CLIP_RATIO: [f"train/{CLIP_RATIO}", "train/clip_ratio"],
    "kl": ["train/kl"],
    "ppo_kl": ["train/ppo_kl"],
    "ratio_dev_mean": ["train/ratio_dev_mean"],
}


@dataclass
class RunCurves:
    label: str
    series: dict[str, tuple[list[float], list[float]]] = field(default_factory=dict)  # metric -> (steps, values)
    source: str = ""  # where it was read from, as given: what tells apart runs of the same settings


class PlotError(ValueError):
    pass


def _label_from_config(cfg: dict, fallback: str) -> str:
    loss, kl = cfg.get("actor.policy_loss_type"), cfg.get("algo.kl.init_coef")
    if loss is None or kl is None:
        return fallback
    estimator = cfg.get("algo.advantage.estimator")
    return f"{loss} ({estimator}) kl={kl:g}" if estimator else f"{loss} kl={kl:g}"


def _lines(numbers: list[int], shown: int = 3) -> str:
    """``[3, 7, 9, 12]`` -> "lines 3, 7, 9 and 1 more"."""
    if len(numbers) == 1:
        return f"line {numbers[0]}"
    head, rest = numbers[:shown], len(numbers) - shown
    if rest > 0:
        return f"lines {', '.join(map(str, head))} and {rest} more"
    return f"lines {', '.join(map(str, head[:-1]))} and {head[-1]}"


def read_engine_run(folder: Path, warn: Callable[[str], None]) -> RunCurves:
    """A run folder's curves; lines of its ``metrics.jsonl`` that hold no step record are left out, with one ``warn``
    line."""
    skipped: list[int] = []
    rows = read_metrics(str(folder / METRICS_FILE), skipped)
    if skipped:
        warn(
            f"warning: {folder / METRICS_FILE}: {_lines(skipped)} {'is' if len(skipped) == 1 else 'are'} not a step "
            "record (a JSON object with a step; hand-edited, or two logs joined?); left out"
        )
    cfg_path = folder / RUN_CONFIG
    label = _label_from_config(json.loads(cfg_path.read_text()), folder.name) if cfg_path.exists() else folder.name
    curves = RunCurves(label)
    for metric, _ in PANELS:
        pts = [(r["step"], r[metric]) for r in rows if metric in r]
        if pts:
            curves.series[metric] = ([p[0] for p in pts], [p[1] for p in pts])
    return curves


def _event_dirs(root: Path) -> list[Path]:
    return sorted({p.parent for p in root.rglob("events.out.tfevents.*")})


def read_tensorboard_run(folder: Path, label: str) -> RunCurves:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(folder), size_guidance={"scalars": 0})
    acc.Reload()
    tags = set(acc.Tags().get("scalars", []))
    curves = RunCurves(label)
    for metric, _ in PANELS:
        tag = next((t for t in TAG_ALIASES[metric] if t in tags), None)
        if tag:
            events = acc.Scalars(tag)
            curves.series[metric] = ([e.step for e in events], [e.value for e in events])
    return curves


def repeated_step(curves: RunCurves) -> int | None:
    """The first step a run's log holds again after later ones (two processes wrote it at once), or None."""
    for steps, _ in curves.series.values():
        for before, step in zip(steps, steps[1:]):
            if step <= before:
                return step
    return None


def read_runs(paths: Sequence[str], warn: Callable[[str], None] | None = None) -> list[RunCurves]:
    """Every run under ``paths``, labelled by its settings; runs of the same settings also by where they are.
    A log that repeats steps is still read, with one ``warn`` line (default: on stderr)."""
    warn = warn or (lambda m: print(m, file=sys.stderr))
    runs = []
    for p in paths:
        folder = Path(p)
        if not folder.exists():
            raise PlotError(f"{p}: no such run folder")
        if (folder / METRICS_FILE).exists():
            runs.append(read_engine_run(folder, warn))
            runs[-1].source = p
            continue
        event_dirs = _event_dirs(folder)
        if not event_dirs:
            raise PlotError(f"{p}: neither a run folder (metrics.jsonl) nor a folder with TensorBoard event files")
        for d in event_dirs:
            name = folder.name if d == folder else f"{folder.name}/{d.relative_to(folder)}"
            runs.append(read_tensorboard_run(d, name))
            runs[-1].source = str(d)
    for run in runs:
        step = repeated_step(run)
        if step is not None:
            warn(
                f"warning: {run.source} logs step {step} again after later steps (two processes wrote it at once?); "
                "its curves will zig-zag"
            )
    labels = [r.label for r in runs]
    for run in runs:
        if labels.count(run.label) > 1:
            run.label = f"{run.label} ({run.source})"
    return runs


def with_steps(runs: list[RunCurves], warn: Callable[[str], None]) -> list[RunCurves]:
    """The runs that logged a step of some panel's metric; the others each get one ``warn`` line. None at all is a
    PlotError: a figure of empty panels shows nothing."""
    empty = [run.source for run in runs if not run.series]
    if len(empty) == len(runs):
        raise PlotError(f"{', '.join(empty)}: no step of the plotted metrics logged (yet); no figure written")
    for source in empty:
        warn(f"warning: {source}: no step of the plotted metrics logged (yet); left out of the figure")
    return [run for run in runs if run.series]


def smooth_problem(flag: str, weight: float) -> str | None:
    """Why ``weight`` is no EMA weight (the ``--smooth`` of plot, compare and sweep), or None."""
    return None if 0 <= weight < 1 else f"--{flag} must be in [0, 1) (an EMA weight; 0 plots raw values), got {weight}"


def _ema(values: list[float], weight: float) -> list[float]:
    out, acc = [], None
    for v in values:
        acc = v if acc is None else weight * acc + (1 - weight) * v
        out.append(acc)
    return out


def _draw(ax, steps, values, color, label, smooth: float, linestyle: str = "-") -> None:
    """One run in one panel: the raw curve faint (labelled ``_raw <label>``, which legends skip) and its EMA on top,
    or the raw curve alone without smoothing."""
    if smooth > 0:
        ax.plot(steps, values, color=color, alpha=0.2, linewidth=0.8, linestyle=linestyle, label=f"_raw {label}")
    ax.plot(
        steps,
        _ema(values, smooth) if smooth > 0 else values,
        color=color,
        linewidth=1.8,
        label=label,
        linestyle=linestyle,
    )


def _figure(nrows: int, ncols: int, figsize):
    """A figure outside pyplot's global state (nothing to close, no backend to select): freed like any object."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize)
    return fig, fig.subplots(nrows, ncols, squeeze=False)


def _palette() -> list[str]:
    import matplotlib

    return matplotlib.rcParams["axes.prop_cycle"].by_key()["color"]


def _title_and_layout(fig, title: str, fontsize: int, legend_in: float) -> None:
    """The title wrapped to the figure's width, the figure made taller to hold it, the panels laid out between it
    and ``legend_in`` inches left at the bottom for the legend (a one-column grid is narrower than its title)."""
    per_line = max(int(fig.get_figwidth() * 72 / (0.6 * fontsize)), 20)  # a character is ~0.6 em wide in DejaVu Sans
    lines = textwrap.wrap(title, per_line) or [""]
    title_in = (1.35 * fontsize * len(lines) + 12) / 72
    height = fig.get_figheight() + title_in
    fig.set_figheight(height)
    fig.suptitle("\n".join(lines), fontsize=fontsize, y=1 - 6 / 72 / height, va="top")
    fig.tight_layout(rect=(0, legend_in / height, 1, 1))  # (tight_layout keeps the panels below a suptitle itself)


def save_figure(fig, output: str) -> str:
    os.makedirs(os.path.dirname(os.path.abspath(output)), exist_ok=True)
    fig.savefig(output, dpi=110)
    return output


def plot_runs(runs: list[RunCurves], output: str, smooth: float = 0.6, title: str | None = None):
    """Figure 3's panels (:data:`PANELS`), every run in each, written to ``output``; returns the figure."""
    fig, axes = _figure(2, 3, (15, 7.6))
    colors = _palette()
    for ax, (metric, name) in zip(axes.flat, PANELS):
        drawn = False
        for i, run in enumerate(runs):
            if metric not in run.series:
                continue
            steps, values = run.series[metric]
            _draw(ax, steps, values, colors[i % len(colors)], run.label, smooth)
            drawn = True
        ax.set_title(name)
        ax.set_xlabel("optimizer step")
        ax.grid(alpha=0.3)
        if not drawn:
            ax.text(0.5, 0.5, "not logged", ha="center", va="center", transform=ax.transAxes, color="gray")
    handles, labels = axes.flat[0].get_legend_handles_labels()
    if handles:
        fig.legend(handles, labels, loc="lower center", ncol=min(len(labels), 4), frameon=False, fontsize=11)
    _title_and_layout(fig, title or "RLHF training dynamics (cf. CFPO paper, Figure 3)", 13, legend_in=0.5)
    save_figure(fig, output)
    return fig


def plot_grid(
    columns: Sequence[tuple[str, Sequence[RunCurves]]],
    rows: Sequence[tuple[str, str]],
    output: str,
    smooth: float = 0.6,
    title: str | None = None,
    linestyles: dict[str, str] | None = None,
):
    """A Figure-2-style grid: one column per setting (``(column title, runs)``), one row per ``(metric, row title)``,
    every run of a column in each of its panels. A run keeps its colour (and ``linestyles[label]``) in every column.
    Written to ``output``; returns the figure."""
    fig, axes = _figure(len(rows), len(columns), (3.4 * len(columns) + 1, 2.9 * len(rows) + 0.3))
    palette = _palette()
    color_of: dict[str, str] = {}
    for j, (col_title, runs) in enumerate(columns):
        for i, (metric, row_title) in enumerate(rows):
            ax = axes[i][j]
            for run in runs:
                color = color_of.setdefault(run.label, palette[len(color_of) % len(palette)])
                if metric in run.series:
                    steps, values = run.series[metric]
                    _draw(ax, steps, values, color, run.label, smooth, (linestyles or {}).get(run.label, "-"))
            if i == 0:
                ax.set_title(col_title)
            if j == 0:
                ax.set_ylabel(row_title)
            if i == len(rows) - 1:
                ax.set_xlabel("optimizer step")
            ax.grid(alpha=0.3)
    handles, labels = axes[0][0].get_legend_handles_labels()
    if handles:
        fig.legend(handles, labels, loc="lower center", ncol=min(len(labels), 4), frameon=False, fontsize=11)
    _title_and_layout(fig, title or "Training dynamics per setting (cf. CFPO paper, Figure 2)", 12, legend_in=0.5)
    save_figure(fig, output)
    return fig
