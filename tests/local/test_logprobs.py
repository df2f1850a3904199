"""Chunked log-probs and entropy agree with the full log_softmax, in value and gradient."""

import torch
from transformers import AutoModelForCausalLM

from openrlhf_cfpo.local.logprobs import logprobs_and_entropy_from_hidden, naive_logprobs_and_entropy, sequence_logprobs
from openrlhf_cfpo.local.rollout import response_mask


def test_chunked_logprobs_and_entropy_equal_the_full_log_softmax_with_gradients():
    g = torch.Generator().manual_seed(0)
    hidden = torch.randn(3, 5, 16, generator=g, requires_grad=True)
    weight = torch.randn(1000, 16, generator=g, requires_grad=True)
    labels = torch.randint(0, 1000, (3, 5), generator=g)
    lp, ent = logprobs_and_entropy_from_hidden(hidden, weight, labels, temperature=0.7, chunk_size=4)
    ref_lp, ref_ent = naive_logprobs_and_entropy(hidden @ weight.T, labels, temperature=0.7)
    assert torch.allclose(lp, ref_lp, atol=1e-5) and torch.allclose(ent, ref_ent, atol=1e-5)
    grads = torch.autograd.grad(lp.sum(), (hidden, weight))
    ref_grads = torch.autograd.grad(ref_lp.sum(), (hidden, weight))
    for a, b in zip(grads, ref_grads):
        assert torch.allclose(a, b, atol=1e-5)


def test_response_logprobs_do_not_depend_on_left_padding(tiny_assets):
    model = AutoModelForCausalLM.from_pretrained(tiny_assets.policy).eval()
    seq = torch.tensor([[2, 4, 5, 6, 10, 20, 21, 3]])
    alone, _ = sequence_logprobs(model, seq, torch.ones_like(seq), 3)
    padded = torch.cat([torch.zeros(1, 3, dtype=torch.long), seq], 1)
    mask = torch.cat([torch.zeros(1, 3, dtype=torch.long), torch.ones_like(seq)], 1)
    shifted, _ = sequence_logprobs(model, padded, mask, 3)
    full = torch.log_softmax(model(seq).logits[0, -4:-1], -1).gather(-1, seq[0, -3:, None]).squeeze(-1)
    assert torch.allclose(alone[0], full, atol=1e-5) and torch.allclose(shifted, alone, atol=1e-5)


def test_response_mask_keeps_tokens_up_to_and_including_the_first_eos():
    responses = torch.tensor([[5, 3, 7, 3], [5, 6, 7, 8], [3, 0, 0, 0]])
    assert response_mask(responses, [3]).tolist() == [[1, 1, 0, 0], [1, 1, 1, 1], [1, 0, 0, 0]]
