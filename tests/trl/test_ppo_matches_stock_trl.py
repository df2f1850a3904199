"""With policy_loss_type="ppo" the replaced ``_compute_loss`` is TRL 1.16's own: same loss, gradients and metrics."""

import pytest
import torch

LOSS_TYPES = ["grpo", "bnpo", "dr_grpo", "dapo"]
# Asymmetric widths, so a swap of eps_low and eps_high would show.
EPS = dict(epsilon=0.2, epsilon_high=0.28)


def assert_same_step(ours, stock, inputs, loss_grads_metrics, mode="train", calls=1) -> dict:
    """Both trainers give the same losses, parameter gradients and TRL metrics; returns TRL's metrics."""
    losses, grads, metrics = loss_grads_metrics(ours, inputs, mode, calls)
    stock_losses, stock_grads, stock_metrics = loss_grads_metrics(stock, inputs, mode, calls)
    for loss, stock_loss in zip(losses, stock_losses):
        torch.testing.assert_close(loss, stock_loss, rtol=1e-6, atol=1e-8)
    assert stock_grads and grads.keys() == stock_grads.keys()
    for name, grad in stock_grads.items():
        scale = grad.abs().max().item()
        assert scale > 0, name
        # float32 rounding only: autograd may sum a parameter's gradient contributions in another order
        torch.testing.assert_close(
            grads[name], grad, rtol=1e-5, atol=1e-6 * scale, msg=lambda m, name=name: f"{name}: {m}"
        )
    for name, values in stock_metrics.items():
        assert metrics[name] == pytest.approx(values, rel=1e-6, abs=1e-9, nan_ok=True), name
    # What ours logs besides TRL's metrics: the registry's diagnostics (TRL's clip ratio already covers clip_ratio).
    assert set(metrics) - set(stock_metrics) == set(ours.policy_surrogate.metrics) - {"clip_ratio"}
    assert "ratio_dev_mean" in metrics
    return stock_metrics


@pytest.mark.parametrize("beta", [0.0, 0.1])
@pytest.mark.parametrize("loss_type", LOSS_TYPES)
def test_ppo_override_matches_stock_trl_loss_gradients_and_metrics(
    make_trainer, make_batch, loss_grads_metrics, loss_type, beta
):
    ours = make_trainer(policy_loss_type="ppo", loss_type=loss_type, beta=beta, **EPS)
    stock = make_trainer(stock=True, loss_type=loss_type, beta=beta, **EPS)
    inputs = make_batch(stock)

    metrics = assert_same_step(ours, stock, inputs, loss_grads_metrics)

    # The ratio is off 1, so the clip binds on both sides somewhere but not everywhere: the test can see it.
    assert metrics["clip_ratio/low_mean"][0] > 0 and metrics["clip_ratio/high_mean"][0] > 0
    assert metrics["clip_ratio/region_mean"][0] < 1
    assert ("kl" in metrics) == (beta != 0.0)


def _shift_negative_sequence_off_policy(inputs, trainers):
    # Sequence 1 has A < 0; its rollout log-probs 0.5 above the policy's put it past the off-policy threshold.
    inputs["old_per_token_logps"][1] += 0.5


def _tool_mask(inputs, trainers):
    tool_mask = torch.ones_like(inputs["completion_mask"])
    tool_mask[0, 1:3] = 0
    tool_mask[3, 2] = 0
    inputs["tool_mask"] = tool_mask


def _vllm_importance_sampling(inputs, trainers):
    # Built without vLLM, then switched on: _compute_loss only reads these two switches and the ratio in inputs.
    for trainer in trainers:
        trainer.use_vllm, trainer.vllm_importance_sampling_correction = True, True
    g = torch.Generator().manual_seed(1)
    inputs["importance_sampling_ratio"] = 0.5 + torch.rand(inputs["completion_ids"].shape, generator=g)


def _on_policy(inputs, trainers):
    del inputs["old_per_token_logps"]  # TRL leaves it out when each batch is used once


def _per_token_advantages(inputs, trainers):
    g = torch.Generator().manual_seed(2)
    inputs["advantages"] = torch.randn(inputs["completion_ids"].shape, generator=g)


FEATURES = {
    # id: (config overrides, edit of inputs / trainers, mode, compute_loss calls)
    "top_entropy_quantile": ({"top_entropy_quantile": 0.5}, None, "train", 1),
    "entropy_bonus": ({"entropy_coef": 0.05}, None, "train", 1),
    # two calls: the first closes the gate (no entropy measured yet) and updates the coefficient, the second uses it
    "adaptive_entropy_bonus": (
        {"use_adaptive_entropy": True, "entropy_coef": 0.05, "entropy_target": 10.0},
        None,
        "train",
        2,
    ),
    "off_policy_mask_threshold": ({"off_policy_mask_threshold": 0.05}, _shift_negative_sequence_off_policy, "train", 1),
    "tool_mask": ({}, _tool_mask, "train", 1),
    "vllm_importance_sampling": ({}, _vllm_importance_sampling, "train", 1),
    "on_policy_without_old_log_probs": ({}, _on_policy, "train", 1),
    "per_token_advantages": ({}, _per_token_advantages, "train", 1),
    "eval_mode_grpo": ({"loss_type": "grpo"}, None, "eval", 1),
    "eval_mode_dapo": ({}, None, "eval", 1),
    "bias_correction_kl_off": ({"use_bias_correction_kl": False}, None, "train", 1),
}


@pytest.mark.parametrize("feature", list(FEATURES))
def test_ppo_override_matches_stock_trl_with_each_optional_feature(
    make_trainer, make_batch, loss_grads_metrics, feature
):
    overrides, edit, mode, calls = FEATURES[feature]
    settings = {"loss_type": "dapo", "beta": 0.05, **EPS, **overrides}
    ours, stock = make_trainer(policy_loss_type="ppo", **settings), make_trainer(stock=True, **settings)
    inputs = make_batch(stock)
    if edit is not None:
        edit(inputs, (ours, stock))

    metrics = assert_same_step(ours, stock, inputs, loss_grads_metrics, mode=mode, calls=calls)

    if "entropy_coef" in overrides:
        assert metrics["entropy_coef"] and metrics["policy_loss"]
    if feature == "adaptive_entropy_bonus":
        assert ours.entropy_coef == stock.entropy_coef > 0.05  # entropy (about 4.4) is under target: it grew


def test_ppo_override_matches_stock_trl_with_moe_aux_loss(make_trainer, make_batch, loss_grads_metrics, tiny_moe_model):
    ours = make_trainer(policy_loss_type="ppo", model=tiny_moe_model, loss_type="bnpo", **EPS)
    stock = make_trainer(stock=True, model=tiny_moe_model, loss_type="bnpo", **EPS)
    assert ours.aux_loss_enabled and stock.aux_loss_enabled

    metrics = assert_same_step(ours, stock, make_batch(stock), loss_grads_metrics)

    assert metrics["aux_loss"][0] > 0
