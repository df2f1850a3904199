"""verl's `cfpo` policy loss against paper eq. (7) worked by hand, under each of verl's aggregations.

Runs in .venv-verl (verl 0.9.1 cannot share an environment with OpenRLHF 0.11.2): `make test`.
The loss is always looked up through verl's own registry after `import verl`, as a verl worker does.
"""

import itertools
import math
import os
import subprocess
import sys

import pytest
import torch
import verl  # noqa: F401  (loads the verl.plugins entry points: this is how cfpo gets registered)
from tensordict import TensorDict
from verl.trainer.ppo.core_algos import get_policy_loss_fn
from verl.utils import tensordict_utils as tu
from verl.workers.config import ActorConfig, PolicyLossConfig
from verl.workers.utils.losses import ppo_loss as verl_actor_loss

import cfpo_oracle

LOSS_AGG_MODES = ("token-mean", "token-sum", "seq-mean-token-sum", "seq-mean-token-sum-norm", "seq-mean-token-mean")
PARITY_SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "verl_losses_for_parity.py")
EPS_LOW, EPS_HIGH = 0.1, 0.3  # asymmetric on purpose: each token must pick its own width
REL = 1e-7  # float64 throughout; verl's per-sequence means divide by (token count + 1e-8)


def actor_config(loss_mode="cfpo", eps_low=EPS_LOW, eps_high=EPS_HIGH, clip_ratio=0.2, **kwargs):
    return ActorConfig(
        strategy="fsdp",
        rollout_n=1,
        ppo_micro_batch_size_per_gpu=1,
        clip_ratio=clip_ratio,
        clip_ratio_low=eps_low,
        clip_ratio_high=eps_high,
        policy_loss=PolicyLossConfig(loss_mode=loss_mode),
        **kwargs,
    )


def make_batch(seed=0, batch=5, length=6):
    """float64 log-probs with ratios on both sides of both bounds, ragged masks, one empty sequence, NaN padding."""
    g = torch.Generator().manual_seed(seed)
    old = -torch.rand(batch, length, generator=g, dtype=torch.float64) * 3
    new = old + 0.4 * torch.randn(batch, length, generator=g, dtype=torch.float64)
    adv = torch.randn(batch, length, generator=g, dtype=torch.float64)
    lengths = [length, 3, 1, 0, 5][:batch]
    mask = torch.zeros(batch, length, dtype=torch.bool)
    for b, n in enumerate(lengths):
        mask[b, :n] = True
    old = old.masked_fill(~mask, float("nan"))  # padding must never reach the loss or the gradient
    return new, old, adv, mask


def eq7_loss_per_token(new, old, adv, eps_low, eps_high):
    """The oracle's eq. 7 per token (r = 1 on padding, where old holds NaN)."""
    out = torch.zeros_like(new)
    for idx in itertools.product(*map(range, new.shape)):
        r = math.exp(new[idx].item() - old[idx].item()) if not math.isnan(old[idx].item()) else 1.0
        out[idx] = cfpo_oracle.cfpo_token_loss(r, adv[idx].item(), eps_low, eps_high)
    return out


def aggregate_by_hand(
    per_token, mask, mode, dp_size=1, batch_num_tokens=None, global_batch_size=None, loss_scale_factor=None
):
    """verl's loss_agg_mode definitions, written out sequence by sequence."""
    rows = [per_token[b][mask[b]].tolist() for b in range(per_token.shape[0])]
    rows = [row for row in rows if row]  # a fully masked sequence counts for nothing
    if mode == "token-mean":
        n_tokens = batch_num_tokens if batch_num_tokens is not None else sum(len(row) for row in rows)
        return sum(sum(row) for row in rows) / n_tokens * dp_size
    if mode == "token-sum":
        return sum(sum(row) for row in rows) * dp_size
    n_seqs = global_batch_size if global_batch_size is not None else len(rows)
    if mode == "seq-mean-token-mean":
        return sum(sum(row) / len(row) for row in rows) / n_seqs * dp_size
    seq_mean_of_sums = sum(sum(row) for row in rows) / n_seqs * dp_size
    if mode == "seq-mean-token-sum":
        return seq_mean_of_sums
    assert mode == "seq-mean-token-sum-norm"
    return seq_mean_of_sums / (loss_scale_factor if loss_scale_factor is not None else per_token.shape[-1])


def cfpo(new, old, adv, mask, config, loss_agg_mode="token-mean", rollout_is_weights=None):
    return get_policy_loss_fn("cfpo")(
        old_log_prob=old,
        log_prob=new,
        advantages=adv,
        response_mask=mask,
        loss_agg_mode=loss_agg_mode,
        config=config,
        rollout_is_weights=rollout_is_weights,
    )


@pytest.mark.parametrize("mode", LOSS_AGG_MODES)
def test_cfpo_loss_is_eq7_aggregated_as_each_verl_mode_defines(mode):
    new, old, adv, mask = make_batch()
    loss, _ = cfpo(new, old, adv, mask, actor_config(), loss_agg_mode=mode)
    expected = aggregate_by_hand(eq7_loss_per_token(new, old, adv, EPS_LOW, EPS_HIGH), mask, mode)
    assert loss.dtype == torch.float64
    assert loss.item() == pytest.approx(expected, rel=REL)


@pytest.mark.parametrize("mode", LOSS_AGG_MODES)
def test_global_batch_info_normalises_the_loss_as_verl_defines(mode):
    new, old, adv, mask = make_batch(seed=1)
    info = dict(dp_size=4, batch_num_tokens=37, global_batch_size=11, loss_scale_factor=9)
    loss, _ = cfpo(new, old, adv, mask, actor_config(global_batch_info=dict(info)), loss_agg_mode=mode)
    expected = aggregate_by_hand(eq7_loss_per_token(new, old, adv, EPS_LOW, EPS_HIGH), mask, mode, **info)
    assert loss.item() == pytest.approx(expected, rel=REL)


@pytest.mark.parametrize("mode", ["token-mean", "seq-mean-token-mean"])
def test_rollout_is_weights_multiply_each_token_before_aggregation(mode):
    new, old, adv, mask = make_batch(seed=2)
    weights = torch.rand(new.shape, generator=torch.Generator().manual_seed(3), dtype=torch.float64) * 2
    loss, _ = cfpo(new, old, adv, mask, actor_config(), loss_agg_mode=mode, rollout_is_weights=weights)
    expected = aggregate_by_hand(weights * eq7_loss_per_token(new, old, adv, EPS_LOW, EPS_HIGH), mask, mode)
    assert loss.item() == pytest.approx(expected, rel=REL)


def test_clip_ratio_is_the_width_when_low_and_high_are_unset():
    new, old, adv, mask = make_batch(seed=4)
    loss, _ = cfpo(new, old, adv, mask, actor_config(eps_low=None, eps_high=None, clip_ratio=0.25))
    expected = aggregate_by_hand(eq7_loss_per_token(new, old, adv, 0.25, 0.25), mask, "token-mean")
    assert loss.item() == pytest.approx(expected, rel=REL)


def test_verl_dual_clip_clip_ratio_c_does_not_change_cfpo():
    new, old, adv, mask = make_batch(seed=5)
    adv[0, 0], new[0, 0] = -1.0, old[0, 0] + math.log(10.0)  # A < 0 at r = 10: where vanilla's dual clip binds
    losses = [cfpo(new, old, adv, mask, actor_config(clip_ratio_c=c))[0].item() for c in (1.5, 3.0, 10.0)]
    assert losses[0] == losses[1] == losses[2]


def test_non_positive_width_is_rejected():
    new, old, adv, mask = make_batch()
    with pytest.raises(ValueError, match="trust-region width"):
        cfpo(new, old, adv, mask, actor_config(eps_low=0.0))


def test_metrics_are_floats_with_token_means_as_verl_names_them():
    # one sequence, one token per region: A > 0 above 1+eps_high, A > 0 inside, A < 0 below 1-eps_low, A < 0 above
    ratios = torch.tensor([[1.5, 1.1, 0.7, 1.4, 1.0]], dtype=torch.float64)
    adv = torch.tensor([[2.0, 1.0, -1.0, -0.5, 3.0]], dtype=torch.float64)
    mask = torch.tensor([[True, True, True, True, False]])
    old = torch.full_like(ratios, -1.0)
    new = old + ratios.log()
    _, metrics = cfpo(new, old, adv, mask, actor_config())

    assert {"actor/pg_clipfrac", "actor/ppo_kl", "actor/cfpo_penalty", "actor/ratio_dev_mean"} <= set(metrics)
    assert all(type(v) is float for v in metrics.values())
    r, a = ratios[0, :4].tolist(), adv[0, :4].tolist()
    assert metrics["actor/pg_clipfrac"] == pytest.approx(2 / 4)  # tokens 0 and 2 left the region in A's direction
    assert metrics["actor/ppo_kl"] == pytest.approx(sum(-math.log(x) for x in r) / 4)
    assert metrics["actor/ratio_dev_mean"] == pytest.approx(sum(abs(x - 1) for x in r) / 4)
    penalty = [cfpo_oracle.cfpo_penalty(y, x, EPS_LOW, EPS_HIGH) for x, y in zip(a, r)]
    assert metrics["actor/cfpo_penalty"] == pytest.approx(sum(penalty) / 4)


def test_pg_clipfrac_counts_the_same_tokens_as_vanilla():
    new, old, adv, mask = make_batch(seed=6, batch=5, length=40)
    _, ours = cfpo(new, old, adv, mask, actor_config())
    _, vanilla = get_policy_loss_fn("vanilla")(
        old_log_prob=old,
        log_prob=new,
        advantages=adv,
        response_mask=mask,
        loss_agg_mode="token-mean",
        config=actor_config("vanilla"),
    )
    assert 0 < ours["actor/pg_clipfrac"] < 1
    assert ours["actor/pg_clipfrac"] == pytest.approx(
        vanilla["actor/pg_clipfrac"], rel=1e-6
    )  # vanilla counts in float32
    assert ours["actor/ppo_kl"] == pytest.approx(vanilla["actor/ppo_kl"], rel=REL)


@pytest.mark.parametrize("mode", ["token-mean", "seq-mean-token-mean"])
def test_gradient_at_ratio_one_is_the_plain_policy_gradient(mode):
    _, old, adv, mask = make_batch(seed=7)
    new = torch.where(mask, old, -1.0).detach().requires_grad_(True)  # r = 1 on every token
    loss, _ = cfpo(new, old, adv, mask, actor_config(), loss_agg_mode=mode)
    loss.backward()
    # d/d log pi of -A r at r = 1 is -A, weighted by the aggregation's per-token share
    lengths = mask.sum(-1, keepdim=True).double()
    share = 1 / mask.sum() if mode == "token-mean" else 1 / (lengths * (lengths > 0).sum())
    expected = torch.where(mask, -adv * share, 0.0)
    torch.testing.assert_close(new.grad, expected, rtol=REL, atol=0)


def test_ratio_past_the_optimum_gets_a_restoring_gradient_where_vanilla_gets_none():
    old = torch.zeros(1, 2, dtype=torch.float64)
    new = torch.log(torch.tensor([[1.6, 0.6]], dtype=torch.float64)).requires_grad_(True)  # past 1+eps_high, 1-eps_low
    adv = torch.tensor([[1.0, -1.0]], dtype=torch.float64)
    mask = torch.ones(1, 2, dtype=torch.bool)
    cfpo(new, old, adv, mask, actor_config())[0].backward()
    # r* = 1 + sign(A) eps: gradient descent on the loss pulls each ratio back toward it
    assert new.grad[0, 0] > 0 and new.grad[0, 1] < 0
    new.grad = None
    get_policy_loss_fn("vanilla")(
        old_log_prob=old,
        log_prob=new,
        advantages=adv,
        response_mask=mask,
        loss_agg_mode="token-mean",
        config=actor_config("vanilla"),
    )[0].backward()
    assert torch.all(new.grad == 0)


@pytest.mark.parametrize("clip_ratio_c", [3.0, 5.0])
def test_vanilla_keeps_its_dual_clip_with_cfpo_registered(clip_ratio_c):
    # A = -1 at r = 10: PPO's clipped loss is -A r = 10, the dual clip bounds it at -A c = c
    old = torch.zeros(1, 1, dtype=torch.float64)
    new = torch.full((1, 1), math.log(10.0), dtype=torch.float64)
    adv = -torch.ones(1, 1, dtype=torch.float64)
    loss, metrics = get_policy_loss_fn("vanilla")(
        old_log_prob=old,
        log_prob=new,
        advantages=adv,
        response_mask=torch.ones(1, 1, dtype=torch.bool),
        loss_agg_mode="token-mean",
        config=actor_config("vanilla", clip_ratio_c=clip_ratio_c),
    )
    assert loss.item() == pytest.approx(clip_ratio_c)
    assert metrics["actor/pg_clipfrac_lower"] == 1.0


def test_verl_actor_loss_runs_cfpo_with_the_batch_info_it_sets():
    """verl's actor loss (workers/utils/losses.ppo_loss) calls our loss from the loss_mode in its config."""
    new, old, adv, mask = make_batch(seed=8)
    batch, length = new.shape
    lengths = mask.sum(-1)
    # the engine's output: one flat row of log-probs per sequence (1 prompt token, then the response)
    flat = torch.cat([torch.cat([new[b, : lengths[b]], new.new_zeros(1)]) for b in range(batch)]).requires_grad_(True)
    data = TensorDict(
        {
            "prompts": torch.ones(batch, 1, dtype=torch.long),
            "responses": torch.ones(batch, length, dtype=torch.long),
            "attention_mask": torch.cat([torch.ones(batch, 1, dtype=torch.long), mask.long()], dim=1),
            "response_mask": mask,
            "old_log_probs": old,
            "advantages": adv,
        },
        batch_size=[batch],
    )
    tu.assign_non_tensor(data, dp_size=2, batch_num_tokens=30, global_batch_size=10)  # 2/10: not the local 1/4
    config = actor_config(loss_agg_mode="seq-mean-token-mean")

    loss, metrics = verl_actor_loss(config, {"log_probs": flat}, data)

    expected = aggregate_by_hand(
        eq7_loss_per_token(new, old, adv, EPS_LOW, EPS_HIGH),
        mask,
        "seq-mean-token-mean",
        dp_size=2,
        global_batch_size=10,
    )
    assert loss.item() == pytest.approx(expected, rel=REL)
    assert metrics["actor/pg_loss"].aggregate() == pytest.approx(expected, rel=REL)
    assert 0 <= metrics["actor/pg_clipfrac"].aggregate() <= 1
    loss.backward()
    assert torch.isfinite(flat.grad).all()


def test_parity_script_saves_loss_grad_and_metrics_for_each_mode(tmp_path):
    new, old, adv, mask = make_batch(seed=9)
    old = old.nan_to_num(0.0)
    inputs = dict(
        log_probs=new.float(),
        old_log_probs=old.float(),
        advantages=adv.float(),
        mask=mask,
        eps_low=EPS_LOW,
        eps_high=EPS_HIGH,
    )
    torch.save(inputs, tmp_path / "in.pt")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    subprocess.run(
        [sys.executable, PARITY_SCRIPT, str(tmp_path / "in.pt"), str(tmp_path / "out.pt")],
        check=True,
        cwd=tmp_path,
        env=env,
    )
    out = torch.load(tmp_path / "out.pt")

    assert set(out) == {"token-mean", "seq-mean-token-mean"}
    per_token = eq7_loss_per_token(new.float().double(), old.float().double(), adv.float().double(), EPS_LOW, EPS_HIGH)
    for mode, result in out.items():
        assert result["loss"].item() == pytest.approx(aggregate_by_hand(per_token, mask, mode), rel=1e-9)
        assert result["grad"].shape == new.shape and torch.all(result["grad"][~mask] == 0)
        assert result["grad"][mask].abs().sum() > 0
        assert set(result["metrics"]) >= {
            "actor/pg_clipfrac",
            "actor/ppo_kl",
            "actor/cfpo_penalty",
            "actor/ratio_dev_mean",
        }
