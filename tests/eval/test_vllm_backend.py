"""The vLLM backend on the vLLM stand-in (tests/stubs/vllm): how vLLM is started and fed, and how answers are saved.

What runs on a GPU (vLLM's own engine) is not here; what we hand it and what we do with its outputs is.
"""
import json

import pytest
import vllm

from openrlhf_cfpo.eval import generation
from openrlhf_cfpo.eval.decoding import Decoding
from openrlhf_cfpo.eval.generation import Item, VLLMBackend, generate_resumable
from openrlhf_cfpo.eval.store import JsonlStore

DEC = Decoding(max_new_tokens=5, temperature=0.6, top_p=0.95)


class Killed(Exception):
    pass


@pytest.fixture
def gpus(monkeypatch):
    """A machine with GPUs, as NVML counts them; CUDA itself must never be touched in this process."""
    import torch

    def no_cuda():
        raise AssertionError("torch.cuda.is_available() initialises CUDA in the parent, so a forked vLLM child could not use it")

    monkeypatch.setattr(torch.cuda, "is_available", no_cuda)
    monkeypatch.delenv("VLLM_WORKER_MULTIPROC_METHOD", raising=False)
    monkeypatch.setattr(vllm.LLM, "made", [])

    def visible(n):
        monkeypatch.setattr(torch.cuda, "device_count", lambda: n)

    visible(1)
    return visible


def _items(n, turns=1):
    return [Item(f"q{i}", [f"hello {'the ' * i}cat" + (f" turn {t}" if t else "") for t in range(turns)], DEC) for i in range(n)]


def test_vllm_is_found_without_initialising_cuda(gpus):
    assert generation.vllm_usable() is True
    gpus(0)
    assert generation.vllm_usable() is False


def test_eval_starts_vllm_with_spawn_and_the_tensor_parallel_size(cli, gpus, tiny_model, fixture_data, tmp_path, monkeypatch):
    gpus(2)
    assert cli("ifeval", "--model", tiny_model, "--output", tmp_path / "run", "--data-dir", fixture_data,
               "--tensor-parallel-size", 2, "--seed", 3) == 0
    (llm,) = vllm.LLM.made
    assert llm.multiproc_method == "spawn"
    assert llm.model == tiny_model and llm.kwargs["tensor_parallel_size"] == 2 and llm.kwargs["seed"] == 3
    answers = [json.loads(line) for line in (tmp_path / "run/ifeval/answers.jsonl").read_text().splitlines()]
    assert len(answers) == 4 and all(a["generator"] == "vllm" for a in answers)


def test_a_tensor_parallel_size_beyond_the_visible_gpus_or_without_vllm_is_one_line_each(cli, gpus, tiny_model, fixture_data, tmp_path, capsys):
    gpus(2)
    args = ("ifeval", "--model", tiny_model, "--output", tmp_path / "run", "--data-dir", fixture_data, "--tensor-parallel-size", 4)
    assert cli(*args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--tensor-parallel-size 4 but 2 GPU(s)" in err[0]
    assert cli(*args[:-1], 2, "--backend", "hf") == 2
    assert "needs the vLLM backend" in capsys.readouterr().err
    assert vllm.LLM.made == []


def test_every_pending_prompt_goes_to_vllm_at_once_and_each_answer_is_saved_as_it_finishes(gpus, tiny_model, tmp_path, monkeypatch):
    backend = VLLMBackend(tiny_model)
    engine = backend.llm.llm_engine
    store = JsonlStore(tmp_path / "answers.jsonl")
    saved_at = []
    append = JsonlStore.append
    monkeypatch.setattr(JsonlStore, "append", _recording(append, lambda recs: saved_at.append((engine.steps, len(recs)))))
    out = generate_resumable(_items(7), store, lambda: backend, chunk_size=2, log=lambda m: None)
    assert [step for *_, step in engine.added] == [0] * 7  # all seven before the engine's first step
    assert saved_at == [(s, 1) for s in range(1, 8)]  # one record per engine step, at once
    for it in _items(7):  # the stand-in names the prompt it answered: each answer is filed under its own item
        n = len(generation.prompt_token_ids(backend.tokenizer, generation.conversation(it, [])))
        assert out[it.id]["turns"] == [f"answer to {n} tokens with seed 0"]


def _recording(append, note):
    def wrapped(self, records):
        records = list(records)
        note(records)
        append(self, records)
    return wrapped


def test_a_killed_vllm_run_resumes_with_only_the_unanswered_prompts(gpus, tiny_model, tmp_path, monkeypatch):
    store = JsonlStore(tmp_path / "answers.jsonl")
    append, calls = JsonlStore.append, []

    def dying(self, records):
        if len(calls) == 3:
            raise Killed()
        calls.append(1)
        append(self, records)

    monkeypatch.setattr(JsonlStore, "append", dying)
    with pytest.raises(Killed):
        generate_resumable(_items(7), store, lambda: VLLMBackend(tiny_model), log=lambda m: None)
    monkeypatch.setattr(JsonlStore, "append", append)
    assert len(store.load()) == 3
    again = VLLMBackend(tiny_model)
    out = generate_resumable(_items(7), store, lambda: again, log=lambda m: None)
    assert len(again.llm.llm_engine.added) == 4 and len(out) == 7


def test_a_second_turn_is_asked_as_soon_as_its_first_is_answered_and_sees_it(gpus, tiny_model, tmp_path):
    backend = VLLMBackend(tiny_model)
    out = generate_resumable(_items(3, turns=2), JsonlStore(tmp_path / "a.jsonl"), lambda: backend, log=lambda m: None)
    added = backend.llm.llm_engine.added
    # The stand-in finishes the latest request first: each follow-up is asked right after its first turn is answered
    # (steps 1, 3, 5), while the other first turns are still in the engine.
    assert [step for *_, step in added[:3]] == [0, 0, 0] and [step for *_, step in added[3:]] == [1, 3, 5]
    for it in _items(3, turns=2):
        first, second = out[it.id]["turns"]
        conv = generation.conversation(it, [first])
        assert conv[-2] == {"role": "assistant", "content": first}
        assert second == f"answer to {len(generation.prompt_token_ids(backend.tokenizer, conv))} tokens with seed 0"


def test_each_request_carries_its_own_sampling_settings(gpus, tiny_model, tmp_path):
    from vllm.sampling_params import RequestOutputKind

    backend = VLLMBackend(tiny_model, seed=5)
    items = [Item("a", ["hello"], DEC), Item("b", ["cat"], Decoding(max_new_tokens=9, seed=11))]
    generate_resumable(items, JsonlStore(tmp_path / "a.jsonl"), lambda: backend, log=lambda m: None)
    (_, _, a, _), (_, _, b, _) = backend.llm.llm_engine.added
    assert (a.temperature, a.top_p, a.max_tokens, a.seed) == (0.6, 0.95, 5, 5)
    assert (b.temperature, b.top_p, b.max_tokens, b.seed) == (0.0, 1.0, 9, 11)
    assert a.output_kind == b.output_kind == RequestOutputKind.FINAL_ONLY
