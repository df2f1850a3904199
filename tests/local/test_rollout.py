"""Sampling: the engine's KV-cached loop draws exactly the tokens Hugging Face's generate draws for the same seed."""
import json

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, GenerationConfig

from openrlhf_cfpo.local.rollout import left_pad, sample


@pytest.mark.parametrize("temperature, top_p", [(1.0, 1.0), (0.7, 0.9), (1.3, 1.0)])
def test_sampling_draws_the_tokens_hf_generate_draws_for_the_same_seed(tiny_assets, temperature, top_p):
    tok = AutoTokenizer.from_pretrained(tiny_assets.policy)
    model = AutoModelForCausalLM.from_pretrained(tiny_assets.policy, attn_implementation="eager").eval()
    prompts = [json.loads(line)["input"] for line in open(tiny_assets.prompts)][:6]
    # prompts of different lengths, so that left padding and position ids matter
    ids, mask = left_pad([tok(p)["input_ids"][: 3 + i % 4] for i, p in enumerate(prompts * 3)], tok.pad_token_id)
    config = GenerationConfig(do_sample=True, temperature=temperature, top_p=top_p, top_k=0, max_new_tokens=7,
                              pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id)
    for seed in range(3):
        torch.manual_seed(seed)
        want = model.generate(input_ids=ids, attention_mask=mask, generation_config=config)[:, ids.shape[1]:]
        torch.manual_seed(seed)
        got = sample(model, ids, mask, 7, temperature, top_p, tok.eos_token_id, tok.pad_token_id)
        assert torch.equal(got, want)
