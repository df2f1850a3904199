"""The surrogate registry: the paper's formulas, their gradients, the one validation, declared metrics."""

import pytest
import torch

from openrlhf_cfpo.losses import (
    LOGGED_AS,
    POLICY_LOSSES,
    SHARED_METRICS,
    check_policy_loss_args,
    get_policy_loss,
    logged_name,
    register_policy_loss,
    token_policy_loss,
    trust_region,
)
from openrlhf_cfpo.ops import token_means

import cfpo_oracle

EPS = 0.2


def grad_wrt_ratio(name, ratio_value, advantage, eps_low=EPS, eps_high=EPS):
    ratio = torch.tensor([ratio_value], dtype=torch.float64, requires_grad=True)
    loss, _ = get_policy_loss(name)(ratio, torch.tensor([advantage], dtype=torch.float64), eps_low, eps_high)
    loss.sum().backward()
    return ratio.grad.item()


@pytest.mark.parametrize("advantage", [1.0, -1.0, 3.5, -0.25])
def test_cfpo_optimum_is_at_one_plus_sign_a_times_eps(advantage):
    r_star = 1 + EPS * (1 if advantage > 0 else -1)
    assert grad_wrt_ratio("cfpo", r_star, advantage) == pytest.approx(0.0, abs=1e-12)
    # and it is a maximum of the objective: the loss rises on both sides
    assert grad_wrt_ratio("cfpo", r_star - 0.05, advantage) < 0 < grad_wrt_ratio("cfpo", r_star + 0.05, advantage)


def test_cfpo_asymmetric_eps_puts_the_optimum_at_eps_high_above_and_eps_low_below():
    eps_low, eps_high = 0.2, 0.28
    assert grad_wrt_ratio("cfpo", 1 + eps_high, 2.0, eps_low, eps_high) == pytest.approx(0.0, abs=1e-12)
    assert grad_wrt_ratio("cfpo", 1 - eps_low, -2.0, eps_low, eps_high) == pytest.approx(0.0, abs=1e-12)
    assert grad_wrt_ratio("cfpo", 1 + eps_low, 2.0, eps_low, eps_high) != pytest.approx(0.0, abs=1e-6)


@pytest.mark.parametrize("ratio,advantage", [(1.5, 1.0), (2.0, 0.7), (0.5, -1.0), (0.3, -2.0)])
def test_cfpo_gradient_is_nonzero_where_clip_is_flat(ratio, advantage):
    assert grad_wrt_ratio("ppo", ratio, advantage) == 0.0
    g = grad_wrt_ratio("cfpo", ratio, advantage)
    # A restoring force: gradient descent on the loss moves r back towards r*.
    r_star = 1 + EPS * (1 if advantage > 0 else -1)
    assert g != 0.0 and (g > 0) == (ratio > r_star)


def test_cfpo_per_token_loss_is_equation_7():
    g = torch.Generator().manual_seed(0)
    ratio = (0.5 + torch.rand(4, 5, generator=g, dtype=torch.float64)).tolist()
    adv = torch.randn(4, 5, generator=g, dtype=torch.float64).tolist()
    for eps_low, eps_high in [(EPS, EPS), (0.2, 0.28)]:
        loss, _ = get_policy_loss("cfpo")(
            torch.tensor(ratio, dtype=torch.float64), torch.tensor(adv, dtype=torch.float64), eps_low, eps_high
        )
        expected = torch.tensor(cfpo_oracle.cfpo_loss_grid(ratio, adv, eps_low, eps_high), dtype=torch.float64)
        torch.testing.assert_close(loss, expected, rtol=1e-12, atol=1e-15)


def test_every_surrogate_returns_exactly_the_metrics_it_declares(random_batch):
    logp, old, adv, mask = random_batch()
    for name, surrogate in POLICY_LOSSES.items():
        metrics = token_policy_loss(surrogate, logp, old, adv, mask, EPS, EPS).metrics
        assert set(metrics) == set(surrogate.metrics), name
        assert set(SHARED_METRICS) <= set(metrics)
    assert "cfpo_penalty" in POLICY_LOSSES["cfpo"].metrics and "cfpo_penalty" not in POLICY_LOSSES["ppo"].metrics


def test_per_token_metrics_are_the_clip_indicator_the_log_ratio_the_ratio_deviation_and_the_penalty():
    ratio = torch.tensor([[1.3, 1.1, 0.7, 0.9, 1.3, 0.7]], dtype=torch.float64)
    adv = torch.tensor([[1.0, 1.0, -1.0, -1.0, -1.0, 1.0]], dtype=torch.float64)
    mask = torch.ones_like(ratio, dtype=torch.bool)
    metrics = token_policy_loss(
        get_policy_loss("cfpo"), ratio.log(), torch.zeros_like(ratio), adv, mask, EPS, EPS
    ).metrics
    # outside in A's direction: token 0 (r > 1.2, A > 0) and token 2 (r < 0.8, A < 0)
    assert metrics["clip_ratio"].tolist() == [[1.0, 0.0, 1.0, 0.0, 0.0, 0.0]]
    torch.testing.assert_close(metrics["ppo_kl"], -ratio.log())
    torch.testing.assert_close(metrics["ratio_dev_mean"], (ratio - 1).abs())
    assert metrics["ratio_outside_region"].tolist() == [[1.0, 0.0, 1.0, 0.0, 1.0, 1.0]]
    expected = [[cfpo_oracle.cfpo_penalty(r, a) for r, a in zip(ratio[0].tolist(), adv[0].tolist())]]
    torch.testing.assert_close(metrics["cfpo_penalty"], torch.tensor(expected, dtype=torch.float64))


def test_token_means_average_over_unmasked_tokens_only():
    values = torch.tensor([[0.1, 0.5, 7.0], [0.3, 0.0, 9.0]])
    mask = torch.tensor([[True, True, False], [True, False, False]])
    for as_given in (mask, mask.long(), mask.float()):  # OpenRLHF's action_mask is int64
        out = token_means({"a": values, "b": 2 * values}, as_given)
        assert out["a"].item() == pytest.approx(0.3) and out["b"].item() == pytest.approx(0.6)
    assert token_means({"a": values}, torch.zeros_like(mask))["a"].item() == 0.0


def test_every_framework_logs_the_clip_ratio_under_its_own_name_and_the_rest_under_the_registry_name():
    assert [logged_name(f, "clip_ratio") for f in ("openrlhf", "trl", "verl")] == [
        "ppo_clip_ratio",
        "clip_ratio/region_mean",
        "actor/pg_clipfrac",
    ]
    assert [logged_name(f, "cfpo_penalty") for f in LOGGED_AS] == ["cfpo_penalty", "cfpo_penalty", "actor/cfpo_penalty"]


def test_trust_region_takes_each_sides_width_where_given_else_the_symmetric_eps():
    assert trust_region(0.2) == (0.2, 0.2)
    assert trust_region(0.2, 0.1, 0.3) == (0.1, 0.3)
    assert trust_region(0.2, eps_high=0.28) == (0.2, 0.28)


@pytest.mark.parametrize("name", ["cfpo", "ppo"])
@pytest.mark.parametrize("eps_low,eps_high", [(0.0, 0.2), (0.2, -0.1)])
def test_non_positive_eps_is_rejected_by_the_one_validation(name, eps_low, eps_high):
    with pytest.raises(ValueError, match="trust-region width"):
        check_policy_loss_args(name, eps_low, eps_high)


def test_dual_clip_is_accepted_only_by_surrogates_that_declare_it():
    check_policy_loss_args("ppo", 0.2, 0.2, dual_clip=3.0)
    with pytest.raises(ValueError, match="drop dual_clip"):
        check_policy_loss_args("cfpo", 0.2, 0.2, dual_clip=3.0)
    with pytest.raises(ValueError, match="drop dual_clip"):  # called directly, too
        get_policy_loss("cfpo")(torch.ones(2), torch.ones(2), 0.2, 0.2, dual_clip=3.0)
    with pytest.raises(ValueError, match="> 1.0"):
        check_policy_loss_args("ppo", 0.2, 0.2, dual_clip=0.5)


def test_unknown_name_lists_the_registered_losses():
    with pytest.raises(ValueError, match="known policy losses: cfpo, ppo"):
        get_policy_loss("grpo-clip")


def test_a_newly_registered_loss_reaches_the_openrlhf_loss_and_the_local_engine_without_other_edits(random_batch):
    from openrlhf_cfpo.local.config import build_parser
    from openrlhf_cfpo.openrlhf import PolicyLoss

    @register_policy_loss("half_pg", metrics=("half_pg_scale",))
    def half_pg(ratio, advantages, eps_low, eps_high, dual_clip=None):
        return -0.5 * ratio * advantages, {"half_pg_scale": torch.full_like(ratio, 0.5)}

    try:
        logp, old, adv, mask = random_batch()
        out = PolicyLoss(policy_loss_type="half_pg").compute(logp, old, adv, action_mask=mask)
        expected = (-0.5 * (logp - old).exp() * adv)[mask].mean()
        assert out.loss.item() == pytest.approx(expected.item(), rel=1e-12)
        assert out.metrics["half_pg_scale"].item() == 0.5
        args = build_parser().parse_args(["--actor.policy_loss_type", "half_pg"])
        assert getattr(args, "actor.policy_loss_type") == "half_pg"
    finally:
        del POLICY_LOSSES["half_pg"]


def test_the_ratio_is_one_on_padding_whatever_it_holds_and_its_gradient_is_r_on_action_tokens():
    from openrlhf_cfpo.ops import ratio_from_log_probs

    logp = torch.tensor([[0.5, float("nan"), float("inf"), 30.0]], dtype=torch.float64, requires_grad=True)
    old = torch.tensor([[0.25, 0.0, float("-inf"), 0.0]], dtype=torch.float64, requires_grad=True)
    mask = torch.tensor([[1, 0, 0, 1]])  # int64, as OpenRLHF passes it
    log_ratio, ratio = ratio_from_log_probs(logp, old, mask)
    # log r is clamped as r is, so ppo_kl reads the ratio the loss sees
    assert log_ratio.tolist() == [[0.25, 0.0, 0.0, 20.0]] and ratio[0, 1:3].tolist() == [1.0, 1.0]
    assert ratio[0, 3].item() == pytest.approx(torch.tensor(20.0, dtype=torch.float64).exp().item())  # clamped
    (ratio * torch.tensor([[2.0, 3.0, 4.0, 5.0]], dtype=torch.float64)).sum().backward()
    r0 = torch.tensor(0.25, dtype=torch.float64).exp().item()
    # d r / d log pi = r inside the clamp, 0 beyond it and on padding
    assert logp.grad.tolist() == [[2.0 * r0, 0.0, 0.0, 0.0]] and old.grad.tolist() == [[-2.0 * r0, 0.0, 0.0, 0.0]]
    inner = torch.tensor([[1, 1, 0]])
    torch.autograd.gradcheck(
        lambda a, b: ratio_from_log_probs(a, b, inner)[1],
        (
            torch.randn(1, 3, dtype=torch.float64, requires_grad=True),
            torch.randn(1, 3, dtype=torch.float64, requires_grad=True),
        ),
    )


@pytest.mark.parametrize("eps_low,eps_high", [(0.2, 0.2), (0.2, 0.28)])
def test_clip_indicator_is_where_ppos_clip_binds(eps_low, eps_high):
    from openrlhf_cfpo.losses import outside_trust_region

    g = torch.Generator().manual_seed(3)
    ratio = torch.rand(2000, generator=g, dtype=torch.float64) + 0.5
    adv = torch.randn(2000, generator=g, dtype=torch.float64)
    adv[::7] = 0.0
    surr1, surr2 = ratio * adv, ratio.clamp(1 - eps_low, 1 + eps_high) * adv
    assert torch.equal(outside_trust_region(ratio, adv, eps_low, eps_high), surr2 < surr1)
