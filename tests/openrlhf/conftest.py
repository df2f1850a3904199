"""Tiny Hugging Face models for OpenRLHF's own code on CPU, built offline (seconds)."""
import json

import pytest


def save_tiny_llama(path, seed: int) -> str:
    """A 2-layer, 32-wide LlamaForCausalLM with the project's word-level tokenizer, random weights."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from openrlhf_cfpo.local.embedded.chat import build_tokenizer

    tokenizer = build_tokenizer()
    # A chat template, as an SFT model's tokenizer has one: OpenRLHF saves it with the trained policy, and
    # `openrlhf-cfpo eval` renders every benchmark prompt with it.
    tokenizer.chat_template = "{% for m in messages %}{{ m['content'] }} {% endfor %}"
    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=64, tie_word_embeddings=False,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
    )
    LlamaForCausalLM(config).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return str(path)


@pytest.fixture(scope="session")
def tiny_openrlhf_models(tmp_path_factory):
    """``(policy, reward, prompts)``: a policy, a model OpenRLHF loads as its reward model (a random
    value head on another tiny Llama), and 8 prompts in OpenRLHF's jsonl layout (key ``input``)."""
    from openrlhf_cfpo.local.embedded.chat import TOPICS, prompt_text

    root = tmp_path_factory.mktemp("tiny_openrlhf")
    prompts = root / "prompts.jsonl"
    prompts.write_text("".join(json.dumps({"input": prompt_text(topic)}) + "\n" for topic in list(TOPICS)[:8]))
    return save_tiny_llama(root / "policy", seed=0), save_tiny_llama(root / "reward", seed=1), str(prompts)
