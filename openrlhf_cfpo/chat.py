"""Where a chat model's turn ends: the token ids that generation must stop at, read off the chat template.

A chat completion ends where the template closes the assistant's turn, which need not be the tokenizer's eos:
Qwen2.5 base models' eos is ``<|endoftext|>`` while ChatML closes a turn with ``<|im_end|>``; Llama 3's base eos
is ``<|end_of_text|>`` while its turns end with ``<|eot_id|>``. A sampler that stops only at eos runs past the
turn into invented ones, which are then trained on and scored. Every generator of this package (the local
engine, TRL and verl recipes, eval) stops at :func:`stop_token_ids`.
"""

from __future__ import annotations

from collections.abc import Iterable

# A string no tokenizer merges with what a template puts after it.
_MARK = "\u2063openrlhf-cfpo-end-of-turn-probe\u2063"


def _ids(value) -> list[int]:
    if value is None:
        return []
    return [int(v) for v in value] if isinstance(value, Iterable) else [int(value)]


def end_of_turn_token_id(tokenizer) -> int | None:
    """The special token the chat template closes an assistant turn with; None without a template or such a token.

    Found by rendering a conversation whose assistant turn is a marker and reading the first token after the
    marker, which counts only when it is a special token (``<|im_end|>``, ``<|eot_id|>``, ``</s>``).
    """
    if not getattr(tokenizer, "chat_template", None):
        return None
    try:
        text = tokenizer.apply_chat_template(
            [{"role": "user", "content": "1"}, {"role": "assistant", "content": _MARK}], tokenize=False
        )
    except Exception:  # a template may refuse this conversation (e.g. demand a system turn): no reading, no stop
        return None
    _, found, after = text.partition(_MARK)
    if not found or not after:
        return None
    ids = tokenizer(after, add_special_tokens=False)["input_ids"]
    if not ids:
        return None
    special = set(tokenizer.all_special_ids) | {
        i for i, token in getattr(tokenizer, "added_tokens_decoder", {}).items() if getattr(token, "special", False)
    }
    return ids[0] if ids[0] in special else None


def stop_token_ids(tokenizer, generation_config=None) -> list[int]:
    """Every id a completion ends at: the tokenizer's eos, the generation config's eos ids, the end of a chat turn."""
    ids = _ids(tokenizer.eos_token_id)
    if generation_config is not None:
        ids += _ids(getattr(generation_config, "eos_token_id", None))
    ids += _ids(end_of_turn_token_id(tokenizer))
    return list(dict.fromkeys(ids))
