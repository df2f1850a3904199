"""Trained tokens per second at steady state: this engine vs TRL's GRPOTrainer, same tiny model, prompts and schedule.

Both train the embedded default policy against the embedded reward model, in this one process,
with the same settings: 16 prompts x 4 samples per rollout, 16 samples per optimizer step, 2
passes per rollout (8 optimizer steps per rollout), 24 new tokens at temperature 1, a KL-to-reference
coefficient of 0.01, the same number of optimizer steps and the same torch thread count.
"Trained tokens" = response tokens in the optimizer steps' batches (each step's mean response length
x samples per step), read from each trainer's own logs; the clock runs from the first step to the
last, model loading and set-up excluded.

Steady state: the step count is calibrated so that every run lasts at least ``--min_seconds`` (20 s),
and one-off costs (imports, lazy initialisation, the first rollout) cannot decide the ratio. The
workload is stationary too: at the default ``--lr 1e-9`` the policy does not move, so both trainers
process the same response-length distribution for the whole run (at ``--lr 1e-5`` responses grow as
the reward model pays for length, each trainer's at its own pace, and tokens/s then also measures
whose responses grew longer: the wall-time ratio for the same steps is printed next to it). Runs
alternate engine, TRL, engine, TRL ... so that load from other processes on a shared machine hits
both alike; the ratio of each adjacent pair is printed, and their median with its spread.
Target: this engine >= 1.5x TRL.

TRL is a benchmark-only dependency (``pip install trl==1.16.0``, the release that supports
transformers 5.15).

    python benchmarks/bench_local_throughput.py [--min_seconds 20] [--repeats 5] [--threads 1] [--lr 1e-9]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import tempfile
import time

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("WANDB_MODE", "disabled")

import torch

PROMPTS, SAMPLES, STEP_BATCH, EPOCHS, NEW_TOKENS, KL = 16, 4, 16, 2, 24, 0.01


def _prompt_file(assets, n: int, folder: str) -> str:
    """``n`` prompts (the embedded default's, cycled) in one file both trainers read, so they see the same prompts."""
    prompts = [json.loads(line)["input"] for line in open(assets.prompts)]
    path = os.path.join(folder, f"prompts_{n}.jsonl")
    with open(path, "w") as f:
        for i in range(n):
            f.write(json.dumps({"input": prompts[i % len(prompts)]}) + "\n")
    return path


def run_engine(assets, steps: int, threads: int, out: str, prompts: str, lr: float = 1e-9):
    from openrlhf_cfpo.local.config import parse_args
    from openrlhf_cfpo.local.logger import read_metrics
    from openrlhf_cfpo.local.trainer import LocalTrainer

    rollouts = steps // (PROMPTS * SAMPLES // STEP_BATCH * EPOCHS)
    cfg = parse_args(
        [
            "--actor.model_name_or_path",
            assets.policy,
            "--reward.model_name_or_path",
            assets.reward,
            "--data.prompt_dataset",
            prompts,
            "--data.max_samples",
            str(rollouts * PROMPTS),
            "--rollout.batch_size",
            str(PROMPTS),
            "--rollout.n_samples_per_prompt",
            str(SAMPLES),
            "--rollout.max_new_tokens",
            str(NEW_TOKENS),
            "--train.batch_size",
            str(STEP_BATCH),
            "--train.micro_batch_size",
            str(STEP_BATCH),
            "--train.max_epochs",
            str(EPOCHS),
            "--algo.kl.init_coef",
            str(KL),
            "--actor.adam.lr",
            str(lr),
            "--ckpt.output_dir",
            out,
            "--ckpt.save_steps",
            "-1",
            "--logger.progress",
            "none",
            "--num_threads",
            str(threads),
        ]
    )
    trainer = LocalTrainer(cfg, log=lambda m: None)
    t0 = time.perf_counter()
    trainer.fit()
    elapsed = time.perf_counter() - t0
    rows = read_metrics(os.path.join(out, "metrics.jsonl"))
    tokens = sum(r["response_length"] * STEP_BATCH for r in rows)
    return len(rows), tokens, elapsed


def run_trl(assets, steps: int, threads: int, out: str, prompts: str, lr: float = 1e-9):
    import datasets
    from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification, AutoTokenizer, TrainerCallback
    from trl import GRPOConfig, GRPOTrainer

    torch.set_num_threads(threads)
    rollouts = steps // (PROMPTS * SAMPLES // STEP_BATCH * EPOCHS)
    texts = [json.loads(line)["input"] for line in open(prompts)]
    dataset = datasets.Dataset.from_dict({"prompt": texts[: rollouts * PROMPTS]})
    tok = AutoTokenizer.from_pretrained(assets.policy)
    lengths = []
    start = []

    class Lengths(TrainerCallback):
        def on_train_begin(self, args, state, control, **kw):
            start.append(time.perf_counter())

        def on_log(self, args, state, control, logs=None, **kw):
            if logs and "completions/mean_length" in logs:
                lengths.append(logs["completions/mean_length"])

    config = GRPOConfig(
        output_dir=out,
        per_device_train_batch_size=STEP_BATCH,
        num_generations=SAMPLES,
        steps_per_generation=PROMPTS * SAMPLES // STEP_BATCH,
        num_iterations=EPOCHS,
        max_completion_length=NEW_TOKENS,
        temperature=1.0,
        top_k=0,
        beta=KL,
        learning_rate=lr,
        max_steps=steps,
        logging_steps=1,
        save_strategy="no",
        report_to="none",
        use_cpu=True,
        bf16=False,
        seed=42,
        dataloader_num_workers=0,
        disable_tqdm=True,
        log_level="error",
    )
    trainer = GRPOTrainer(
        model=AutoModelForCausalLM.from_pretrained(assets.policy),
        args=config,
        train_dataset=dataset,
        processing_class=tok,
        reward_funcs=AutoModelForSequenceClassification.from_pretrained(assets.reward),
        reward_processing_classes=tok,
        callbacks=[Lengths()],
    )
    with contextlib.redirect_stdout(io.StringIO()):  # Trainer prints every step's log dict
        trainer.train()
    elapsed = time.perf_counter() - start[0]  # from on_train_begin: Trainer's own set-up is not throughput
    # TRL logs the completion length once per generation; each generation's samples are then
    # trained on for steps_per_generation x num_iterations optimizer steps.
    steps_per_rollout = PROMPTS * SAMPLES // STEP_BATCH * EPOCHS
    return trainer.state.global_step, sum(m * STEP_BATCH * steps_per_rollout for m in lengths), elapsed


def _median(xs):
    xs = sorted(xs)
    n = len(xs)
    return xs[n // 2] if n % 2 else (xs[n // 2 - 1] + xs[n // 2]) / 2


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--min_seconds", type=float, default=20.0, help="each run lasts at least this long (steady state)")
    p.add_argument(
        "--steps", type=int, default=None, help="optimizer steps per run (a multiple of 8); default: calibrated"
    )
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads for both trainers")
    p.add_argument("--repeats", type=int, default=5, help="interleaved engine/TRL pairs; the median is reported")
    p.add_argument(
        "--lr",
        type=float,
        default=1e-9,
        help="learning rate of both; at 1e-5 responses grow over a run (the reward model pays for length) and each "
        "trainer's at its own pace, at 1e-9 the policy stays put and both process the same token distribution",
    )
    a = p.parse_args()
    from openrlhf_cfpo.local import embedded

    assets = embedded.get("chat").cached()
    per_rollout = PROMPTS * SAMPLES // STEP_BATCH * EPOCHS
    with tempfile.TemporaryDirectory() as tmp:
        small = _prompt_file(assets, 8 * PROMPTS, tmp)
        # One short run of each first: lazy initialisation (kernels, imports) is not throughput.
        run_engine(assets, 8, a.threads, os.path.join(tmp, "engine_warmup"), small)
        run_trl(assets, 8, a.threads, os.path.join(tmp, "trl_warmup"), small)
        steps = a.steps
        if steps is None:
            # Calibrate on the faster trainer (this one) with margin, so that a quieter machine still gives
            # >= min_seconds.
            _, _, t = run_engine(assets, 64, a.threads, os.path.join(tmp, "engine_calibration"), small)
            steps = max(int(1.5 * a.min_seconds / (t / 64)) // per_rollout + 1, 1) * per_rollout
        prompts = _prompt_file(assets, steps // per_rollout * PROMPTS, tmp)
        print(
            f"{steps} optimizer steps per run ({steps // per_rollout} rollouts), "
            f"{a.repeats} interleaved engine/TRL pairs, {a.threads} thread(s), CPU",
            flush=True,
        )
        engine, trl = [], []
        for i in range(a.repeats):
            engine.append(run_engine(assets, steps, a.threads, os.path.join(tmp, f"engine{i}"), prompts, a.lr))
            trl.append(run_trl(assets, steps, a.threads, os.path.join(tmp, f"trl{i}"), prompts, a.lr))
            (es, et, ee), (ts, tt, te) = engine[-1], trl[-1]
            print(
                f"  pair {i + 1}: engine {et / ee:7.1f} tokens/s "
                f"({ee:5.1f} s, {et / es / STEP_BATCH:4.1f} tokens per response), "
                f"TRL {tt / te:7.1f} tokens/s ({te:5.1f} s, {tt / ts / STEP_BATCH:4.1f}) "
                f"-> {(et / ee) / (tt / te):.2f}x",
                flush=True,
            )

    short = [r[2] for r in engine + trl if r[2] < a.min_seconds]
    e_tps = [t / e for _, t, e in engine]
    t_tps = [t / e for _, t, e in trl]
    ratios = [x / y for x, y in zip(e_tps, t_tps)]
    ratio = _median(ratios)
    print(
        f"same model, prompts, {PROMPTS}x{SAMPLES} samples per rollout, {STEP_BATCH} per step, {EPOCHS} epochs, "
        f"{steps} steps, lr {a.lr:g}"
    )
    print(
        f"  openrlhf-cfpo local : median {_median(e_tps):8.1f} tokens/s (runs {min(e_tps):.0f}-{max(e_tps):.0f}), "
        f"mean response {sum(t for _, t, _ in engine) / len(engine) / steps / STEP_BATCH:.1f} tokens"
    )
    print(
        f"  TRL GRPOTrainer     : median {_median(t_tps):8.1f} tokens/s (runs {min(t_tps):.0f}-{max(t_tps):.0f}), "
        f"mean response {sum(t for _, t, _ in trl) / len(trl) / steps / STEP_BATCH:.1f} tokens"
    )
    if short:
        print(f"  note: {len(short)} run(s) lasted under {a.min_seconds:g} s (the machine got faster than calibrated)")
    walls = [t[2] / e[2] for e, t in zip(engine, trl)]
    print(
        f"throughput ratio engine/TRL = {ratio:.2f}x (median of {len(ratios)} pairs; pairs "
        f"{min(ratios):.2f}-{max(ratios):.2f}x) "
        f"(target >= 1.5x): {'PASS' if ratio >= 1.5 else 'FAIL'}"
    )
    print(
        f"wall-time ratio TRL/engine for the same {steps} steps = {_median(walls):.2f}x (pairs "
        f"{min(walls):.2f}-{max(walls):.2f}x)"
    )


if __name__ == "__main__":
    main()
