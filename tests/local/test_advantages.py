"""Advantages, KL-in-reward and returns against OpenRLHF's formulas, on hand-computed examples."""

import math

import torch

from openrlhf_cfpo.advantages import group_baseline
from openrlhf_cfpo.local.advantages import approx_kl, compute_advantages, cumulative_returns, per_token_rewards


def test_rloo_advantages_match_the_leave_one_out_formula():
    rewards = torch.tensor([1.0, 2.0, 3.0, 6.0, 0.0, 0.0, 1.0, 3.0])
    shaped = group_baseline(rewards, 4, "rloo")
    # r_i minus the mean of the other three samples of its prompt, written out by hand.
    expected = [1 - 11 / 3, 2 - 10 / 3, 3 - 9 / 3, 6 - 6 / 3, 0 - 4 / 3, 0 - 4 / 3, 1 - 3 / 3, 3 - 1 / 3]
    assert torch.allclose(shaped, torch.tensor(expected), atol=1e-6)


def test_reinforce_baseline_subtracts_the_group_mean():
    shaped = group_baseline(torch.tensor([1.0, 3.0, 10.0, 20.0]), 2, "reinforce_baseline")
    assert torch.allclose(shaped, torch.tensor([-1.0, 1.0, -5.0, 5.0]))


def test_group_norm_divides_by_the_unbiased_group_std():
    shaped = group_baseline(torch.tensor([1.0, 2.0, 3.0]), 3, "group_norm")
    # mean 2, unbiased std sqrt(((1)^2 + 0 + 1^2) / 2) = 1
    assert torch.allclose(shaped, torch.tensor([-1.0, 0.0, 1.0]), atol=1e-6)


def test_kl_is_folded_into_every_token_and_the_reward_sits_on_the_last_one():
    kl = torch.tensor([[0.1, 0.2, -0.1, 0.0]])
    mask = torch.tensor([[1, 1, 1, 0]])
    rewards = per_token_rewards(torch.tensor([2.0]), kl, mask, kl_coef=0.5, clip_range=(-10, 10))
    assert torch.allclose(rewards, torch.tensor([[-0.05, -0.1, 0.05 + 2.0, 0.0]]))
    returns = cumulative_returns(rewards, mask.float())
    assert torch.allclose(returns, torch.tensor([[1.9, 1.95, 2.05, 0.0]]))


def test_reward_clip_range_bounds_the_shaped_reward_before_it_is_placed():
    rewards = per_token_rewards(torch.tensor([5.0, -5.0]), torch.zeros(2, 2), torch.ones(2, 2), 0.0, clip_range=(-1, 2))
    assert rewards[:, -1].tolist() == [2.0, -1.0] and rewards[:, 0].tolist() == [0.0, 0.0]


def test_rloo_advantages_of_a_rollout_are_returns_of_the_kl_shaped_reward():
    rewards = torch.tensor([1.0, 3.0])
    kl = torch.tensor([[0.2, 0.4], [0.0, 0.0]])
    mask = torch.tensor([[1, 1], [1, 0]])
    adv, ret = compute_advantages(rewards, kl, mask, 2, "rloo", kl_coef=0.1, clip_range=(-10, 10))
    # sample 0: shaped 1 - 3 = -2 on token 1; tokens pay 0.02 and 0.04 of KL.
    assert torch.allclose(ret, torch.tensor([[-0.02 - 0.04 - 2.0, -0.04 - 2.0], [2.0, 0.0]]))
    assert torch.equal(adv, ret)


def test_reinforce_baseline_advantages_are_whitened_over_response_tokens():
    adv, _ = compute_advantages(
        torch.tensor([0.0, 1.0, 5.0, 2.0]),
        torch.zeros(4, 3),
        torch.tensor([[1, 1, 0]] * 4),
        2,
        "reinforce_baseline",
        0.0,
        None,
    )
    valid = adv[:, :2].flatten()
    assert math.isclose(valid.mean().item(), 0.0, abs_tol=1e-6)
    assert math.isclose(valid.var(unbiased=False).item(), 1.0, rel_tol=1e-5)


def test_k1_kl_is_the_clamped_log_ratio():
    kl = approx_kl(torch.tensor([-1.0, 0.5, 30.0]), torch.tensor([-2.0, 0.5, 0.0]), "k1")
    assert kl.tolist() == [1.0, 0.0, 10.0]
