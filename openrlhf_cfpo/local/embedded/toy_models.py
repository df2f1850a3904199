"""The parts the toy embedded defaults are built from: a word-level tokenizer, a tiny Llama, supervised fine-tuning."""

from __future__ import annotations

from collections.abc import Sequence

import torch

SPECIAL = {"pad_token": "<pad>", "unk_token": "<unk>", "bos_token": "<s>", "eos_token": "</s>"}


def word_level_tokenizer(words: Sequence[str]):
    """A whitespace word-level tokenizer over ``SPECIAL`` + ``words``; encoding puts ``<s>`` in front,
    as Llama's does."""
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    vocab = {w: i for i, w in enumerate(list(SPECIAL.values()) + list(words))}
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token=SPECIAL["unk_token"]))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok.post_processor = processors.TemplateProcessing(
        single=f"{SPECIAL['bos_token']} $A", special_tokens=[(SPECIAL["bos_token"], vocab[SPECIAL["bos_token"]])]
    )
    return PreTrainedTokenizerFast(tokenizer_object=tok, padding_side="left", **SPECIAL)


def tiny_llama(tokenizer, hidden: int, layers: int, heads: int, max_positions: int = 128):
    """A small ``LlamaForCausalLM`` (tied embeddings) for ``tokenizer``, freshly initialised from torch's RNG."""
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden,
        intermediate_size=2 * hidden,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        num_key_value_heads=heads,
        max_position_embeddings=max_positions,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        tie_word_embeddings=True,
    )
    return LlamaForCausalLM(config)


def right_pad(batch: list[list[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``(ids, attention_mask)`` of token lists padded on the right to the longest."""
    width = max(map(len, batch))
    ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(batch), width), dtype=torch.long)
    for i, seq in enumerate(batch):
        ids[i, : len(seq)] = torch.tensor(seq)
        mask[i, : len(seq)] = 1
    return ids, mask


def train_lm(model, steps: int, lr: float, next_batch) -> float:
    """Supervised fine-tuning: ``steps`` AdamW steps on ``next_batch() -> (ids, mask, labels)``;
    returns the last loss."""
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
