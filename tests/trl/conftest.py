"""Tiny offline models, trainer builders and a hand-built batch for the TRL adapter's tests.

Fixtures: ``make_trainer``, ``make_batch``, ``loss_grads_metrics`` and ``trl_loss_from_log_probs``, the hook
a cross-framework parity test uses: TRL's loss for given per-token log-probs, computed by a built trainer's
own ``_compute_loss``. Outside tests/trl, load this file with ``importlib.util.spec_from_file_location``
and call ``make_trainer`` / ``trl_loss_from_log_probs``.
"""

from __future__ import annotations

from unittest import mock

import pytest
import torch

from openrlhf_cfpo.local.embedded.chat import build_tokenizer

# 4 completions (2 prompts x 2 generations) of at most COMPLETION_LEN tokens; gradient accumulation 2, so the
# accumulation scaling of every loss type is exercised.
BATCH, PROMPT_LEN, COMPLETION_LEN, ACCUMULATION = 4, 5, 6, 2


def _save_tiny_model(path, moe: bool = False) -> str:
    from transformers import LlamaConfig, LlamaForCausalLM, MixtralConfig, MixtralForCausalLM

    tokenizer = build_tokenizer()
    special = dict(
        pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id
    )
    sizes = dict(
        vocab_size=len(tokenizer),
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=2,
        max_position_embeddings=64,
    )
    torch.manual_seed(0)
    if moe:
        model = MixtralForCausalLM(
            MixtralConfig(
                **sizes,
                **special,
                num_local_experts=2,
                num_experts_per_tok=1,
                router_aux_loss_coef=0.5,
                output_router_logits=True,
            )
        )
    else:
        model = LlamaForCausalLM(LlamaConfig(**sizes, **special, tie_word_embeddings=True))
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return str(path)


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> str:
    """A 1-layer Llama (hidden 16) and the project's offline word-level tokenizer, saved to a folder."""
    return _save_tiny_model(tmp_path_factory.mktemp("tiny-llama"))


@pytest.fixture(scope="session")
def tiny_moe_model(tmp_path_factory) -> str:
    """A 1-layer, 2-expert Mixtral that returns its router logits, so TRL adds the MoE aux loss."""
    return _save_tiny_model(tmp_path_factory.mktemp("tiny-mixtral"), moe=True)


def character_reward(completions, **kwargs):
    """Characters in the completion, over 10: differs between samples, so GRPO's advantages are not all zero."""
    return [len(c) / 10 for c in completions]


def prompt_dataset(n: int = 4):
    from datasets import Dataset

    topics = ["cats", "dogs", "sea", "rain", "sun", "trees", "music", "food"]
    return Dataset.from_dict({"prompt": [f"tell me about {topics[i % len(topics)]} :" for i in range(n)]})


def make_trainer(model_path: str, output_dir, stock: bool = False, **overrides):
    """A GRPOTrainer on CPU in float32: ours (``openrlhf_cfpo.trl``) or, with ``stock=True``, TRL's own."""
    import trl

    from openrlhf_cfpo import trl as cfpo_trl

    config_cls, trainer_cls = (
        (trl.GRPOConfig, trl.GRPOTrainer) if stock else (cfpo_trl.GRPOConfig, cfpo_trl.GRPOTrainer)
    )
    settings = dict(
        output_dir=str(output_dir),
        use_cpu=True,
        bf16=False,
        gradient_checkpointing=False,
        report_to="none",
        per_device_train_batch_size=BATCH,
        num_generations=2,
        max_completion_length=COMPLETION_LEN,
        gradient_accumulation_steps=ACCUMULATION,
        seed=0,
        save_strategy="no",
        logging_steps=1,
        model_init_kwargs={"dtype": "float32"},
    )
    settings.update(overrides)
    if stock:
        settings.pop("policy_loss_type", None)
    trainer = trainer_cls(
        model=model_path, reward_funcs=character_reward, args=config_cls(**settings), train_dataset=prompt_dataset()
    )
    # Set by Trainer's training loop; compute_loss called directly needs it.
    trainer.current_gradient_accumulation_steps = trainer.args.gradient_accumulation_steps
    return trainer


def make_batch(trainer, seed: int = 0, log_ratio_noise: float = 0.3, ref_noise: float = 0.5) -> dict:
    """An input dict as TRL's generation step returns it, built by hand.

    Completions have different lengths, advantages both signs, and old / reference log-probs are the model's
    own plus noise, so the ratio is off 1 and the clip binds on some tokens.
    """
    g = torch.Generator().manual_seed(seed)
    vocab = trainer.model.config.vocab_size
    prompt_ids = torch.randint(4, vocab, (BATCH, PROMPT_LEN), generator=g)
    prompt_mask = torch.ones(BATCH, PROMPT_LEN, dtype=torch.long)
    prompt_mask[1, :2] = 0  # left padding
    completion_ids = torch.randint(4, vocab, (BATCH, COMPLETION_LEN), generator=g)
    lengths = torch.tensor([COMPLETION_LEN, 3, 5, COMPLETION_LEN - 1])
    completion_mask = (torch.arange(COMPLETION_LEN)[None, :] < lengths[:, None]).long()
    inputs = {
        "prompt_ids": prompt_ids,
        "prompt_mask": prompt_mask,
        "completion_ids": completion_ids,
        "completion_mask": completion_mask,
        "advantages": torch.tensor([1.0, -0.8, 0.6, -1.2]),
        "num_items_in_batch": completion_mask.sum() * ACCUMULATION,  # the generation batch spans the window
    }
    with torch.no_grad():
        log_probs, _, _ = trainer._get_per_token_logps_and_entropies(
            trainer.model,
            torch.cat([prompt_ids, completion_ids], 1),
            torch.cat([prompt_mask, completion_mask], 1),
            COMPLETION_LEN,
        )
    inputs["old_per_token_logps"] = log_probs + log_ratio_noise * torch.randn(log_probs.shape, generator=g)
    inputs["ref_per_token_logps"] = log_probs + ref_noise * torch.randn(log_probs.shape, generator=g)
    return inputs


def loss_grads_metrics(trainer, inputs, mode: str = "train", calls: int = 1):
    """``(losses, {param: grad}, metrics)`` of ``calls`` compute_loss calls on ``inputs`` (gradients summed)."""
    trainer.model.train(mode == "train")
    trainer.model.zero_grad()
    trainer._metrics[mode].clear()
    losses = []
    for _ in range(calls):
        loss = trainer.compute_loss(trainer.model, dict(inputs))
        loss.backward()
        losses.append(loss.detach())
    grads = {n: p.grad.clone() for n, p in trainer.model.named_parameters() if p.grad is not None}
    return losses, grads, {k: list(v) for k, v in trainer._metrics[mode].items()}


def trl_loss_from_log_probs(
    trainer,
    log_probs: torch.Tensor,
    old_log_probs: torch.Tensor,
    advantages: torch.Tensor,
    mask: torch.Tensor,
    ref_log_probs: torch.Tensor | None = None,
    num_items_in_batch: torch.Tensor | None = None,
) -> torch.Tensor:
    """TRL's scalar loss for given per-token log-probs, from ``trainer``'s own ``_compute_loss``.

    ``log_probs`` / ``old_log_probs``: (B, T) float, the policy's and the rollout policy's per-token log-probs
    (``log_probs`` may require grad: the loss is differentiable w.r.t. it); ``advantages``: (B,);
    ``mask``: (B, T), 1 on action tokens. ``ref_log_probs`` is needed when ``trainer.beta != 0``;
    ``num_items_in_batch`` (dapo's token count over the accumulation window) defaults to ``mask.sum()``.

    The model's forward is replaced by ``log_probs`` (entropies 0); the trainer is put in train mode with
    ``current_gradient_accumulation_steps = 1``, so build it with ``gradient_accumulation_steps=1`` for an
    unscaled loss. Works for ``openrlhf_cfpo.trl.GRPOTrainer`` (any policy_loss_type) and ``trl.GRPOTrainer``;
    the metrics land in ``trainer._metrics["train"]``.
    """
    batch, length = log_probs.shape
    inputs = {
        "prompt_ids": torch.zeros(batch, 1, dtype=torch.long),
        "prompt_mask": torch.ones(batch, 1, dtype=torch.long),
        "completion_ids": torch.zeros(batch, length, dtype=torch.long),
        "completion_mask": mask.long(),
        "advantages": advantages,
        "old_per_token_logps": old_log_probs,
        "num_items_in_batch": mask.sum() if num_items_in_batch is None else num_items_in_batch,
    }
    if ref_log_probs is not None:
        inputs["ref_per_token_logps"] = ref_log_probs

    def given_log_probs(model, input_ids, attention_mask, logits_to_keep, **kwargs):
        return log_probs, torch.zeros_like(log_probs.detach()), None

    trainer.model.train()
    trainer.current_gradient_accumulation_steps = 1
    with mock.patch.object(trainer, "_get_per_token_logps_and_entropies", given_log_probs):
        return trainer.compute_loss(trainer.model, inputs)


# Test modules are imported in importlib mode and cannot import this file: the helpers reach them as fixtures.


@pytest.fixture(name="trl_loss_from_log_probs")
def trl_loss_from_log_probs_fixture():
    return trl_loss_from_log_probs


@pytest.fixture(name="make_trainer")
def make_trainer_fixture(tiny_model, tmp_path):
    """``make_trainer(stock=False, model=tiny_model, **GRPOConfig overrides)``."""
    counter = iter(range(1000))

    def make(stock: bool = False, model: str | None = None, **overrides):
        return make_trainer(model or tiny_model, tmp_path / f"run{next(counter)}", stock=stock, **overrides)

    return make


@pytest.fixture(name="make_batch")
def make_batch_fixture():
    return make_batch


@pytest.fixture(name="loss_grads_metrics")
def loss_grads_metrics_fixture():
    return loss_grads_metrics
