"""End to end: TRL's own training loop with the CFPO surrogate, off-policy, on CPU."""

import pytest
import torch


def test_cfpo_trains_a_tiny_model_off_policy_and_logs_its_penalty(make_trainer):
    # num_iterations=2: every generation batch is trained on twice, the second time with r != 1.
    trainer = make_trainer(
        policy_loss_type="cfpo",
        loss_type="grpo",
        num_iterations=2,
        gradient_accumulation_steps=1,
        max_steps=4,
        learning_rate=5e-2,
        warmup_steps=0,
    )
    before = {name: p.detach().clone() for name, p in trainer.model.named_parameters()}

    trainer.train()

    logs = [entry for entry in trainer.state.log_history if "cfpo_penalty" in entry]
    assert len(logs) == 4
    assert all("clip_ratio/region_mean" in entry and "ratio_dev_mean" in entry for entry in logs)
    # The first pass over a batch is on-policy (r = 1, no penalty); the second one is not.
    assert logs[0]["cfpo_penalty"] == pytest.approx(0.0, abs=1e-8)
    assert any(entry["cfpo_penalty"] > 0 and entry["ratio_dev_mean"] > 0 for entry in logs[1::2])
    assert any(not torch.equal(before[name], p) for name, p in trainer.model.named_parameters())
