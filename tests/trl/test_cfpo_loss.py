"""policy_loss_type="cfpo" in TRL: paper eq. 7 per token, aggregated as TRL's loss_type says."""

import pytest
import torch

from openrlhf_cfpo.losses import LOGGED_AS, logged_name

import cfpo_oracle

EPS_LOW, EPS_HIGH = 0.2, 0.28
MAX_COMPLETION_LEN = 6


def random_rollout(seed=0, batch=4, length=MAX_COMPLETION_LEN, spread=0.4):
    """Per-token log-probs (requiring grad), rollout log-probs off by up to ``spread``, advantages of both signs."""
    g = torch.Generator().manual_seed(seed)
    log_probs = (-3 * torch.rand(batch, length, generator=g)).requires_grad_()
    old_log_probs = log_probs.detach() + spread * (2 * torch.rand(batch, length, generator=g) - 1)
    advantages = torch.tensor([1.5, -0.5, 0.7, -1.1])
    mask = torch.ones(batch, length, dtype=torch.long)
    mask[1, 3:] = 0
    mask[2, 5:] = 0
    return log_probs, old_log_probs, advantages, mask


def cfpo_by_hand(log_probs, old_log_probs, advantages, mask, loss_type):
    """The oracle's eq. 7 per token, aggregated as TRL's loss_type says by hand."""
    ratio = torch.exp(log_probs - old_log_probs)
    a = advantages[:, None]
    penalty = cfpo_oracle.cfpo_penalty(ratio, a, EPS_LOW, EPS_HIGH)
    per_token = cfpo_oracle.cfpo_token_loss(ratio, a, EPS_LOW, EPS_HIGH) * mask
    if loss_type == "grpo":
        loss = (per_token.sum(1) / mask.sum(1)).mean()
    elif loss_type == "bnpo":
        loss = per_token.sum() / mask.sum()
    elif loss_type == "dr_grpo":
        loss = per_token.sum() / (mask.shape[0] * MAX_COMPLETION_LEN)
    else:  # dapo, with num_items_in_batch = the batch's own tokens
        loss = per_token.sum() / mask.sum()
    return loss, (penalty * mask).sum() / mask.sum()


@pytest.mark.parametrize("loss_type", ["grpo", "bnpo", "dr_grpo", "dapo"])
def test_cfpo_loss_is_paper_eq7_aggregated_like_loss_type(make_trainer, trl_loss_from_log_probs, loss_type):
    trainer = make_trainer(
        policy_loss_type="cfpo",
        loss_type=loss_type,
        epsilon=EPS_LOW,
        epsilon_high=EPS_HIGH,
        gradient_accumulation_steps=1,
    )
    log_probs, old_log_probs, advantages, mask = random_rollout()
    expected_input = log_probs.detach().clone().requires_grad_()

    loss = trl_loss_from_log_probs(trainer, log_probs, old_log_probs, advantages, mask)
    loss.backward()
    expected, expected_penalty = cfpo_by_hand(expected_input, old_log_probs, advantages, mask, loss_type)
    expected.backward()

    torch.testing.assert_close(loss, expected)
    torch.testing.assert_close(log_probs.grad, expected_input.grad)
    assert trainer._metrics["train"]["cfpo_penalty"][0] == pytest.approx(expected_penalty.item(), rel=1e-5)
    assert expected_penalty > 0


def test_cfpo_and_ppo_differ_once_the_ratio_leaves_one(make_trainer, trl_loss_from_log_probs):
    cfpo = make_trainer(policy_loss_type="cfpo", loss_type="bnpo", gradient_accumulation_steps=1)
    ppo = make_trainer(policy_loss_type="ppo", loss_type="bnpo", gradient_accumulation_steps=1)
    log_probs, old_log_probs, advantages, mask = random_rollout()

    cfpo_loss = trl_loss_from_log_probs(cfpo, log_probs, old_log_probs, advantages, mask)
    ppo_loss = trl_loss_from_log_probs(ppo, log_probs, old_log_probs, advantages, mask)

    assert (cfpo_loss - ppo_loss).abs() > 1e-3


def test_cfpo_and_ppo_agree_when_every_rollout_gets_one_step(make_trainer, make_batch, loss_grads_metrics):
    """On-policy (TRL leaves old log-probs out): r = 1, where CFPO's penalty and its gradient vanish."""
    cfpo = make_trainer(policy_loss_type="cfpo", loss_type="grpo")
    ppo = make_trainer(policy_loss_type="ppo", loss_type="grpo")
    inputs = make_batch(cfpo)
    del inputs["old_per_token_logps"]

    (cfpo_loss,), cfpo_grads, cfpo_metrics = loss_grads_metrics(cfpo, inputs)
    (ppo_loss,), ppo_grads, _ = loss_grads_metrics(ppo, inputs)

    torch.testing.assert_close(cfpo_loss, ppo_loss)
    for name, grad in ppo_grads.items():
        torch.testing.assert_close(cfpo_grads[name], grad)
    assert cfpo_metrics["cfpo_penalty"] == [0.0]


def test_cfpo_gradient_restores_the_ratio_where_ppo_clip_goes_flat(make_trainer, trl_loss_from_log_probs):
    """A > 0 and r far above 1 + eps_high: PPO's gradient is zero, CFPO's pushes log pi back down."""
    cfpo = make_trainer(policy_loss_type="cfpo", loss_type="bnpo", gradient_accumulation_steps=1)
    ppo = make_trainer(policy_loss_type="ppo", loss_type="bnpo", gradient_accumulation_steps=1)
    grads = {}
    for name, trainer in (("cfpo", cfpo), ("ppo", ppo)):
        log_probs = torch.full((1, 2), -1.0, requires_grad=True)
        old_log_probs = torch.full((1, 2), -1.5)  # r = e^0.5, about 1.65
        trl_loss_from_log_probs(trainer, log_probs, old_log_probs, torch.tensor([1.0]), torch.ones(1, 2)).backward()
        grads[name] = log_probs.grad

    assert torch.all(grads["ppo"] == 0)
    assert torch.all(grads["cfpo"] > 0)  # the loss grows with log pi: descent lowers it
    assert cfpo._metrics["train"]["clip_ratio/high_mean"] == [1.0]


def test_log_prob_helper_returns_stock_trl_loss_for_given_log_probs(make_trainer, trl_loss_from_log_probs):
    """The hook the cross-framework parity test uses: TRL's clipped loss + k3 KL on the log-probs it is given."""
    stock = make_trainer(
        stock=True, loss_type="bnpo", beta=0.1, epsilon=EPS_LOW, epsilon_high=EPS_HIGH, gradient_accumulation_steps=1
    )
    log_probs, old_log_probs, advantages, mask = random_rollout(seed=3)
    ref_log_probs = old_log_probs - 0.1

    loss = trl_loss_from_log_probs(stock, log_probs, old_log_probs, advantages, mask, ref_log_probs=ref_log_probs)
    loss.backward()

    lp = log_probs.detach().clone().requires_grad_()
    ratio, a = torch.exp(lp - old_log_probs), advantages[:, None]
    clipped = -torch.min(ratio * a, ratio.clamp(1 - EPS_LOW, 1 + EPS_HIGH) * a)
    kl = (torch.exp(ref_log_probs - lp) - (ref_log_probs - lp) - 1) * ratio
    expected = ((clipped + 0.1 * kl) * mask).sum() / mask.sum()
    expected.backward()
    torch.testing.assert_close(loss, expected)
    torch.testing.assert_close(log_probs.grad, lp.grad)
    assert stock._metrics["train"]["clip_ratio/region_mean"][0] > 0


def test_the_clip_ratio_and_its_sides_are_logged_under_the_names_losses_gives_trl(
    make_trainer, make_batch, loss_grads_metrics, monkeypatch
):
    trainer = make_trainer(policy_loss_type="cfpo", loss_type="grpo", epsilon=EPS_LOW, epsilon_high=EPS_HIGH)
    inputs = make_batch(trainer)
    _, _, metrics = loss_grads_metrics(trainer, inputs)
    logged = {name: logged_name("trl", name) for name in LOGGED_AS["trl"]}
    assert logged["clip_ratio"] == "clip_ratio/region_mean" and set(logged.values()) <= set(metrics)
    assert 0 < metrics["clip_ratio/region_mean"][0] < 1  # the ratio is off 1: some tokens clip, not all

    # Renamed in the one table, the adapter follows: no second spelling of the name is left in it.
    renamed = {name: f"renamed/{name}" for name in logged}
    for name, new in renamed.items():
        monkeypatch.setitem(LOGGED_AS["trl"], name, new)
    _, _, again = loss_grads_metrics(trainer, inputs)
    assert not set(logged.values()) & set(again)
    assert {new: again[new] for new in renamed.values()} == {renamed[k]: metrics[v] for k, v in logged.items()}
