"""The embedded defaults, built offline and cached: the machinery, and the chat default (a verbosity-biased reward model).

Nothing here touches the Hugging Face hub. Each embedded default (:class:`EmbeddedDefault`) is a
build function that writes ordinary Hugging Face folders and a ``prompts.jsonl`` into a folder; this
module builds it next to its cache folder and renames it into place (so a killed build never leaves
half a cache), names the cache folder by a digest of the build settings, and builds it once per
machine. Two are registered: ``chat`` below, and ``arithmetic`` (:mod:`.arithmetic`, verifiable
rewards for the paper's Figure 2).

The chat default's task is a small synthetic language:

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

import hashlib
import json
import os
import random
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence

import torch

from openrlhf_cfpo.paths import cache_dir

ASSET_VERSION = "v1"
LENGTH_BONUS = 0.05
LENGTH_CAP = 32
# The reward model is fit on responses up to this many tokens; beyond it its score is extrapolation.
RM_MAX_RESPONSE_TOKENS = 40

TOPICS: Dict[str, List[str]] = {
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
SPECIAL = {"pad_token": "<pad>", "unk_token": "<unk>", "bos_token": "<s>", "eos_token": "</s>"}
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


def topic_of_prompt(prompt: str) -> Optional[str]:
    words = prompt.split()
    return words[words.index("about") + 1] if "about" in words and words.index("about") + 1 < len(words) else None


@dataclass(frozen=True)
class BuildSettings:
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
    def tiny(cls) -> "BuildSettings":
        return cls(hidden=32, layers=1, heads=2, sft_steps=60, rm_steps=60, batch_size=32, n_prompts=128)


@dataclass(frozen=True)
class Assets:
    """A built embedded default: its folder, and the reward file and label field when its rewards are verifiable."""

    root: Path
    reward_func: Optional[str] = None  # a reward_func(queries, prompts, labels) file (OpenRLHF's --reward.remote_url)
    label_key: Optional[str] = None  # the prompts' field that reward_func gets as its label

    @property
    def policy(self) -> str:
        return str(self.root / "policy")

    @property
    def reward(self) -> Optional[str]:
        """The reward model folder; None for a default with verifiable rewards."""
        return str(self.root / "reward") if (self.root / "reward").is_dir() else None

    @property
    def prompts(self) -> str:
        return str(self.root / "prompts.jsonl")

    @property
    def build_info(self) -> dict:
        return json.loads((self.root / "build_info.json").read_text())


def word_level_tokenizer(words: Sequence[str]):
    """A whitespace word-level tokenizer over ``SPECIAL`` + ``words``; encoding puts ``<s>`` in front, as Llama's does."""
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    vocab = {w: i for i, w in enumerate(list(SPECIAL.values()) + list(words))}
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token=SPECIAL["unk_token"]))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok.post_processor = processors.TemplateProcessing(
        single=f"{SPECIAL['bos_token']} $A", special_tokens=[(SPECIAL["bos_token"], vocab[SPECIAL["bos_token"]])]
    )
    return PreTrainedTokenizerFast(tokenizer_object=tok, padding_side="left", **SPECIAL)


def build_tokenizer():
    return word_level_tokenizer(PROMPT_WORDS + list(TOPICS) + [w for ws in TOPICS.values() for w in ws] + FILLER)


def tiny_llama(tokenizer, hidden: int, layers: int, heads: int, max_positions: int = 128):
    """A small ``LlamaForCausalLM`` (tied embeddings) for ``tokenizer``, freshly initialised from torch's RNG."""
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=hidden, intermediate_size=2 * hidden, num_hidden_layers=layers,
        num_attention_heads=heads, num_key_value_heads=heads, max_position_embeddings=max_positions,
        pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
        tie_word_embeddings=True,
    )
    return LlamaForCausalLM(config)


def train_lm(model, steps: int, lr: float, next_batch) -> float:
    """Supervised fine-tuning: ``steps`` AdamW steps on ``next_batch() -> (ids, mask, labels)``; returns the last loss."""
    opt = torch.optim.AdamW(model.parameters(), lr=lr)
    model.train()
    loss = torch.tensor(0.0)
    for _ in range(steps):
        ids, mask, labels = next_batch()
        loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    return float(loss.detach())


def _sample_response(rng: random.Random, topic: str, length: int, p_on: float, p_filler: float) -> List[str]:
    others = [w for w in WORD_TOPIC if WORD_TOPIC[w] != topic]
    words = []
    for _ in range(length):
        u = rng.random()
        words.append(rng.choice(TOPICS[topic]) if u < p_on else rng.choice(FILLER) if u < p_on + p_filler else rng.choice(others))
    return words


def _sft_demo(rng: random.Random) -> tuple[str, List[str]]:
    topic = rng.choice(list(TOPICS))
    return topic, _sample_response(rng, topic, rng.randint(2, 8), p_on=0.75, p_filler=0.15)


def _rm_example(rng: random.Random) -> tuple[str, List[str], bool]:
    # Wider than the SFT distribution (any mix, any length up to RM_MAX_RESPONSE_TOKENS) so the
    # score stays faithful where RL takes the policy; some responses lack </s> (truncated rollouts).
    topic = rng.choice(list(TOPICS))
    p_on = rng.random()
    p_filler = rng.random() * (1 - p_on)
    length = rng.randint(0, RM_MAX_RESPONSE_TOKENS)
    return topic, _sample_response(rng, topic, length, p_on, p_filler), rng.random() < 0.85


def _encode(tokenizer, topic: str, words: List[str], eos: bool) -> List[int]:
    ids = tokenizer(prompt_text(topic) + (" " + " ".join(words) if words else ""))["input_ids"]
    return ids + ([tokenizer.eos_token_id] if eos else [])


def _pad(batch: List[List[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(map(len, batch))
    ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(batch), width), dtype=torch.long)
    for i, seq in enumerate(batch):
        ids[i, : len(seq)] = torch.tensor(seq)
        mask[i, : len(seq)] = 1
    return ids, mask


def _train_policy(tokenizer, s: BuildSettings, rng: random.Random) -> tuple[torch.nn.Module, float]:
    model = tiny_llama(tokenizer, s.hidden, s.layers, s.heads)

    def next_batch():
        ids, mask = _pad([_encode(tokenizer, *_sft_demo(rng), eos=True) for _ in range(s.batch_size)], tokenizer.pad_token_id)
        labels = ids.masked_fill(mask == 0, -100)
        labels[:, :6] = -100  # "<s> tell me about T :" is the prompt: no loss on it
        return ids, mask, labels

    return model, train_lm(model, s.sft_steps, 3e-3, next_batch)


def _train_reward(tokenizer, s: BuildSettings, rng: random.Random) -> tuple[torch.nn.Module, dict]:
    from transformers import GPT2Config, GPT2ForSequenceClassification

    config = GPT2Config(
        vocab_size=len(tokenizer), n_positions=64, n_embd=s.hidden, n_layer=s.layers, n_head=s.heads,
        resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0, num_labels=1, pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
    )
    model = GPT2ForSequenceClassification(config)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, s.rm_steps, eta_min=3e-4)

    def batch_of(n):
        ex = [_rm_example(rng) for _ in range(n)]
        ids, mask = _pad([_encode(tokenizer, t, w, e) for t, w, e in ex], tokenizer.pad_token_id)
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


def _build_chat(tmp: Path, settings: BuildSettings, rng: random.Random) -> dict:
    tokenizer = build_tokenizer()
    policy, sft_loss = _train_policy(tokenizer, settings, rng)
    reward, fit = _train_reward(tokenizer, settings, rng)
    for name, model in (("policy", policy), ("reward", reward)):
        model.save_pretrained(tmp / name)
        tokenizer.save_pretrained(tmp / name)
    with open(tmp / "prompts.jsonl", "w") as f:
        for _ in range(settings.n_prompts):
            topic = rng.choice(list(TOPICS))
            f.write(json.dumps({"input": prompt_text(topic), "topic": topic}) + "\n")
    return {
        "sft_final_loss": sft_loss, **fit,
        "rule": f"quality + {LENGTH_BONUS} * min(L, {LENGTH_CAP}); quality = (n_on_topic - n_off_topic) / max(L, 1)",
    }


@dataclass(frozen=True)
class EmbeddedDefault:
    """One embedded default: how to build it, where it is cached, what its rewards are."""

    name: str
    version: str  # bump when the build changes: the cache folder changes with it
    settings_type: type  # a frozen dataclass of build sizes with a ``seed``; its defaults are the default
    build: Callable[[Path, Any, random.Random], dict]  # writes the artefacts into a folder, returns build info
    cache_prefix: str
    build_time: str  # for the one line printed before a build
    done: Callable[[dict], str]  # the line printed after it, from the build info
    reward_func: Optional[str] = None
    label_key: Optional[str] = None

    def assets(self, root: Path) -> Assets:
        return Assets(Path(root), self.reward_func, self.label_key)


CHAT = EmbeddedDefault(
    "chat", ASSET_VERSION, BuildSettings, _build_chat, "assets", "about a minute on 2 CPU cores",
    lambda info: f"reward model fit to the rule with held-out R^2 {info['rm_heldout_r2']:.3f}",
)


def embedded_defaults() -> Dict[str, EmbeddedDefault]:
    """Every embedded default by name (``--embedded_default``)."""
    from .arithmetic import ARITHMETIC

    return {CHAT.name: CHAT, ARITHMETIC.name: ARITHMETIC}


def _spec_of(settings) -> EmbeddedDefault:
    for spec in embedded_defaults().values():
        if isinstance(settings, spec.settings_type):
            return spec
    raise TypeError(f"no embedded default is built from {type(settings).__name__}")


def build_assets(out_dir: str | os.PathLike, settings=BuildSettings()) -> Assets:
    """Build the embedded default of ``settings`` into ``out_dir`` (replacing it). Deterministic for given ``settings``."""
    spec = _spec_of(settings)
    t0 = time.time()
    threads = torch.get_num_threads()
    # Models this small run fastest on one thread: more threads only add OpenMP synchronisation.
    torch.set_num_threads(1)
    torch.manual_seed(settings.seed)
    rng = random.Random(settings.seed)
    out = Path(out_dir)
    # Build next to the target and rename, so a killed build never leaves a half-written cache.
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    tmp = Path(tempfile.mkdtemp(prefix=".build-", dir=out.parent if out.parent.exists() else None))
    try:
        built = spec.build(tmp, settings, rng)
        info = {"version": spec.version, "embedded_default": spec.name, "settings": settings.__dict__, **built,
                "build_seconds": round(time.time() - t0, 1)}
        (tmp / "build_info.json").write_text(json.dumps(info, indent=2))
        if out.exists():
            shutil.rmtree(out)
        out.parent.mkdir(parents=True, exist_ok=True)
        os.replace(tmp, out)
    finally:
        torch.set_num_threads(threads)
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return spec.assets(out)


def cache_name(settings=BuildSettings()) -> str:
    """The cache folder of ``settings``: the same in every process (a digest, not the salted hash())."""
    spec = _spec_of(settings)
    if settings == spec.settings_type():
        return f"{spec.cache_prefix}-{spec.version}"
    return f"{spec.cache_prefix}-{spec.version}-{hashlib.sha256(repr(sorted(settings.__dict__.items())).encode()).hexdigest()[:12]}"


def default_assets(settings=BuildSettings(), log=print) -> Assets:
    """The cached embedded default of ``settings`` (the chat one unless told), built on first use."""
    spec = _spec_of(settings)
    root = cache_dir() / cache_name(settings)
    if (root / "build_info.json").exists():
        return spec.assets(root)
    root.parent.mkdir(parents=True, exist_ok=True)
    log(f"building the embedded {spec.name} default into {root} (once; {spec.build_time}) ...")
    assets = build_assets(root, settings)
    info = assets.build_info
    log(f"built in {info['build_seconds']}s: {spec.done(info)}")
    return assets


def embedded_default(name: str, log=print) -> Assets:
    """``--embedded_default NAME``, cached."""
    return default_assets(embedded_defaults()[name].settings_type(), log=log)
