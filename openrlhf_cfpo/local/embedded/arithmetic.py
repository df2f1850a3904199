"""The embedded arithmetic default: a verifiable task for the paper's reasoning (RLVR) experiments, built offline.

    prompt    "<s> 4 7 + 3 8 ="          label "85"
    response  "8 5 </s>"                 reward 1 if the answer equals the label, else 0

Two-digit addition, one token per digit. The SFT policy is a tiny Llama trained briefly on correct
demonstrations: it has learnt the format and most sums without a carry, not yet all of them, so a
sampled answer is right part of the time (``sft_sample_accuracy`` in ``build_info.json``, well between 0
and 1) and group-normalised advantages have signal: GRPO's setting. The reward is
:mod:`.arithmetic_reward`, an OpenRLHF ``reward_func`` file that also runs unchanged under OpenRLHF.
The build measures the SFT policy's accuracy through that same file and the engine's own sampling
and decoding, so the number in ``build_info.json`` is the reward the first rollouts see.

Artefacts: ``policy/`` (``LlamaForCausalLM`` and its ``PreTrainedTokenizerFast``) and ``prompts.jsonl``
(``{"input": "4 7 + 3 8 =", "label": "85"}``); no reward model.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path

import torch

from ..hf import save_pretrained
from .build import EmbeddedDefault
from .toy_models import right_pad, tiny_llama, train_lm, word_level_tokenizer

REWARD_FILE = str(Path(__file__).with_name("arithmetic_reward.py"))
WORDS = [str(d) for d in range(10)] + ["+", "="]


@dataclass(frozen=True)
class ArithmeticSettings:
    """Sizes of the arithmetic build; ``tiny`` is for tests, where only the mechanics matter."""

    hidden: int = 64
    layers: int = 2
    heads: int = 4
    sft_steps: int = 500
    batch_size: int = 64
    max_operand: int = 99
    n_prompts: int = 4096
    eval_prompts: int = 512
    seed: int = 1234

    @classmethod
    def tiny(cls) -> ArithmeticSettings:
        return cls(hidden=32, layers=1, heads=2, sft_steps=40, batch_size=32, n_prompts=128, eval_prompts=32)


def spaced(n: int) -> str:
    """``47`` -> ``"4 7"``: one token per digit."""
    return " ".join(str(n))


def prompt_text(a: int, b: int) -> str:
    return f"{spaced(a)} + {spaced(b)} ="


def _problem(rng: random.Random, s: ArithmeticSettings) -> tuple[int, int]:
    return rng.randint(0, s.max_operand), rng.randint(0, s.max_operand)


def _train_policy(tokenizer, s: ArithmeticSettings, rng: random.Random):
    model = tiny_llama(tokenizer, s.hidden, s.layers, s.heads, max_positions=32)

    def next_batch():
        prompts, full = [], []
        for _ in range(s.batch_size):
            a, b = _problem(rng, s)
            p = tokenizer(prompt_text(a, b))["input_ids"]
            prompts.append(len(p))
            full.append(p + tokenizer(spaced(a + b), add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id])
        ids, mask = right_pad(full, tokenizer.pad_token_id)
        labels = ids.masked_fill(mask == 0, -100)
        for i, n in enumerate(prompts):
            labels[i, :n] = -100  # no loss on the prompt
        return ids, mask, labels

    return model, train_lm(model, s.sft_steps, 3e-3, next_batch)


@torch.no_grad()
def _accuracy(policy, tokenizer, problems: list[tuple[int, int]], seed: int) -> dict:
    """Share of correct answers through the engine's sampling and the reward file, sampled (T=1) and greedy."""
    from ...chat import stop_token_ids
    from ..rewards import RewardFunction
    from ..rollout import decode_queries, generate, left_pad, tokenize_prompts

    reward = RewardFunction(REWARD_FILE)
    prompts = [prompt_text(a, b) for a, b in problems]
    labels = [str(a + b) for a, b in problems]
    ids = tokenize_prompts(tokenizer, prompts)
    stop_ids = stop_token_ids(tokenizer, policy.generation_config)
    torch.manual_seed(seed)
    ro = generate(policy, tokenizer, ids, 1, 8, 1.0, 1.0, 256, torch.device("cpu"), stop_ids)
    sampled, _, extra = reward(decode_queries(tokenizer, ro), prompts, labels)
    x, mask = left_pad(ids, tokenizer.pad_token_id)
    out = policy.generate(
        input_ids=x,
        attention_mask=mask,
        do_sample=False,
        max_new_tokens=8,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=stop_ids,
    )
    greedy, _, _ = reward(tokenizer.batch_decode(out, skip_special_tokens=False), prompts, labels)
    return {
        "sft_sample_accuracy": round(float(sampled.mean()), 4),
        "sft_greedy_accuracy": round(float(greedy.mean()), 4),
        "sft_well_formed": round(float(extra["answer_well_formed"].mean()), 4),
    }


def _write(tmp: Path, s: ArithmeticSettings, rng: random.Random) -> dict:
    tokenizer = word_level_tokenizer(WORDS)
    policy, sft_loss = _train_policy(tokenizer, s, rng)
    save_pretrained(policy, tmp / "policy")
    save_pretrained(tokenizer, tmp / "policy")
    with open(tmp / "prompts.jsonl", "w") as f:
        for _ in range(s.n_prompts):
            a, b = _problem(rng, s)
            f.write(json.dumps({"input": prompt_text(a, b), "label": str(a + b)}) + "\n")
    held_out = [_problem(rng, s) for _ in range(s.eval_prompts)]
    return {
        "sft_final_loss": sft_loss,
        **_accuracy(policy, tokenizer, held_out, s.seed),
        "task": f"a + b with a, b in [0, {s.max_operand:d}]; reward 1 for the exact sum, else 0",
        "reward_func": Path(REWARD_FILE).name,
    }


DEFAULT = EmbeddedDefault(
    __name__.rsplit(".", 1)[-1],
    "v1",
    ArithmeticSettings,
    _write,
    "arithmetic",
    "under a minute on 2 CPU cores",
    lambda info: (
        f"SFT policy answers {info['sft_sample_accuracy']:.0%} of held-out sums right when sampling at "
        f"temperature 1 ({info['sft_greedy_accuracy']:.0%} greedy)"
    ),
    reward_func=REWARD_FILE,
    label_key="label",
)
