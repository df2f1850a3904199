"""Trained tokens per second: this engine vs TRL's GRPOTrainer, same tiny model, prompts and schedule.

Both train the embedded default policy against the embedded reward model, in this one process,
one after the other, with the same settings: 16 prompts x 4 samples per rollout, 16 samples per
optimizer step, 2 passes per rollout (8 optimizer steps per rollout), 24 new tokens at
temperature 1, a KL-to-reference coefficient of 0.01, the same number of optimizer steps and the
same torch thread count. "Trained tokens" = response tokens in the optimizer steps' batches
(each step's mean response length x samples per step), read from each trainer's own logs.
Target: this engine >= 1.5x TRL.

TRL is a benchmark-only dependency (``pip install trl==1.16.0``, the release that supports
transformers 5.15).

    python benchmarks/bench_local_throughput.py [--steps 48] [--threads 1]
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


def run_engine(assets, steps: int, threads: int, out: str):
    from openrlhf_cfpo.local.config import parse_args
    from openrlhf_cfpo.local.logger import read_metrics
    from openrlhf_cfpo.local.trainer import LocalTrainer

    rollouts = steps // (PROMPTS * SAMPLES // STEP_BATCH * EPOCHS)
    cfg = parse_args([
        "--actor.model_name_or_path", assets.policy, "--reward.model_name_or_path", assets.reward,
        "--data.prompt_dataset", assets.prompts, "--data.max_samples", str(rollouts * PROMPTS),
        "--rollout.batch_size", str(PROMPTS), "--rollout.n_samples_per_prompt", str(SAMPLES),
        "--rollout.max_new_tokens", str(NEW_TOKENS), "--train.batch_size", str(STEP_BATCH),
        "--train.micro_batch_size", str(STEP_BATCH), "--train.max_epochs", str(EPOCHS), "--algo.kl.init_coef", str(KL),
        "--actor.adam.lr", "1e-5", "--ckpt.output_dir", out, "--ckpt.save_steps", "-1", "--logger.progress", "none",
        "--num_threads", str(threads),
    ])
    trainer = LocalTrainer(cfg, log=lambda m: None)
    t0 = time.perf_counter()
    trainer.fit()
    elapsed = time.perf_counter() - t0
    rows = read_metrics(os.path.join(out, "metrics.jsonl"))
    tokens = sum(r["response_length"] * STEP_BATCH for r in rows)
    return len(rows), tokens, elapsed


def run_trl(assets, steps: int, threads: int, out: str):
    import datasets
    from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification, AutoTokenizer, TrainerCallback
    from trl import GRPOConfig, GRPOTrainer

    torch.set_num_threads(threads)
    prompts = [json.loads(line)["input"] for line in open(assets.prompts)]
    rollouts = steps // (PROMPTS * SAMPLES // STEP_BATCH * EPOCHS)
    dataset = datasets.Dataset.from_dict({"prompt": prompts[: rollouts * PROMPTS]})
    tok = AutoTokenizer.from_pretrained(assets.policy)
    lengths = []

    class Lengths(TrainerCallback):
        def on_log(self, args, state, control, logs=None, **kw):
            if logs and "completions/mean_length" in logs:
                lengths.append(logs["completions/mean_length"])

    config = GRPOConfig(
        output_dir=out, per_device_train_batch_size=STEP_BATCH, num_generations=SAMPLES,
        steps_per_generation=PROMPTS * SAMPLES // STEP_BATCH, num_iterations=EPOCHS, max_completion_length=NEW_TOKENS,
        temperature=1.0, top_k=0, beta=KL, learning_rate=1e-5, max_steps=steps, logging_steps=1, save_strategy="no",
        report_to="none", use_cpu=True, bf16=False, seed=42, dataloader_num_workers=0, disable_tqdm=True,
        log_level="error",
    )
    trainer = GRPOTrainer(
        model=AutoModelForCausalLM.from_pretrained(assets.policy), args=config, train_dataset=dataset, processing_class=tok,
        reward_funcs=AutoModelForSequenceClassification.from_pretrained(assets.reward), reward_processing_classes=tok,
        callbacks=[Lengths()],
    )
    t0 = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):  # Trainer prints every step's log dict
        trainer.train()
    elapsed = time.perf_counter() - t0
    # TRL logs the completion length once per generation; each generation's samples are then
    # trained on for steps_per_generation x num_iterations optimizer steps.
    steps_per_rollout = PROMPTS * SAMPLES // STEP_BATCH * EPOCHS
    return trainer.state.global_step, sum(m * STEP_BATCH * steps_per_rollout for m in lengths), elapsed


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=48, help="optimizer steps per trainer (a multiple of 8)")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads for both trainers")
    p.add_argument("--repeats", type=int, default=3, help="interleaved runs of each; the median run is reported")
    a = p.parse_args()
    from openrlhf_cfpo.local.assets import default_assets

    assets = default_assets()
    with tempfile.TemporaryDirectory() as tmp:
        # One short run of each first: lazy initialisation (kernels, imports) is not throughput.
        run_engine(assets, 8, a.threads, os.path.join(tmp, "engine_warmup"))
        run_trl(assets, 8, a.threads, os.path.join(tmp, "trl_warmup"))
        engine, trl = [], []
        for i in range(a.repeats):  # interleaved, so that machine noise hits both alike
            engine.append(run_engine(assets, a.steps, a.threads, os.path.join(tmp, f"engine{i}")))
            trl.append(run_trl(assets, a.steps, a.threads, os.path.join(tmp, f"trl{i}")))

    def median_run(runs):  # by throughput
        return sorted(runs, key=lambda r: r[1] / r[2])[len(runs) // 2]

    (e_steps, e_tokens, e_time), (t_steps, t_tokens, t_time) = median_run(engine), median_run(trl)
    e_tps, t_tps = e_tokens / e_time, t_tokens / t_time
    print(f"same model, prompts, {PROMPTS}x{SAMPLES} samples per rollout, {STEP_BATCH} per step, {EPOCHS} epochs, "
          f"{a.threads} thread(s), CPU, median of {a.repeats} interleaved runs")
    print(f"  openrlhf-cfpo local : {e_steps} steps, {e_tokens:.0f} trained tokens in {e_time:6.1f} s -> {e_tps:8.1f} tokens/s")
    print(f"  TRL GRPOTrainer     : {t_steps} steps, {t_tokens:.0f} trained tokens in {t_time:6.1f} s -> {t_tps:8.1f} tokens/s")
    ratio = e_tps / t_tps
    print(f"throughput ratio engine/TRL = {ratio:.2f}x (target >= 1.5x): {'PASS' if ratio >= 1.5 else 'FAIL'}; "
          f"wall-time ratio for the same steps = {t_time / e_time:.2f}x")


if __name__ == "__main__":
    main()
