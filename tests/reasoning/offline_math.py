"""Offline stand-ins for the reasoning tests (loaded by file path: tests/reasoning and tests/verl run in different
environments): MATH-format rows and a word-level tokenizer with Qwen2.5's ChatML chat-template shape."""

from __future__ import annotations

import json

# Every word is one token (whitespace split; unknown words are <unk>), so prompt lengths are easy to construct.
CHATML = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n{{ message['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
WORDS = ["system", "user", "assistant", "the", "answer", "is", "\\boxed{4}", "\\boxed{5}", "so", "x", "=", "4", "5"]


def build_chat_tokenizer(base_eos: bool = False):
    """ChatML turns closed by <|im_end|>, which is also the eos, as Qwen2.5-Instruct has it; with ``base_eos`` the
    eos is <|endoftext|>, as Qwen2.5 base models have it (the turn still ends at <|im_end|>)."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    specials = ["<pad>", "<unk>", "<|im_start|>", "<|im_end|>"]
    vocab = {w: i for i, w in enumerate(specials + WORDS)}
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=tok, pad_token="<pad>", unk_token="<unk>", eos_token="<|im_end|>"
    )
    tokenizer.add_special_tokens({"additional_special_tokens": ["<|im_start|>"]})
    if base_eos:
        tokenizer.add_special_tokens({"additional_special_tokens": ["<|im_start|>", "<|endoftext|>"]})
        tokenizer.eos_token = "<|endoftext|>"
    tokenizer.chat_template = CHATML
    return tokenizer


def math_row(problem: str, solution: str, level: str = "Level 1", type_: str = "Algebra") -> dict:
    """A row as MATH (DigitalLearningGmbH/MATH-lighteval) has it."""
    return {"problem": problem, "level": level, "type": type_, "solution": solution}


def write_jsonl(path, rows) -> str:
    with open(path, "w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row) + "\n")
    return str(path)
