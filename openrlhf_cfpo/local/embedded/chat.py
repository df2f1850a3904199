"""The embedded chat default: a synthetic chat task whose reward model has a known verbosity bias (Figure 3).

The task is a small synthetic language:

    prompt    "<s> tell me about cats :"
    response  "purr whiskers very kitten </s>"

Ten topics, six on-topic words each, five filler words. The reward model is fit to a known rule:

    score = quality + LENGTH_BONUS * min(L, LENGTH_CAP)
    quality = (n_on_topic - n_off_topic) / max(L, 1)          in [-1, 1]

where L counts the response tokens before ``</s>``, on-topic words belong to the prompt's topic,
off-topic words to another topic and filler words to neither. ``quality`` does not depend on
length, so the ``LENGTH_BONUS`` term is a pure verbosity bias: a response grows its score by
getting longer, even with filler that lowers its quality. The SFT demonstrations are 2-8 words
long, leaving the RL policy room to exploit length (the paper's Figure 3 finding).

The three artefacts are ordinary Hugging Face folders (a ``LlamaForCausalLM`` policy, a
``GPT2ForSequenceClassification`` reward model, each with the same ``PreTrainedTokenizerFast``)
plus ``prompts.jsonl``; any local causal LM and sequence-classification model can replace them
by path. GPT-2 is used for the reward model because its absolute position embeddings let a tiny
network read the response length directly.
"""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from ..hf import save_pretrained
from .build import EmbeddedDefault
from .toy_models import right_pad, tiny_llama, train_lm, word_level_tokenizer

LENGTH_BONUS = 0.05
LENGTH_CAP = 32
# The reward model is fit on responses up to this many tokens; beyond it its score is extrapolation.
RM_MAX_RESPONSE_TOKENS = 40

TOPICS: dict[str, list[str]] = {
    "cats": ["purr", "whiskers", "paws", "meow", "kitten", "fur"],
    "dogs": ["bark", "fetch", "leash", "puppy", "tail", "bone"],
    "sea": ["waves", "salt", "tide", "shore", "fish", "boat"],
    "rain": ["clouds", "drops", "wet", "umbrella", "storm", "puddle"],
    "sun": ["light", "warm", "bright", "summer", "sky", "day"],
    "trees": ["leaves", "roots", "branch", "forest", "wood", "green"],
    "music": ["song", "drum", "melody", "guitar", "rhythm", "notes"],
    "food": ["bread", "soup", "spice", "taste", "meal", "fruit"],
    "space": ["stars", "moon", "planet", "orbit", "rocket", "comet"],
    "city": ["street", "traffic", "tower", "crowd", "bus", "lights"],
}
FILLER = ["very", "really", "so", "and", "the"]
PROMPT_WORDS = ["tell", "me", "about", ":"]
WORD_TOPIC = {w: t for t, ws in TOPICS.items() for w in ws}


def prompt_text(topic: str) -> str:
    return f"tell me about {topic} :"


def rule_quality(topic: str, response_words: Sequence[str]) -> float:
    """The length-independent quality of a response: on-topic minus off-topic share."""
    n = len(response_words)
    if n == 0:
        return 0.0
    on = sum(WORD_TOPIC.get(w) == topic for w in response_words)
    off = sum(WORD_TOPIC.get(w) not in (None, topic) for w in response_words)
    return (on - off) / n


def rule_score(topic: str, response_words: Sequence[str]) -> float:
    """The score the reward model is fit to: quality plus the verbosity bonus."""
    return rule_quality(topic, response_words) + LENGTH_BONUS * min(len(response_words), LENGTH_CAP)


@dataclass(frozen=True)
class ChatSettings:
    """Sizes and step counts of the build; ``tiny`` is for tests, where only the mechanics matter."""

    hidden: int = 64
    layers: int = 2
    heads: int = 4
    sft_steps: int = 250
    rm_steps: int = 650
    batch_size: int = 64
    n_prompts: int = 1024
    seed: int = 1234

    @classmethod
    def tiny(cls) -> ChatSettings:
        return cls(hidden=32, layers=1, heads=2, sft_steps=60, rm_steps=60, batch_size=32, n_prompts=128)


def build_tokenizer():
    return word_level_tokenizer(PROMPT_WORDS + list(TOPICS) + [w for ws in TOPICS.values() for w in ws] + FILLER)


def _sample_response(rng: random.Random, topic: str, length: int, p_on: float, p_filler: float) -> list[str]:
    others = [w for w in WORD_TOPIC if WORD_TOPIC[w] != topic]
    words = []
    for _ in range(length):
        u = rng.random()
        words.append(
            rng.choice(TOPICS[topic]) if u < p_on else rng.choice(FILLER) if u < p_on + p_filler else rng.choice(others)
        )
    return words


def _sft_demo(rng: random.Random) -> tuple[str, list[str]]:
    topic = rng.choice(list(TOPICS))
    return topic, _sample_response(rng, topic, rng.randint(2, 8), p_on=0.75, p_filler=0.15)


def _rm_example(rng: random.Random) -> tuple[str, list[str], bool]:
    # Wider than the SFT distribution (any mix, any length up to RM_MAX_RESPONSE_TOKENS) so the
    # score stays faithful where RL takes the policy; some responses lack </s> (truncated rollouts).
    topic = rng.choice(list(TOPICS))
    p_on = rng.random()
    p_filler = rng.random() * (1 - p_on)
    length = rng.randint(0, RM_MAX_RESPONSE_TOKENS)
    return topic, _sample_response(rng, topic, length, p_on, p_filler), rng.random() < 0.85


def _encode(tokenizer, topic: str, words: list[str], eos: bool) -> list[int]:
    ids = tokenizer(prompt_text(topic) + (" " + " ".join(words) if words else ""))["input_ids"]
    return ids + ([tokenizer.eos_token_id] if eos else [])


def _train_policy(tokenizer, s: ChatSettings, rng: random.Random) -> tuple[torch.nn.Module, float]:
    model = tiny_llama(tokenizer, s.hidden, s.layers, s.heads)

    def next_batch():
        ids, mask = right_pad(
            [_encode(tokenizer, *_sft_demo(rng), eos=True) for _ in range(s.batch_size)], tokenizer.pad_token_id
        )
        labels = ids.masked_fill(mask == 0, -100)
        labels[:, :6] = -100  # "<s> tell me about T :" is the prompt: no loss on it
        return ids, mask, labels

    return model, train_lm(model, s.sft_steps, 3e-3, next_batch)


def _train_reward(tokenizer, s: ChatSettings, rng: random.Random) -> tuple[torch.nn.Module, dict]:
    from transformers import GPT2Config, GPT2ForSequenceClassification

    config = GPT2Config(
        vocab_size=len(tokenizer),
        n_positions=64,
        n_embd=s.hidden,
        n_layer=s.layers,
        n_head=s.heads,
        resid_pdrop=0.0,
        embd_pdrop=0.0,
        attn_pdrop=0.0,
        num_labels=1,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    model = GPT2ForSequenceClassification(config)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, s.rm_steps, eta_min=3e-4)

    def batch_of(n):
        ex = [_rm_example(rng) for _ in range(n)]
        ids, mask = right_pad([_encode(tokenizer, t, w, e) for t, w, e in ex], tokenizer.pad_token_id)
        return ids, mask, torch.tensor([rule_score(t, w) for t, w, _ in ex])

    model.train()
    for _ in range(s.rm_steps):
        ids, mask, target = batch_of(s.batch_size)
        loss = torch.nn.functional.mse_loss(model(input_ids=ids, attention_mask=mask).logits.squeeze(-1), target)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
    model.eval()
    ids, mask, target = batch_of(1024)
    with torch.no_grad():
        pred = model(input_ids=ids, attention_mask=mask).logits.squeeze(-1)
    r2 = 1 - ((pred - target) ** 2).mean() / target.var()
    return model, {"rm_heldout_mae": float((pred - target).abs().mean()), "rm_heldout_r2": float(r2)}


def _write(tmp: Path, settings: ChatSettings, rng: random.Random) -> dict:
    tokenizer = build_tokenizer()
    policy, sft_loss = _train_policy(tokenizer, settings, rng)
    reward, fit = _train_reward(tokenizer, settings, rng)
    for name, model in (("policy", policy), ("reward", reward)):
        save_pretrained(model, tmp / name)
        save_pretrained(tokenizer, tmp / name)
    with open(tmp / "prompts.jsonl", "w") as f:
        for _ in range(settings.n_prompts):
            topic = rng.choice(list(TOPICS))
            f.write(json.dumps({"input": prompt_text(topic), "topic": topic}) + "\n")
    return {
        "sft_final_loss": sft_loss,
        **fit,
        "rule": f"quality + {LENGTH_BONUS} * min(L, {LENGTH_CAP}); quality = (n_on_topic - n_off_topic) / max(L, 1)",
    }


# The cache folder keeps the name it had before there were several defaults ("assets-v1"), so existing caches stay
# valid.
DEFAULT = EmbeddedDefault(
    __name__.rsplit(".", 1)[-1],
    "v1",
    ChatSettings,
    _write,
    "assets",
    "about a minute on 2 CPU cores",
    lambda info: f"reward model fit to the rule with held-out R^2 {info['rm_heldout_r2']:.3f}",
)
