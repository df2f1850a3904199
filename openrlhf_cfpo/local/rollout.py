"""Rollouts: sample responses with Hugging Face ``generate`` and score them with the reward model.

Layout of a rollout (what the trainer and :mod:`logprobs` expect): ``sequences`` is the prompt,
left-padded to a common width, followed by the response, right-padded; ``action_mask`` marks the
response tokens up to and including the first stop token (the tokens the policy chose). A response
stops at any of :func:`openrlhf_cfpo.chat.stop_token_ids`: the eos ids and the end of a chat turn
(``<|im_end|>`` for a Qwen2.5 base model, whose eos is ``<|endoftext|>``). The samples of one prompt
are consecutive, ``n_samples_per_prompt`` of them, as the group baselines assume.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields

import torch

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
    # (B,) per-sample values logged as their mean over a step's samples: reward_func's "score" and extra_logs
    info: dict[str, torch.Tensor] | None = None

    @property
    def num_actions(self) -> int:
        return self.action_mask.shape[1]

    def select(self, idx: list[int]) -> Rollout:
        index = torch.as_tensor(idx, dtype=torch.long)

        def pick(value):
            if value is None:
                return None
            return {k: v[index] for k, v in value.items()} if isinstance(value, dict) else value[index]

        return Rollout(**{f.name: pick(getattr(self, f.name)) for f in fields(self)})

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


def format_prompts(
    tokenizer, prompts: list[str | list], apply_chat_template: bool = False, input_template: str | None = None
) -> list[str]:
    """The prompt texts the policy is given (and reward_func gets as ``prompts``), as OpenRLHF's preprocess_data makes
    them: with the chat template, a text is one user turn and a list of chat messages is rendered as it is."""
    if apply_chat_template:
        return [
            tokenizer.apply_chat_template(
                p if isinstance(p, list) else [{"role": "user", "content": p}],
                tokenize=False,
                add_generation_prompt=True,
            )
            for p in prompts
        ]
    return [input_template.format(p) for p in prompts] if input_template else list(prompts)


def encode_prompts(tokenizer, texts: list[str], apply_chat_template: bool = False) -> list[list[int]]:
    """Token ids of formatted prompts; a chat template already holds the BOS token where the model wants one."""
    # (one call for the batch: a fast tokenizer encodes it in parallel, the same ids as one text at a time)
    return list(tokenizer(list(texts), add_special_tokens=not apply_chat_template)["input_ids"]) if texts else []


def tokenize_prompts(
    tokenizer, prompts: list[str], apply_chat_template: bool = False, input_template: str | None = None
) -> list[list[int]]:
    return encode_prompts(
        tokenizer, format_prompts(tokenizer, prompts, apply_chat_template, input_template), apply_chat_template
    )


def decode_queries(tokenizer, rollout: Rollout) -> list[str]:
    """Prompt and response of each sample decoded together, special tokens kept, padding dropped:
    OpenRLHF's ``queries``."""
    keep = rollout.attention_mask.bool()
    return tokenizer.batch_decode(
        [seq[m].tolist() for seq, m in zip(rollout.sequences, keep)], skip_special_tokens=False
    )


def left_pad(seqs: list[list[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(map(len, seqs))
    ids = torch.full((len(seqs), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(seqs), width), dtype=torch.long)
    for i, s in enumerate(seqs):
        if s:
            ids[i, width - len(s) :] = torch.tensor(s)
            mask[i, width - len(s) :] = 1
    return ids, mask


def response_mask(responses: torch.Tensor, stop_ids: Sequence[int]) -> torch.Tensor:
    """1 up to and including the first stop token; everything after it is padding from ``generate``."""
    is_stop = torch.isin(responses, torch.as_tensor(list(stop_ids), device=responses.device)).long()
    after_stop = (is_stop.cumsum(1) - is_stop) > 0
    return (~after_stop).long()


@torch.no_grad()
def sample(
    policy,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    max_new_tokens: int,
    temperature: float,
    top_p: float,
    stop_ids: Sequence[int],
    pad_id: int,
) -> torch.Tensor:
    """Multinomial sampling from ``softmax(logits / temperature)`` (nucleus-truncated when ``top_p < 1``), KV-cached.

    The sampling distribution is exactly the one whose log-probs the trainer computes (temperature, top-p: what
    OpenRLHF hands vLLM), whatever a model's ``generation_config.json`` adds (Qwen2.5-Instruct's repetition
    penalty and top-k, say), which ``model.generate`` would apply. The steps are ``generate``'s own sampling loop
    (its position ids, cache, logits warpers, padding after EOS; the same tokens for the same seed, tested), without
    its per-token bookkeeping. Returns (B, T) response ids, T <= ``max_new_tokens``, ``pad_id`` after each row's first
    token of ``stop_ids``.
    """
    from transformers.generation.logits_process import LogitsProcessorList, TemperatureLogitsWarper, TopPLogitsWarper

    warpers = LogitsProcessorList()
    if temperature != 1.0:
        warpers.append(TemperatureLogitsWarper(temperature))
    if top_p < 1.0:
        warpers.append(TopPLogitsWarper(top_p))
    mask = attention_mask
    position_ids = mask.long().cumsum(-1) - 1
    position_ids.masked_fill_(mask == 0, 1)
    out = policy(input_ids=input_ids, attention_mask=mask, position_ids=position_ids, use_cache=True, logits_to_keep=1)
    stop = torch.as_tensor(list(stop_ids), device=input_ids.device)
    unfinished = torch.ones(input_ids.shape[0], dtype=torch.long, device=input_ids.device)
    ones = torch.ones_like(unfinished)[:, None]
    tokens = []
    for t in range(max_new_tokens):
        scores = warpers(input_ids, out.logits[:, -1].to(dtype=torch.float32))
        next_tokens = torch.multinomial(torch.softmax(scores, dim=-1), num_samples=1).squeeze(1)
        next_tokens = next_tokens * unfinished + pad_id * (1 - unfinished)
        tokens.append(next_tokens)
        unfinished = unfinished & (~torch.isin(next_tokens, stop)).long()
        if t == max_new_tokens - 1 or unfinished.max() == 0:
            break
        mask = torch.cat([mask, ones], dim=-1)
        position_ids = position_ids[:, -1:] + 1
        out = policy(
            input_ids=next_tokens[:, None],
            attention_mask=mask,
            position_ids=position_ids,
            past_key_values=out.past_key_values,
            use_cache=True,
            logits_to_keep=1,
        )
    return torch.stack(tokens, dim=1)


@torch.no_grad()
def generate(
    policy,
    tokenizer,
    prompt_ids: list[list[int]],
    n_samples_per_prompt: int,
    max_new_tokens: int,
    temperature: float,
    top_p: float,
    micro_batch_size: int,
    device: torch.device,
    stop_ids: Sequence[int],
) -> Rollout:
    """``n_samples_per_prompt`` sampled responses per prompt, each ending at its first token of ``stop_ids``."""
    pad_id = tokenizer.pad_token_id
    repeated = [p for p in prompt_ids for _ in range(n_samples_per_prompt)]
    prompts, prompt_mask = left_pad(repeated, pad_id)
    responses = []
    for s in range(0, len(repeated), micro_batch_size):
        ids, mask = prompts[s : s + micro_batch_size].to(device), prompt_mask[s : s + micro_batch_size].to(device)
        responses.append(sample(policy, ids, mask, max_new_tokens, temperature, top_p, stop_ids, pad_id).cpu())
    width = max(r.shape[1] for r in responses)
    response = torch.full((len(repeated), width), pad_id, dtype=torch.long)
    row = 0
    for r in responses:
        response[row : row + r.shape[0], : r.shape[1]] = r
        row += r.shape[0]
    action_mask = response_mask(response, stop_ids)
    response = response.masked_fill(action_mask == 0, pad_id)
    return Rollout(
        sequences=torch.cat([prompts, response], 1),
        attention_mask=torch.cat([prompt_mask, action_mask], 1),
        action_mask=action_mask,
    )


@torch.no_grad()
def batched_logprobs(
    model, rollout: Rollout, temperature: float, micro_batch_size: int, chunk_size: int, device
) -> torch.Tensor:
    out = []
    for s in range(0, rollout.sequences.shape[0], micro_batch_size):
        lp, _ = sequence_logprobs(
            model,
            rollout.sequences[s : s + micro_batch_size].to(device),
            rollout.attention_mask[s : s + micro_batch_size].to(device),
            rollout.num_actions,
            temperature=temperature,
            chunk_size=chunk_size,
        )
        out.append(lp.cpu())
    return torch.cat(out)


@torch.no_grad()
def reward_scores(reward_model, rollout: Rollout, pad_id: int, micro_batch_size: int, device) -> torch.Tensor:
    """Scalar score per sample: the reward model on prompt + response, re-packed right-padded.

    Re-packing puts every sequence at positions 0..n-1, so a reward model with absolute position
    embeddings sees what it was trained on, and its last-non-pad pooling lands on the EOS.
    """
    # Each row is [left padding | prompt | response | right padding] and attention_mask marks the middle, so
    # re-packing is a left shift of each row by its left padding (rows stay in one tensor, no Python per row).
    mask = rollout.attention_mask
    width = mask.shape[1]
    left = mask.argmax(1)  # first 1 of each row
    lengths = mask.sum(1)
    cols = torch.arange(width)
    index = (cols[None, :] + left[:, None]).clamp(max=width - 1)
    packed_mask = (cols[None, :] < lengths[:, None]).long()
    packed = rollout.sequences.gather(1, index).masked_fill(packed_mask == 0, pad_id)
    scores = []
    for s in range(0, packed.shape[0], micro_batch_size):
        m = packed_mask[s : s + micro_batch_size]
        w = int(m.sum(1).max())  # each micro-batch as wide as its longest sequence, as before
        ids = packed[s : s + micro_batch_size, :w]
        logits = reward_model(input_ids=ids.to(device), attention_mask=m[:, :w].to(device)).logits
        scores.append(logits[:, 0].float().cpu())
    return torch.cat(scores)
