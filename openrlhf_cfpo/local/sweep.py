"""`openrlhf-cfpo sweep`: clipped GRPO and CFPO under growing sample reuse, the paper's Figure 2 on a laptop.

For each iteration count K in ``--iterations`` and each loss, one `openrlhf-cfpo local` run, all with the
same seed (so the same prompts in the same order, and the same first rollout), trained in parallel by
:mod:`.runs`; then a grid of reward and clip ratio over optimizer steps (one column per K, both losses
in every panel; clipped dashed, CFPO solid as in the paper) and ``summary.md``.

Iterations are optimizer passes over each rollout, ``--train.max_epochs K``, with ``--train.batch_size``
equal to the whole rollout (prompts x samples): each rollout is reused for exactly K full-batch steps.
That is the paper's definition: its Figure 2 runs are TRL's, where ``num_iterations`` reuses each
generation batch K times and "TRL ... only supports sample reuse (also referred to as iterations)
without mini-batch updates"; mini-batches per rollout (verl's batch ratio) are the paper's other,
separate source of off-policy pressure and stay at 1 here unless ``--train.batch_size`` is given. Every
run gets the same number of rollouts, so K iterations take K times the optimizer steps, as TRL's
epoch over the data grows with ``num_iterations``.

Defaults: the embedded arithmetic default (verifiable rewards from its ``reward_func`` file), group-
normalised advantages (GRPO), no KL penalty (the paper's beta = 0), eps = 0.2. Any `local` flag
overrides them, e.g. ``--actor.model_name_or_path Qwen/Qwen2.5-0.5B-Instruct ... --ds.param_dtype bf16``
with a reasoning dataset and reward file on a GPU. ``--embedded_default smollm2_arithmetic`` runs the same task on
a real pretrained chat model (SmolLM2-135M-Instruct) with the reasoning reward; its own run flags (chat template,
generation length, lr, sizes) come after these defaults.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import Sequence
from pathlib import Path

from ..losses import POLICY_LOSSES, logged_name
from . import embedded
from .config import layered_settings, misspelt_option, parse_args, set_per_run
from .errors import ConfigError, report
from .lock import FolderLocks
from .logger import METRICS_FILE, RUN_SUMMARY, read_metrics
from .plot import plot_grid, read_runs, smooth_problem
from .runs import run_all

# 32 prompts x 4 samples = 128 per rollout, one full-batch optimizer step per iteration, 64 rollouts. The learning
# rate is a tiny model's (its SFT ran at 3e-3): at 1e-3 one iteration lifts the reward from 0.44 to about 0.6 in
# the 64 rollouts, so every column has learning to show. The whole sweep fits in minutes on 2 CPU cores.
SWEEP_DEFAULTS = [
    "--embedded_default",
    "arithmetic",
    "--rollout.batch_size",
    "32",
    "--rollout.n_samples_per_prompt",
    "4",
    "--rollout.max_new_tokens",
    "8",
    "--data.max_samples",
    "2048",
    "--algo.advantage.estimator",
    "group_norm",
    "--algo.kl.init_coef",
    "0",
    "--actor.adam.lr",
    "1e-3",
    "--ckpt.save_steps",
    "256",
]
# The `local` flags each run gets from the sweep's own options, which a user's would be overridden by.
PER_RUN = {"actor.policy_loss_type": "--losses", "train.max_epochs": "--iterations"}
# Rows of the grid: the paper's Figure 2 panels.
ROWS = [("reward", "reward"), (logged_name("openrlhf", "clip_ratio"), "clip ratio")]
COLLAPSE_SHARE = 0.5


def run_name(loss: str, iterations: int) -> str:
    return f"{loss}_it{iterations}"


def loss_label(loss: str, estimator: str) -> str:
    if loss == "ppo":
        return "GRPO (clipped)" if estimator == "group_norm" else f"clipped ({estimator})"
    return loss.upper() if estimator == "group_norm" else f"{loss} ({estimator})"


def parse_iterations(text: str) -> list[int]:
    try:
        values = sorted({int(v) for v in text.split(",") if v.strip()})
    except ValueError:
        raise ConfigError(f"--iterations {text}: give comma-separated whole numbers, e.g. 1,2,4,8,16") from None
    if not values or values[0] < 1:
        raise ConfigError(f"--iterations {text}: every iteration count must be >= 1")
    return values


def rollout_stats(rows: list[dict], window: int) -> dict[str, float]:
    """Peak, final and collapse of one run's reward, by the rule the summary states (see ``write_summary``)."""
    by_rollout: dict[int, list[dict]] = {}
    for r in rows:
        by_rollout.setdefault(r["rollout"], []).append(r)
    order = sorted(by_rollout)
    reward = [sum(r["reward"] for r in by_rollout[k]) / len(by_rollout[k]) for k in order]
    first_step = [by_rollout[k][0]["step"] for k in order]
    w = max(min(window, len(reward)), 1)
    smooth = [sum(reward[j - w + 1 : j + 1]) / w for j in range(w - 1, len(reward))]
    running = [max(smooth[: j + 1]) for j in range(len(smooth))]
    below = [s < COLLAPSE_SHARE * p for s, p in zip(smooth, running)]
    collapse_at = None
    if below and below[-1]:
        j = len(below) - 1
        while j > 0 and below[j - 1]:
            j -= 1
        collapse_at = first_step[j + w - 1]
    peak_j = max(range(len(smooth)), key=smooth.__getitem__)

    def mean(rs, k):
        vals = [r[k] for r in rs if k in r]
        return sum(vals) / len(vals) if vals else float("nan")

    return {
        "rollouts": len(order),
        "steps": rows[-1]["step"],
        "initial_reward": reward[0],
        "peak_reward": smooth[peak_j],
        "peak_step": first_step[peak_j + w - 1],
        "final_reward": smooth[-1],
        "collapse_step": collapse_at,
        "largest_drop": max(p - s for s, p in zip(smooth, running)),
        "mean_clip_ratio": mean(rows, logged_name("openrlhf", "clip_ratio")),
        "entropy_start": mean(by_rollout[order[0]], "entropy"),
        "entropy_end": mean(by_rollout[order[-1]], "entropy"),
        "final_kl": mean(by_rollout[order[-1]], "kl"),
    }


def write_summary(
    output: Path, table: list[dict], title: str, flags: Sequence[str], window: int, total_wall: float, start_note: str
) -> str:
    lines = [
        f"# {title}",
        "",
        "| iterations | loss | steps | reward: initial -> peak (step) -> final | collapsed | largest drop "
        "| mean clip ratio | entropy: start -> end | final KL to ref | wall time |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for t in table:
        s = t["stats"]
        collapsed = f"yes, at step {s['collapse_step']}" if s["collapse_step"] is not None else "no"
        lines.append(
            f"| {t['iterations']} | {t['label']} | {s['steps']} "
            f"| {s['initial_reward']:.3f} -> {s['peak_reward']:.3f} ({s['peak_step']}) -> {s['final_reward']:.3f} "
            f"| {collapsed} | {s['largest_drop']:.3f} | {s['mean_clip_ratio']:.4f} "
            f"| {s['entropy_start']:.3f} -> {s['entropy_end']:.3f} | {s['final_kl']:.4f} | {t['wall_time_s']:.0f} s |"
        )
    lines += [
        "",
        "Iterations = optimizer passes over each rollout (`--train.max_epochs`), "
        "each pass one optimizer step over the whole",
        "rollout (TRL's `num_iterations`, the paper's sample reuse); "
        "every run trains on the same rollout count, so a run with",
        "K iterations takes K times the steps. "
        "Initial reward = the first rollout's (the SFT policy's); peak and final are",
        f"means over {window} consecutive rollouts "
        f"(final = the last {window}; the peak's step is the first step of its window's",
        "last rollout).",
        f"Collapsed: the reward averaged over {window} consecutive rollouts "
        f"falls below {COLLAPSE_SHARE:g} x its running peak and",
        "stays there to the end of the run; the step is the first optimizer step of the first window that stays below.",
        "Largest drop = the largest fall of that average below its running peak (instability short of a collapse).",
        "Clip ratio = share of response tokens outside [1-eps, 1+eps] "
        "in the direction of their advantage (where PPO's clip",
        "binds), for both losses. Entropy = mean token entropy of the policy over the first and the last rollout.",
        start_note,
        f"Sweep wall time (runs in parallel, including any embedded-default build): {total_wall:.0f} s.",
        "These are measurements of one seed on a toy task, not a reproduction of the paper's numbers.",
        "",
        "Flags shared by every run: `" + " ".join(flags) + "`",
        "",
    ]
    text = "\n".join(lines)
    (output / "summary.md").write_text(text)
    return text


def main(argv: list[str], prog: str = "openrlhf-cfpo sweep") -> int:
    p = argparse.ArgumentParser(
        prog=prog,
        description=__doc__.splitlines()[0] + " Other flags go to every `local` run.",
        allow_abbrev=False,  # (a prefix such as --out or --iter is a `local` flag's problem, not one of ours)
    )
    p.add_argument("--output", required=True, help="folder for DIR/<loss>_it<K>/, DIR/figure2.png and DIR/summary.md")
    p.add_argument(
        "--iterations",
        default="1,2,4,8,16",
        help="comma-separated iteration counts (optimizer passes over each rollout)",
    )
    p.add_argument(
        "--losses", nargs="+", default=["ppo", "cfpo"], choices=sorted(POLICY_LOSSES), help="policy losses to train"
    )
    p.add_argument("--jobs", type=int, default=max(os.cpu_count() or 1, 1), help="runs trained at once")
    p.add_argument("--window", type=int, default=5, help="rollouts averaged for peak, final and the collapse rule")
    p.add_argument(
        "--smooth", type=float, default=0.8, help="EMA weight for the plotted curves (raw curves shown faint)"
    )
    opts, local_flags = p.parse_known_args(argv)
    if misspelt := misspelt_option(p, local_flags):
        report(prog, ConfigError(misspelt))
        return 2
    t0 = time.time()
    output = Path(opts.output)
    options = [
        smooth_problem("smooth", opts.smooth),
        None if opts.window >= 1 else f"--window must be >= 1, got {opts.window}",
    ]
    options = [p for p in options if p]
    try:
        iterations = parse_iterations(opts.iterations)
        # The chosen embedded default's run flags over ours (its model may need another length or lr), the user's
        # over both.
        layers = layered_settings(local_flags, SWEEP_DEFAULTS)
        options += set_per_run(layers, PER_RUN, prog.split()[-1])
        flags = list(layers.flags)
        if layers.source["train.batch_size"] != "user":
            # One optimizer step per pass: the whole rollout is the batch (and the micro-batch, unless the user or the
            # embedded default gives one).
            # (probed with a batch of 1, which divides any rollout: the batch is what is being decided)
            probe = parse_args(
                flags
                + [
                    "--train.batch_size",
                    "1",
                    "--train.micro_batch_size",
                    "1",
                    "--ckpt.output_dir",
                    str(output / "_probe"),
                ]
            ).args
            rollout = probe.rollout.batch_size * probe.rollout.n_samples_per_prompt
            flags += ["--train.batch_size", str(rollout)]
            if layers.source["train.micro_batch_size"] not in ("embedded", "user"):
                flags += ["--train.micro_batch_size", str(rollout)]
    except ConfigError as e:  # no runs to check without these: reported with the other options' problems
        report(prog, ConfigError(*options, *e.problems))
        return 2
    runs = {
        run_name(loss, k): [*flags, "--train.max_epochs", str(k), "--actor.policy_loss_type", loss]
        for k in iterations
        for loss in opts.losses
    }
    longest_first = [run_name(loss, k) for k in reversed(iterations) for loss in opts.losses]
    with FolderLocks() as locks:  # --output, held until its summary is written
        configs, code = run_all(
            runs, output, opts.jobs, prog, argv, start_order=longest_first, option_problems=options, locks=locks
        )
        if configs is None:
            return code
        a = configs[0].args
        labels = {loss: loss_label(loss, a.algo.advantage.estimator) for loss in opts.losses}
        columns, table = [], []
        for k in iterations:
            curves = []
            for loss in opts.losses:
                run = read_runs([str(output / run_name(loss, k))])[0]
                run.label = labels[loss]
                curves.append(run)
                folder = output / run_name(loss, k)
                table.append(
                    {
                        "iterations": k,
                        "label": labels[loss],
                        "stats": rollout_stats(read_metrics(str(folder / METRICS_FILE)), opts.window),
                        "wall_time_s": json.loads((folder / RUN_SUMMARY).read_text())["wall_time_s"],
                    }
                )
            columns.append((f"{k} iteration{'s' if k != 1 else ''}", curves))
        steps_per_pass = a.rollout.batch_size * a.rollout.n_samples_per_prompt // a.train.batch_size
        model = a.actor.model_name_or_path or f"the embedded {a.embedded_default} default"
        title = (
            f"{' vs '.join(labels.values())} under sample reuse on {model} ({a.algo.advantage.estimator} advantages, "
            "same seed, "
            f"{table[0]['stats']['rollouts']} rollouts, "
            f"{steps_per_pass} step{'s' if steps_per_pass != 1 else ''} per pass)"
        )
        linestyles = {labels[loss]: "--" if loss == "ppo" else "-" for loss in opts.losses}
        plot_grid(columns, ROWS, str(output / "figure2.png"), smooth=opts.smooth, title=title, linestyles=linestyles)
        text = write_summary(output, table, title, flags, opts.window, time.time() - t0, _start_note(configs[0]))
        print(text)
        print(f"wrote {output}/summary.md, {output}/figure2.png and {len(runs)} run folders in {output}/")
        return 0


def _start_note(cfg) -> str:
    """What the starting policy gets right, when an embedded default's policy is trained: measured at its build."""
    a = cfg.args
    if a.actor.model_name_or_path is not None:
        return ""
    default = embedded.get(a.embedded_default)
    done = default.done(default.cached(log=lambda m: None).build_info)
    return f"Starting policy: {done} (measured when the embedded default was built)."
