"""`openrlhf-cfpo compare`: CFPO and clipped RLOO trained side by side, same seed, then plots and a summary.

Each run is a `openrlhf-cfpo local` child process with the same flags but ``--actor.policy_loss_type``
(and ``--algo.kl.init_coef`` when several are asked for), trained in parallel by :mod:`.runs`.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Sequence
from pathlib import Path

from ..losses import POLICY_LOSSES, logged_name
from .config import layered_settings, misspelt_option, set_per_run
from .errors import ConfigError, report
from .lock import FolderLocks
from .logger import METRICS_FILE, RUN_SUMMARY, read_metrics
from .plot import plot_runs, read_runs, smooth_problem
from .runs import run_all

# The off-policy regime: 16 prompts x 4 samples = 64 per rollout, 16 per optimizer step, 2 epochs:
# 8 optimizer steps per rollout, where PPO's clip and CFPO's penalty act differently; 64 rollouts.
# Two KL coefficients, as in the paper's Figure 3 (with and without the KL penalty).
COMPARE_DEFAULTS = [
    "--rollout.batch_size",
    "16",
    "--rollout.n_samples_per_prompt",
    "4",
    "--train.batch_size",
    "16",
    "--train.micro_batch_size",
    "16",
    "--train.max_epochs",
    "2",
    "--data.max_samples",
    "1024",
    "--rollout.max_new_tokens",
    "32",
    "--algo.advantage.estimator",
    "rloo",
    "--ckpt.save_steps",
    "128",
]

# The `local` flags each run gets from compare's own options, which a user's would be overridden by.
PER_RUN = {"actor.policy_loss_type": "--losses", "algo.kl.init_coef": "--kl_coefs"}


def run_name(loss: str, kl: float) -> str:
    return f"{loss}_kl{kl:g}"


def _summarise(folder: Path) -> dict[str, float]:
    rows = read_metrics(str(folder / METRICS_FILE))
    first_rollout, last_rollout = rows[0]["rollout"], rows[-1]["rollout"]
    first = [r for r in rows if r["rollout"] == first_rollout]
    last = [r for r in rows if r["rollout"] == last_rollout]

    def mean(rs, k):
        return sum(r[k] for r in rs) / len(rs)

    summary = json.loads((folder / RUN_SUMMARY).read_text())
    return {
        "steps": rows[-1]["step"],
        "initial_reward": mean(first, "reward"),
        "final_reward": mean(last, "reward"),
        "initial_length": mean(first, "response_length"),
        "final_length": mean(last, "response_length"),
        "mean_clip_ratio": mean(rows, logged_name("openrlhf", "clip_ratio")),
        "mean_ratio_dev": mean(rows, "ratio_dev_mean"),
        "final_kl": mean(last, "kl"),
        "wall_time_s": summary["wall_time_s"],
    }


def describe(losses: Sequence[str], cfg) -> str:
    """What was compared, from the flags the runs really got (losses, estimator, steps per rollout, models)."""
    a = cfg.args
    steps = a.rollout.batch_size * a.rollout.n_samples_per_prompt // a.train.batch_size * a.train.max_epochs
    models = "the embedded default" if a.actor.model_name_or_path is None else a.actor.model_name_or_path
    return (
        f"{' vs '.join(losses)} on {models} ({a.algo.advantage.estimator} advantages, same seed, "
        f"{steps} optimizer step{'s' if steps != 1 else ''} per rollout)"
    )


def write_summary(
    output: Path, runs: dict[str, dict[str, float]], total_wall: float, flags: Sequence[str], title: str
) -> str:
    lines = [
        f"# {title}",
        "",
        "| run | final reward (from) | response length: first -> last rollout (growth) "
        "| mean clip ratio | mean \\|r-1\\| | final KL to ref | wall time |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, s in runs.items():
        growth = s["final_length"] / max(s["initial_length"], 1e-9)
        lines.append(
            f"| {name} | {s['final_reward']:.3f} ({s['initial_reward']:.3f}) "
            f"| {s['initial_length']:.1f} -> {s['final_length']:.1f} (x{growth:.2f}) | {s['mean_clip_ratio']:.4f} "
            f"| {s['mean_ratio_dev']:.4f} | {s['final_kl']:.4f} | {s['wall_time_s']:.0f} s |"
        )
    lines += [
        "",
        "Final = mean over the optimizer steps of the last rollout; first = of the first rollout. "
        "Clip ratio = share of",
        "response tokens outside [1-eps, 1+eps] in the direction of their advantage (where PPO's clip binds), "
        "for both losses.",
        f"{runs and next(iter(runs.values()))['steps']} optimizer steps per run; "
        f"compare wall time (runs in parallel, incl. setup): {total_wall:.0f} s.",
        "",
        "Flags shared by every run: `" + " ".join(flags) + "`",
        "",
    ]
    text = "\n".join(lines)
    (output / "summary.md").write_text(text)
    return text


def main(argv: list[str], prog: str = "openrlhf-cfpo compare") -> int:
    import argparse

    p = argparse.ArgumentParser(
        prog=prog,
        description=__doc__.splitlines()[0] + " Other flags go to every `local` run.",
        allow_abbrev=False,  # (a prefix such as --out or --iter is a `local` flag's problem, not one of ours)
    )
    p.add_argument("--output", required=True, help="folder for DIR/<run>/, DIR/*.png and DIR/summary.md")
    p.add_argument(
        "--losses", nargs="+", default=["ppo", "cfpo"], choices=sorted(POLICY_LOSSES), help="policy losses to train"
    )
    p.add_argument(
        "--kl_coefs",
        nargs="+",
        type=float,
        default=[0.01, 0.0],
        help="--algo.kl.init_coef values (one run per loss per value)",
    )
    p.add_argument("--jobs", type=int, default=max(os.cpu_count() or 1, 1), help="runs trained at once")
    p.add_argument(
        "--smooth", type=float, default=0.8, help="EMA weight for the plotted curves (raw curves shown faint)"
    )
    opts, local_flags = p.parse_known_args(argv)
    if misspelt := misspelt_option(p, local_flags):
        report(prog, ConfigError(misspelt))
        return 2
    t0 = time.time()
    output = Path(opts.output)
    options = [smooth_problem("smooth", opts.smooth)]
    try:
        layers = layered_settings(local_flags, COMPARE_DEFAULTS)
        flags = layers.flags
        options += set_per_run(layers, PER_RUN, prog.split()[-1])
    except ConfigError:  # a flag no run takes: the runs' own check says so, with every other problem found
        flags = [*COMPARE_DEFAULTS, *local_flags]
    runs = {
        run_name(loss, kl): [*flags, "--actor.policy_loss_type", loss, "--algo.kl.init_coef", str(kl)]
        for kl in opts.kl_coefs
        for loss in opts.losses
    }
    with FolderLocks() as locks:  # --output, held until its summary is written
        configs, code = run_all(runs, output, opts.jobs, prog, argv, option_problems=options, locks=locks)
        if configs is None:
            return code
        curves = read_runs([str(output / name) for name in runs])
        title = describe(opts.losses, configs[0])
        plot_runs(curves, str(output / "training_dynamics.png"), smooth=opts.smooth, title=title)
        stats = {name: _summarise(output / name) for name in runs}
        text = write_summary(output, stats, time.time() - t0, flags, title)
        print(text)
        print(
            f"wrote {output}/summary.md, {output}/training_dynamics.png and {', '.join(f'{output}/{n}/' for n in runs)}"
        )
        return 0
