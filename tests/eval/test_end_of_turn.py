"""Eval generation ends where the chat turn ends, also when the model's eos is another token (a Qwen2.5 base model)."""

import importlib.util
import os

import pytest

from openrlhf_cfpo.eval.decoding import Decoding
from openrlhf_cfpo.eval.generation import HFBackend, Item, VLLMBackend, generate_resumable
from openrlhf_cfpo.eval.store import JsonlStore

_spec = importlib.util.spec_from_file_location(
    "offline_math", os.path.join(os.path.dirname(__file__), "..", "reasoning", "offline_math.py")
)
offline_math = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(offline_math)

# After the generation prompt (which ends with "assistant") the model says "the answer", ends its turn, and then,
# unless stopped, runs on into text of an invented next turn.
NEXT = {"assistant": "the", "the": "answer", "answer": "<|im_end|>", "<|im_end|>": "so"}


@pytest.fixture(scope="module")
def base_model_ending_turns_with_im_end(tmp_path_factory):
    """ChatML turns closed by <|im_end|>, eos <|endoftext|>, and a greedy bigram model that follows NEXT (else "x").

    One attention head of size 32 (its output zeroed): vLLM's CPU attention takes head sizes 32, 64, 80, ...
    """
    import torch
    from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM

    tok = offline_math.build_chat_tokenizer()
    tok.add_special_tokens({"additional_special_tokens": ["<|im_start|>", "<|endoftext|>"]})
    tok.eos_token = "<|endoftext|>"
    vocab = len(tok)
    cfg = LlamaConfig(
        vocab_size=vocab,
        hidden_size=vocab,
        intermediate_size=8,
        num_hidden_layers=1,
        num_attention_heads=1,
        num_key_value_heads=1,
        head_dim=32,
        bos_token_id=None,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
    )
    model = LlamaForCausalLM(cfg)
    with torch.no_grad():
        # The layer adds nothing to the residual stream, so each position's logits depend on its own token only.
        for layer in model.model.layers:
            layer.self_attn.o_proj.weight.zero_()
            layer.mlp.down_proj.weight.zero_()
        model.model.embed_tokens.weight.copy_(torch.eye(vocab))
        model.lm_head.weight.zero_()
        ids = tok.convert_tokens_to_ids
        for t in range(vocab):
            model.lm_head.weight[ids("x"), t] = 1.0
        for a, b in NEXT.items():
            model.lm_head.weight[ids(b), ids(a)] = 10.0
    path = tmp_path_factory.mktemp("base_model")
    model.save_pretrained(path)
    GenerationConfig(eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id).save_pretrained(path)
    tok.save_pretrained(path)
    return str(path), tok


def test_hf_generation_stops_at_im_end_although_eos_is_endoftext(base_model_ending_turns_with_im_end):
    path, tok = base_model_ending_turns_with_im_end
    assert tok.eos_token_id != tok.convert_tokens_to_ids("<|im_end|>")
    backend = HFBackend(path)
    (answer,) = backend.generate([[{"role": "user", "content": "the answer is"}]], Decoding(max_new_tokens=8))
    assert answer == "the answer"


def test_vllm_generation_stops_at_im_end_although_eos_is_endoftext(
    vllm_cpu, base_model_ending_turns_with_im_end, tmp_path
):
    path, tok = base_model_ending_turns_with_im_end
    backend = VLLMBackend(path, dtype="float32")
    out = generate_resumable(
        [Item("a", ["the answer is"], Decoding(max_new_tokens=8))],
        JsonlStore(tmp_path / "a.jsonl"),
        lambda: backend,
        log=lambda m: None,
    )
    assert backend.stop_token_ids == [tok.eos_token_id, tok.convert_tokens_to_ids("<|im_end|>")]
    assert out["a"]["turns"] == ["the answer"]  # not "the answer so x x ..." past the end of the turn
