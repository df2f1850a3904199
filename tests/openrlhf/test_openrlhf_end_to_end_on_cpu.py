"""The whole loop, ``python -m openrlhf_cfpo.cli.train_ppo_ray``, end to end on CPU at tiny scale.

OpenRLHF 0.11.2's own driver, Ray actors and trainer run unchanged: Ray declares 4 GPUs it does not
have (``RAY_OVERRIDE_RESOURCES``), one per OpenRLHF actor group (policy, reference, reward, rollout
engine); DeepSpeed runs ZeRO 2 on its CPU accelerator; OpenRLHF's own rollout actor runs on
``tests/stubs/vllm/cpu_engine.py`` (Hugging Face generation) and syncs the policy's weights into it
after every rollout over gloo. Every process gets ``tests/stubs/openrlhf_on_cpu.py`` through
``tests/stubs/openrlhf_cpu_site/sitecustomize.py``. 8 prompts x 2 samples, 4 per rollout: 2 rollouts
of 2 optimizer steps (2 micro-batches each), for cfpo and for ppo.
"""
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import pytest
import torch

pytest.importorskip("openrlhf.trainer.ray", reason="needs the openrlhf extra")

STUBS = Path(__file__).resolve().parents[1] / "stubs"
ROLLOUTS = 2
METRICS = ("ppo_clip_ratio", "ppo_kl", "ratio_dev_mean", "ratio_outside_region")  # cfpo adds cfpo_penalty
FRACTIONS = ("ppo_clip_ratio", "ratio_outside_region")


def flags(loss, policy, reward, prompts, out: Path):
    return [
        "--actor.model_name_or_path", policy, "--reward.model_name_or_path", reward,
        "--data.prompt_dataset", prompts, "--data.input_key", "input",
        "--data.max_len", "24", "--rollout.max_new_tokens", "8",
        "--rollout.batch_size", "4", "--rollout.n_samples_per_prompt", "2", "--rollout.micro_batch_size", "4",
        "--train.batch_size", "4", "--train.micro_batch_size", "2",
        "--algo.advantage.estimator", "rloo", "--algo.kl.init_coef", "0.01",
        "--actor.policy_loss_type", loss,
        "--actor.num_gpus_per_node", "1", "--ref.num_gpus_per_node", "1", "--reward.num_gpus_per_node", "1",
        "--vllm.num_engines", "1", "--vllm.sync_backend", "gloo",
        "--ds.zero_stage", "2", "--ds.param_dtype", "bf16", "--ds.attn_implementation", "sdpa",
        "--actor.adam.lr", "1e-3", "--actor.lr_warmup_ratio", "0",
        "--ckpt.output_dir", str(out / "final"), "--ckpt.path", str(out / "ckpt"),
        "--logger.tensorboard_dir", str(out / "tensorboard"),
    ]


@pytest.fixture(scope="module", params=["cfpo", "ppo"])
def run(request, tiny_openrlhf_models, tmp_path_factory):
    loss = request.param
    policy, reward, prompts = tiny_openrlhf_models
    out = tmp_path_factory.mktemp(f"openrlhf_{loss}")
    # A local Ray of its own, its session (and worker logs) in a short path: Ray's unix sockets live there.
    ray_tmp = tempfile.mkdtemp(prefix="ray-", dir="/tmp")
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    env.update(
        RAY_TMPDIR=ray_tmp,
        PYTHONPATH=os.pathsep.join([str(STUBS / "openrlhf_cpu_site"), str(STUBS), env.get("PYTHONPATH", "")]),
        DS_ACCELERATOR="cpu",
        RAY_OVERRIDE_RESOURCES='{"CPU": 8, "GPU": 4}',
        TORCH_EXTENSIONS_DIR=str(out / "torch_extensions"),
    )
    cmd = [sys.executable, "-m", "openrlhf_cfpo.cli.train_ppo_ray", *flags(loss, policy, reward, prompts, out)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
                            start_new_session=True)
    log_dir = Path(ray_tmp, "ray", "session_latest", "logs")
    try:
        try:
            output, _ = proc.communicate(timeout=480)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            output = proc.communicate()[0] + "\n[killed: ran past 480 s]"
        logs = worker_logs(log_dir)
    finally:
        end_workers(log_dir)
        shutil.rmtree(ray_tmp, ignore_errors=True)
    assert proc.returncode == 0, output[-8000:]
    extensions = out / "torch_extensions"  # CI starts cold: nothing may be compiled on first use
    assert not extensions.exists() or not any(extensions.iterdir()), sorted(p.name for p in extensions.iterdir())
    return {"loss": loss, "logs": logs, "out": out, "policy": policy}


def end_workers(log_dir: Path, timeout: float = 30) -> None:
    """Ray's workers outlive the driver by several seconds of CPU: end those of this run (by the pids
    in their log names, if still Ray workers) so they do not slow the next test down."""
    pids = [int(path.stem.rsplit("-", 1)[1]) for path in log_dir.glob("worker-*.out")]
    pids = [pid for pid in pids if ray_worker_running(pid)]
    for pid in pids:
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    deadline = time.time() + timeout
    while time.time() < deadline and any(map(ray_worker_running, pids)):
        time.sleep(0.2)


def ray_worker_running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        command = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (OSError, IndexError):
        return False
    return state != "Z" and command.startswith(b"ray::")  # a zombie has exited (a container may never reap it)


def worker_logs(log_dir: Path):
    """What each Ray actor printed, by actor class (Ray heads a worker's log with ``:actor_name:NAME``)."""
    logs = defaultdict(str)
    for path in log_dir.glob("worker-*.out"):
        text = path.read_text(errors="replace")
        name = re.search(r"^:actor_name:(\w+)$", text, re.M)
        logs[name.group(1) if name else "task"] += text
    return logs


def scalars(tensorboard_dir: Path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    (run_dir,) = tensorboard_dir.iterdir()  # OpenRLHF writes to <dir>/<wandb run name>
    events = EventAccumulator(str(run_dir))
    events.Reload()
    return {tag: {e.step: e.value for e in events.Scalars(tag)} for tag in events.Tags()["scalars"]}


def test_the_policy_worker_and_only_it_announces_our_loss(run):
    announcement = f"[openrlhf-cfpo] {run['loss'].upper()} policy loss active"
    assert {actor: text.count(announcement) for actor, text in run["logs"].items() if announcement in text} == {
        "PolicyModelActor": 1
    }


def test_openrlhfs_tensorboard_log_holds_our_metrics_for_every_rollout(run):
    logged = scalars(run["out"] / "tensorboard")
    for name in METRICS + (("cfpo_penalty",) if run["loss"] == "cfpo" else ()):
        values = logged.get(f"train/{name}")
        assert values is not None and sorted(values) == list(range(1, ROLLOUTS + 1)), (name, sorted(logged))
        assert all(math.isfinite(v) for v in values.values()), (name, values)
    if run["loss"] == "ppo":
        assert "train/cfpo_penalty" not in logged
    for name in FRACTIONS:
        assert all(0 <= v <= 1 for v in logged[f"train/{name}"].values()), name
    # the second optimizer step of each rollout trains on samples of the policy before the first
    assert all(v > 1e-3 for v in logged["train/ratio_dev_mean"].values())
    if run["loss"] == "cfpo":
        assert all(v > 0 for v in logged["train/cfpo_penalty"].values())


def test_the_trained_policy_is_saved_as_a_hugging_face_checkpoint(run):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    saved = AutoModelForCausalLM.from_pretrained(run["out"] / "final")
    initial = AutoModelForCausalLM.from_pretrained(run["policy"])
    AutoTokenizer.from_pretrained(run["out"] / "final")
    before, after = initial.state_dict(), saved.state_dict()
    assert before.keys() == after.keys()
    # OpenRLHF trains (and saves) bf16 weights: an untrained weight is the bf16 cast of the initial one
    matrices = [name for name, w in before.items() if w.dim() == 2]
    assert matrices and all(not torch.equal(before[n].bfloat16(), after[n].bfloat16()) for n in matrices)


def test_the_rollout_engine_receives_every_policy_weight_after_every_rollout(run):
    from transformers import AutoModelForCausalLM

    engine_log = run["logs"]["RolloutRayActor"]
    received = [int(n) for n in re.findall(r"\[vllm-cpu-stand-in\] pid \d+: received (\d+) policy weights", engine_log)]
    n_weights = len(list(AutoModelForCausalLM.from_pretrained(run["policy"]).parameters()))
    assert received == [n_weights] * ROLLOUTS


def test_openrlhf_cfpo_eval_evaluates_the_saved_checkpoint(run, tmp_path):
    import json
    import subprocess
    import sys

    import pyarrow as pa
    import pyarrow.parquet as pq

    # GSM8K in its official layout, offline: two problems, answers after "####"
    data = tmp_path / "data" / "openai/gsm8k/main/test-00000-of-00001.parquet"
    data.parent.mkdir(parents=True)
    pq.write_table(pa.Table.from_pylist([{"question": "What is 2 + 3?", "answer": "2 + 3 = 5\n#### 5"},
                                         {"question": "What is 4 * 2?", "answer": "4 * 2 = 8\n#### 8"}]), data)
    out = tmp_path / "eval"
    proc = subprocess.run(
        [sys.executable, "-m", "openrlhf_cfpo.cli.main", "eval", "gsm8k", "--model", str(run["out"] / "final"),
         "--output", str(out), "--data-dir", str(tmp_path / "data"), "--max-new-tokens", "4", "--system-prompt", "none"],
        capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads((out / "gsm8k" / "results.json").read_text())
    assert results["n_problems"] == 2 and 0.0 <= results["pass_at_1"] <= 1.0
