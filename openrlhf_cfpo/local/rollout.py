"""Rollouts: sample responses with Hugging Face ``generate`` and score them with the reward model.

Layout of a rollout (what the trainer and :mod:`logprobs` expect): ``sequences`` is the prompt,
left-padded to a common width, followed by the response, right-padded; ``action_mask`` marks the
response tokens up to and including the first EOS (the tokens the policy chose). The samples of
one prompt are consecutive, ``n_samples_per_prompt`` of them, as the group baselines assume.
"""
from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Dict, List

import torch
from transformers import GenerationConfig

from .logprobs import sequence_logprobs


@dataclass
class Rollout:
    sequences: torch.Tensor  # (B, P + T) token ids
    attention_mask: torch.Tensor  # (B, P + T) 1 on prompt and action tokens
    action_mask: torch.Tensor  # (B, T) 1 on action tokens
    old_log_probs: torch.Tensor | None = None  # (B, T) pi_old, the policy that sampled
    ref_log_probs: torch.Tensor | None = None  # (B, T) the frozen reference (the SFT policy)
    rewards: torch.Tensor | None = None  # (B,) reward-model scores
    advantages: torch.Tensor | None = None  # (B, T)
    returns: torch.Tensor | None = None  # (B, T)
    kl: torch.Tensor | None = None  # (B, T) per-token KL estimate to the reference

    @property
    def num_actions(self) -> int:
        return self.action_mask.shape[1]

    def select(self, idx: List[int]) -> "Rollout":
        index = torch.as_tensor(idx, dtype=torch.long)
        return Rollout(**{f.name: None if getattr(self, f.name) is None else getattr(self, f.name)[index] for f in fields(self)})

    def state_dict(self) -> Dict[str, torch.Tensor]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


def tokenize_prompts(tokenizer, prompts: List[str], apply_chat_template: bool = False) -> List[List[int]]:
    if apply_chat_template:
        texts = [tokenizer.apply_chat_template([{"role": "user", "content": p}], tokenize=False, add_generation_prompt=True) for p in prompts]
        # The template already holds the BOS token where the model wants one.
        return [tokenizer(t, add_special_tokens=False)["input_ids"] for t in texts]
    return [tokenizer(p)["input_ids"] for p in prompts]


def left_pad(seqs: List[List[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(map(len, seqs))
    ids = torch.full((len(seqs), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(seqs), width), dtype=torch.long)
    for i, s in enumerate(seqs):
        if s:
            ids[i, width - len(s) :] = torch.tensor(s)
            mask[i, width - len(s) :] = 1
    return ids, mask


def response_mask(responses: torch.Tensor, eos_id: int) -> torch.Tensor:
    """1 up to and including the first EOS; everything after it is padding from ``generate``."""
    is_eos = responses == eos_id
    after_eos = (is_eos.long().cumsum(1) - is_eos.long()) > 0
    return (~after_eos).long()


@torch.no_grad()
def generate(
    policy, tokenizer, prompt_ids: List[List[int]], n_samples_per_prompt: int, max_new_tokens: int,
    temperature: float, top_p: float, micro_batch_size: int, device: torch.device,
) -> Rollout:
    pad_id, eos_id = tokenizer.pad_token_id, tokenizer.eos_token_id
    repeated = [p for p in prompt_ids for _ in range(n_samples_per_prompt)]
    prompts, prompt_mask = left_pad(repeated, pad_id)
    gen_cfg = GenerationConfig(
        do_sample=True, temperature=temperature, top_p=top_p, top_k=0, max_new_tokens=max_new_tokens,
        pad_token_id=pad_id, eos_token_id=eos_id, bos_token_id=tokenizer.bos_token_id,
    )
    responses = []
    for s in range(0, len(repeated), micro_batch_size):
        ids = prompts[s : s + micro_batch_size].to(device)
        out = policy.generate(input_ids=ids, attention_mask=prompt_mask[s : s + micro_batch_size].to(device), generation_config=gen_cfg)
        responses.append(out[:, ids.shape[1] :].cpu())
    width = max(r.shape[1] for r in responses)
    response = torch.full((len(repeated), width), pad_id, dtype=torch.long)
    row = 0
    for r in responses:
        response[row : row + r.shape[0], : r.shape[1]] = r
        row += r.shape[0]
    action_mask = response_mask(response, eos_id)
    response = response.masked_fill(action_mask == 0, pad_id)
    return Rollout(
        sequences=torch.cat([prompts, response], 1),
        attention_mask=torch.cat([prompt_mask, action_mask], 1),
        action_mask=action_mask,
    )


@torch.no_grad()
def batched_logprobs(model, rollout: Rollout, temperature: float, micro_batch_size: int, chunk_size: int, device) -> torch.Tensor:
    out = []
    for s in range(0, rollout.sequences.shape[0], micro_batch_size):
        lp, _ = sequence_logprobs(
            model, rollout.sequences[s : s + micro_batch_size].to(device), rollout.attention_mask[s : s + micro_batch_size].to(device),
            rollout.num_actions, temperature=temperature, chunk_size=chunk_size,
        )
        out.append(lp.cpu())
    return torch.cat(out)


@torch.no_grad()
def reward_scores(reward_model, rollout: Rollout, pad_id: int, micro_batch_size: int, device) -> torch.Tensor:
    """Scalar score per sample: the reward model on prompt + response, re-packed right-padded.

    Re-packing puts every sequence at positions 0..n-1, so a reward model with absolute position
    embeddings sees what it was trained on, and its last-non-pad pooling lands on the EOS.
    """
    keep = rollout.attention_mask.bool()
    packed = [seq[m].tolist() for seq, m in zip(rollout.sequences, keep)]
    scores = []
    for s in range(0, len(packed), micro_batch_size):
        chunk = packed[s : s + micro_batch_size]
        width = max(map(len, chunk))
        ids = torch.full((len(chunk), width), pad_id, dtype=torch.long)
        mask = torch.zeros_like(ids)
        for i, seq in enumerate(chunk):
            ids[i, : len(seq)] = torch.tensor(seq)
            mask[i, : len(seq)] = 1
        logits = reward_model(input_ids=ids.to(device), attention_mask=mask.to(device)).logits
        scores.append(logits[:, 0].float().cpu())
    return torch.cat(scores)
