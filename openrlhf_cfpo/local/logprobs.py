"""Per-token log-probs and entropy of a causal LM, computed in chunks so full-vocabulary logits never exist.

For a 128256-token vocabulary (Llama-3) the float32 logits of a 4k-token batch are 2 GB, and a naive
``log_softmax`` plus softmax for the entropy holds two or three such tensors at once. Here the LM
head is applied to ``chunk_size`` positions at a time; with gradients, each chunk is recomputed in
the backward pass (activation checkpointing), so the peak stays at one chunk's logits.
Only the response positions are ever projected: the prompt's logits are never needed.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch.utils.checkpoint import checkpoint


def _chunk_logprobs_entropy(hidden, weight, bias, labels, temperature: float):
    logits = F.linear(hidden, weight, bias).float()
    if temperature != 1.0:
        logits = logits / temperature
    logp = torch.log_softmax(logits, dim=-1)
    log_probs = logp.gather(-1, labels.unsqueeze(-1)).squeeze(-1)
    with torch.no_grad():
        # Detached: the entropy is a diagnostic unless an entropy bonus asks for its gradient
        # (see logprobs_and_entropy_from_hidden). -sum p log p is more accurate in float32 than
        # logsumexp(z) - sum p z, whose two ~log(V)-sized terms cancel.
        entropy = -(logp.exp() * logp).sum(-1)
    return log_probs, entropy


def _chunk_entropy_with_grad(hidden, weight, bias, temperature: float):
    logits = F.linear(hidden, weight, bias).float()
    if temperature != 1.0:
        logits = logits / temperature
    logp = torch.log_softmax(logits, dim=-1)
    return -(logp.exp() * logp).sum(-1)


def logprobs_and_entropy_from_hidden(
    hidden: torch.Tensor,
    weight: torch.Tensor,
    labels: torch.Tensor,
    bias: torch.Tensor | None = None,
    temperature: float = 1.0,
    chunk_size: int = 1024,
    entropy_grad: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``log softmax(h W^T + b)[label]`` and the entropy, for ``hidden`` of shape (..., H).

    Returns two float32 tensors shaped like ``labels``. Gradients flow to ``hidden``, ``weight`` and
    ``bias`` through the log-probs (and the entropy when ``entropy_grad``).
    """
    shape = labels.shape
    h = hidden.reshape(-1, hidden.shape[-1])
    y = labels.reshape(-1)
    # One chunk holds everything anyway: recomputing it in backward would save nothing.
    need_grad = torch.is_grad_enabled() and (h.requires_grad or weight.requires_grad) and h.shape[0] > chunk_size
    lps, ents = [], []
    for start in range(0, h.shape[0], chunk_size):
        hc, yc = h[start : start + chunk_size], y[start : start + chunk_size]
        if need_grad:
            lp, ent = checkpoint(_chunk_logprobs_entropy, hc, weight, bias, yc, temperature, use_reentrant=False)
            if entropy_grad:
                ent = checkpoint(_chunk_entropy_with_grad, hc, weight, bias, temperature, use_reentrant=False)
        else:
            lp, ent = _chunk_logprobs_entropy(hc, weight, bias, yc, temperature)
            if entropy_grad and torch.is_grad_enabled():
                ent = _chunk_entropy_with_grad(hc, weight, bias, temperature)
        lps.append(lp)
        ents.append(ent)
    return torch.cat(lps).reshape(shape), torch.cat(ents).reshape(shape)


def naive_logprobs_and_entropy(logits: torch.Tensor, labels: torch.Tensor, temperature: float = 1.0):
    """The unchunked reference: full ``log_softmax`` over the vocabulary (for tests and benchmarks)."""
    logp = torch.log_softmax(logits.float() / temperature, dim=-1)
    return logp.gather(-1, labels.unsqueeze(-1)).squeeze(-1), -(logp.exp() * logp).sum(-1)


def _output_head(model) -> torch.nn.Linear | None:
    head = model.get_output_embeddings()
    config = model.config.get_text_config() if hasattr(model.config, "get_text_config") else model.config
    # Models that post-process logits (soft-capping, scaling) need their own forward for exact values.
    if (
        not isinstance(head, torch.nn.Linear)
        or getattr(config, "final_logit_softcapping", None)
        or getattr(config, "logit_scale", None)
    ):
        return None
    return head


def sequence_logprobs(
    model,
    sequences: torch.Tensor,
    attention_mask: torch.Tensor,
    num_actions: int,
    temperature: float = 1.0,
    chunk_size: int = 1024,
    entropy_grad: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Log-probs and entropy of the last ``num_actions`` tokens of ``sequences`` under ``model``.

    ``sequences`` = left-padded prompt + right-padded response, as :mod:`rollout` builds them.
    Returns ``(batch, num_actions)`` float32 tensors; position t scores token ``sequences[:, -num_actions + t]``.
    """
    position_ids = (attention_mask.long().cumsum(-1) - 1).clamp(min=0)
    labels = sequences[:, -num_actions:]
    head = _output_head(model)
    if head is None:
        logits = model(input_ids=sequences, attention_mask=attention_mask, position_ids=position_ids).logits
        return naive_logprobs_and_entropy(logits[:, -num_actions - 1 : -1], labels, temperature)
    hidden = model.base_model(
        input_ids=sequences, attention_mask=attention_mask, position_ids=position_ids
    ).last_hidden_state
    # The hidden state at position t predicts token t + 1, hence the shift by one.
    hidden = hidden[:, -num_actions - 1 : -1]
    return logprobs_and_entropy_from_hidden(
        hidden,
        head.weight,
        labels,
        head.bias,
        temperature=temperature,
        chunk_size=chunk_size,
        entropy_grad=entropy_grad,
    )
