"""The OpenRLHF drop-in PolicyLoss: aggregation, metrics, checks and numerics on hand-computed cases."""

import pytest
import torch

from openrlhf_cfpo.losses import POLICY_LOSSES
from openrlhf_cfpo.openrlhf import PolicyLoss

import cfpo_oracle

EPS = 0.2


def oracle_per_token(logp, old, adv):
    return torch.tensor(
        cfpo_oracle.cfpo_loss_grid(cfpo_oracle.ratios(logp.tolist(), old.tolist()), adv.tolist()), dtype=torch.float64
    )


def test_cfpo_loss_is_equation_7_averaged_over_action_tokens(random_batch):
    logp, old, adv, mask = random_batch()
    loss, *_ = PolicyLoss(policy_loss_type="cfpo")(logp, old, adv, action_mask=mask)
    expected = oracle_per_token(logp, old, adv)[mask].mean()
    assert loss.item() == pytest.approx(expected.item(), rel=1e-12)


def test_cfpo_seq_mean_token_mean_averages_each_sequence_first(random_batch):
    logp, old, adv, mask = random_batch()
    loss, *_ = PolicyLoss(policy_loss_type="cfpo", token_level_loss=False)(logp, old, adv, action_mask=mask)
    per_token = oracle_per_token(logp, old, adv)
    expected = torch.stack([per_token[i][mask[i]].mean() for i in range(len(mask))]).mean()
    assert loss.item() == pytest.approx(expected.item(), rel=1e-12)


@pytest.mark.parametrize("name", ["ppo", "cfpo"])
def test_at_ratio_one_the_gradient_is_the_plain_policy_gradient(name, random_batch):
    _, old, adv, mask = random_batch()
    logp = old.clone().requires_grad_(True)
    loss, *_ = PolicyLoss(policy_loss_type=name)(logp, old, adv, action_mask=mask)
    loss.backward()
    expected = -adv * mask / mask.sum()
    torch.testing.assert_close(logp.grad, expected, rtol=1e-12, atol=1e-15)


def test_clip_ratio_counts_tokens_outside_the_trust_region_in_the_direction_of_a_for_both_losses():
    old = torch.zeros(1, 6, dtype=torch.float64)
    ratio = torch.tensor([[1.3, 1.1, 0.7, 0.9, 1.3, 0.7]], dtype=torch.float64)
    adv = torch.tensor([[1.0, 1.0, -1.0, -1.0, -1.0, 1.0]], dtype=torch.float64)
    # outside in A's direction: token 0 (r > 1.2, A > 0) and token 2 (r < 0.8, A < 0) -> 2 of 6
    for name in ("ppo", "cfpo"):
        _, clip_ratio, *_ = PolicyLoss(policy_loss_type=name)(ratio.log(), old, adv)
        assert clip_ratio.item() == pytest.approx(2 / 6)


def test_ppo_kl_is_the_mean_log_ratio_old_over_new(random_batch):
    logp, old, adv, mask = random_batch()
    _, _, ppo_kl, _, _ = PolicyLoss(policy_loss_type="cfpo")(logp, old, adv, action_mask=mask)
    assert ppo_kl.item() == pytest.approx((old - logp)[mask].mean().item(), rel=1e-12)


def test_ratio_deviation_and_penalty_metrics_cover_action_tokens_only(random_batch):
    logp, old, adv, mask = random_batch()
    metrics = PolicyLoss(policy_loss_type="cfpo").compute(logp, old, adv, action_mask=mask).metrics
    dev = ((logp - old).exp() - 1).abs()[mask]
    ratios = cfpo_oracle.ratios(logp.tolist(), old.tolist())
    penalty = torch.tensor(
        [[cfpo_oracle.cfpo_penalty(r, a) for r, a in zip(rr, aa)] for rr, aa in zip(ratios, adv.tolist())],
        dtype=torch.float64,
    )[mask]
    assert metrics["ratio_dev_mean"].item() == pytest.approx(dev.mean().item(), rel=1e-12)
    outside = ((logp - old).exp() - 1).abs()[mask] > EPS  # the widths are symmetric here
    assert metrics["ratio_outside_region"].item() == pytest.approx(outside.double().mean().item(), rel=1e-12)
    assert metrics["cfpo_penalty"].item() == pytest.approx(penalty.double().mean().item(), rel=1e-12)


def test_dual_clip_is_rejected_for_cfpo():
    with pytest.raises(ValueError, match="dual_clip"):
        PolicyLoss(policy_loss_type="cfpo", dual_clip=3.0)


@pytest.mark.parametrize("eps", [0.0, -0.1])
def test_non_positive_eps_is_rejected(eps):
    with pytest.raises(ValueError, match="eps"):
        PolicyLoss(policy_loss_type="cfpo", clip_eps_low=eps, clip_eps_high=eps)


def test_unknown_policy_loss_lists_the_known_ones():
    with pytest.raises(ValueError) as err:
        PolicyLoss(policy_loss_type="grpo-clip")
    for name in POLICY_LOSSES:
        assert name in str(err.value)


@pytest.mark.parametrize("name", ["ppo", "cfpo"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_extreme_log_ratios_give_a_finite_loss_and_finite_gradients(name, dtype):
    old = torch.zeros(2, 4, dtype=dtype)
    logp = torch.tensor([[50.0, -50.0, 30.0, -30.0], [50.0, -50.0, 0.1, 0.0]], dtype=dtype, requires_grad=True)
    adv = torch.tensor([[1e4], [-1e4]], dtype=dtype).expand(2, 4)
    loss, clip_ratio, ppo_kl, _, _ = PolicyLoss(policy_loss_type=name)(logp, old, adv)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(clip_ratio) and torch.isfinite(ppo_kl)
    assert torch.isfinite(logp.grad).all()


@pytest.mark.parametrize("name", ["ppo", "cfpo"])
@pytest.mark.parametrize("token_level_loss", [True, False])
def test_fully_masked_rows_never_produce_nan(name, token_level_loss, random_batch):
    logp, old, adv, mask = random_batch()
    mask[3] = False
    logp = logp.detach().clone()
    logp[3] = float("nan")  # garbage in padding must not leak
    old[3, :2] = float("-inf")
    logp.requires_grad_(True)
    loss_fn = PolicyLoss(policy_loss_type=name, token_level_loss=token_level_loss)
    loss, clip_ratio, ppo_kl, _, _ = loss_fn(logp, old, adv, action_mask=mask)
    loss.backward()
    assert all(torch.isfinite(t) for t in (loss, clip_ratio, ppo_kl))
    assert torch.isfinite(logp.grad).all() and (logp.grad[3] == 0).all()

    empty = torch.zeros_like(mask)
    loss, clip_ratio, ppo_kl, _, _ = loss_fn(logp, old, adv, action_mask=empty)
    assert loss.item() == 0.0 and clip_ratio.item() == 0.0 and ppo_kl.item() == 0.0
