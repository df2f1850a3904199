"""Answer generation with the model's own chat template: vLLM on a GPU, else batched Hugging Face generate.

`generate_resumable` writes each finished item to `answers.jsonl` before starting the next batch, so a
killed run resumes where it stopped and never regenerates a finished item.
"""
from __future__ import annotations

import importlib.util
import time
from dataclasses import dataclass, field
from itertools import groupby
from typing import Callable, Optional, Protocol, Sequence

from .decoding import Decoding
from .errors import EvalError
from .store import JsonlStore

Conversation = list[dict]


class Backend(Protocol):
    name: str

    def generate(self, conversations: Sequence[Conversation], decoding: Decoding) -> list[str]: ...


def vllm_usable() -> bool:
    """vLLM only helps with a GPU; a CPU machine (or an importable stub) gets Hugging Face generation."""
    if importlib.util.find_spec("vllm") is None:
        return False
    import torch

    return torch.cuda.is_available()


class HFBackend:
    name = "hf"

    def __init__(self, model: str, batch_size: int = 8, dtype: str = "auto", seed: int = 0, revision: Optional[str] = None):
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        try:
            self.tokenizer = AutoTokenizer.from_pretrained(model, revision=revision)
        except (OSError, ValueError) as e:
            raise EvalError(f"cannot load a tokenizer from --model {model} ({e}); pass a Hugging Face model folder or hub name") from None
        if not self.tokenizer.chat_template:
            raise EvalError(f"--model {model} has no chat template in its tokenizer config; save the tokenizer with one")
        # Left padding keeps every prompt's last token next to the generated ones in a batch.
        self.tokenizer.padding_side = "left"
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        device = "cuda" if torch.cuda.is_available() else "cpu"
        self.model = AutoModelForCausalLM.from_pretrained(model, dtype=dtype, revision=revision).to(device).eval()
        self.device = device
        self.batch_size = batch_size
        self.seed = seed

    def render(self, conversation: Conversation) -> str:
        return self.tokenizer.apply_chat_template(conversation, tokenize=False, add_generation_prompt=True)

    def generate(self, conversations, decoding):
        import torch

        texts = [self.render(c) for c in conversations]
        # Sorting by length packs similar prompts together, so batches carry little padding.
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        out: list[Optional[str]] = [None] * len(texts)
        # A per-request seed (one per sample of a multi-sample benchmark) keeps the samples distinct.
        torch.manual_seed(self.seed if decoding.seed is None else decoding.seed)
        for start in range(0, len(order), self.batch_size):
            idx = order[start : start + self.batch_size]
            # The chat template already places BOS and other special tokens.
            enc = self.tokenizer([texts[i] for i in idx], return_tensors="pt", padding=True, add_special_tokens=False)
            enc = enc.to(self.device)
            kwargs = dict(max_new_tokens=decoding.max_new_tokens, pad_token_id=self.tokenizer.pad_token_id)
            if decoding.greedy:
                kwargs.update(do_sample=False)
            else:
                kwargs.update(do_sample=True, temperature=decoding.temperature, top_p=decoding.top_p)
            with torch.no_grad():
                gen = self.model.generate(**enc, **kwargs)
            new = gen[:, enc["input_ids"].shape[1] :]
            for i, row in zip(idx, new):
                out[i] = self.tokenizer.decode(row, skip_special_tokens=True).strip()
        return out


class VLLMBackend:
    name = "vllm"

    def __init__(self, model: str, dtype: str = "auto", seed: int = 0, revision: Optional[str] = None):
        from vllm import LLM

        self.llm = LLM(model=model, dtype=dtype, seed=seed, revision=revision)
        self.seed = seed

    def generate(self, conversations, decoding):
        from vllm import SamplingParams

        params = SamplingParams(
            max_tokens=decoding.max_new_tokens,
            temperature=0.0 if decoding.greedy else decoding.temperature,
            top_p=1.0 if decoding.greedy else decoding.top_p,
            seed=self.seed if decoding.seed is None else decoding.seed,
        )
        outputs = self.llm.chat(list(conversations), params, use_tqdm=False)
        return [o.outputs[0].text.strip() for o in outputs]


def backend_problem(backend: str) -> Optional[str]:
    if backend == "vllm" and not vllm_usable():
        return "--backend vllm needs vllm installed and a CUDA GPU; use --backend hf on this machine"
    return None


def make_backend(model: str, backend: str = "auto", batch_size: int = 8, dtype: str = "auto", seed: int = 0,
                 revision: Optional[str] = None) -> Backend:
    if backend == "vllm" or (backend == "auto" and vllm_usable()):
        problem = backend_problem(backend)
        if problem:
            raise EvalError(problem)
        return VLLMBackend(model, dtype=dtype, seed=seed, revision=revision)
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
    system: Optional[str] = None


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
        # Items sharing settings are generated together; each chunk is saved before the next one starts.
        keyed = sorted(pending, key=lambda it: (it.decoding.temperature, it.decoding.top_p, it.decoding.max_new_tokens,
                                                -1 if it.decoding.seed is None else it.decoding.seed, len(it.turns)))
        for _, group in groupby(keyed, key=lambda it: (it.decoding, len(it.turns))):
            group = list(group)
            for start in range(0, len(group), chunk_size):
                chunk = group[start : start + chunk_size]
                answers: list[list[str]] = [[] for _ in chunk]
                for t in range(len(chunk[0].turns)):
                    convs = []
                    for it, ans in zip(chunk, answers):
                        conv: Conversation = [{"role": "system", "content": it.system}] if it.system else []
                        for q, a in zip(it.turns[:t], ans):
                            conv += [{"role": "user", "content": q}, {"role": "assistant", "content": a}]
                        conv.append({"role": "user", "content": it.turns[t]})
                        convs.append(conv)
                    for ans, text in zip(answers, backend.generate(convs, chunk[0].decoding)):
                        ans.append(text)
                records = [
                    {"id": it.id, "turns": ans, "decoding": it.decoding.to_dict(), "generator": backend.name,
                     "generated_at": time.time(), **it.meta}
                    for it, ans in zip(chunk, answers)
                ]
                store.append(records)
                for r in records:
                    done[r["id"]] = r
                bar.update(len(chunk))
        bar.close()
    return {it.id: done[it.id] for it in items}
