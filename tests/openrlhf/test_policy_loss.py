"""PolicyLoss(ppo) against OpenRLHF 0.11.2's own PolicyLoss; IS correction for CFPO."""

import itertools

import pytest
import torch

from openrlhf_cfpo.openrlhf import PolicyLoss

import cfpo_oracle

openrlhf_models = pytest.importorskip("openrlhf.models", reason="needs the openrlhf extra")


def make_batch(seed, batch=6, seq=9, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    old = -torch.rand(batch, seq, generator=g) * 3
    logp = old + 0.4 * torch.randn(batch, seq, generator=g)
    rollout = old + 0.3 * torch.randn(batch, seq, generator=g)
    adv = torch.randn(batch, 1, generator=g).expand(batch, seq).clone()
    lengths = torch.randint(1, seq + 1, (batch,), generator=g)
    mask = torch.arange(seq)[None, :] < lengths[:, None]
    return [t.to(dtype) if t.dtype.is_floating_point else t for t in (logp, old, rollout, adv, mask)]


def run(loss_fn, batch, **kwargs):
    logp, old, rollout, adv, mask = batch
    x = logp.clone().requires_grad_(True)
    out = loss_fn(x, old, adv, action_mask=mask, rollout_log_probs=rollout, **kwargs)
    out[0].backward()
    return out, x.grad


def assert_same(ours, theirs):
    (o_out, o_grad), (t_out, t_grad) = ours, theirs
    for o, t in zip(o_out, t_out):
        if t is None:
            assert o is None
        else:
            torch.testing.assert_close(o.float(), t.float(), rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(o_grad, t_grad, rtol=1e-6, atol=1e-6)


CONFIGS = [
    dict(),
    dict(clip_eps_low=0.2, clip_eps_high=0.28),
    dict(dual_clip=3.0),
    dict(dual_clip=3.0, clip_eps_low=0.1, clip_eps_high=0.3),
    dict(token_level_loss=False),
    dict(token_level_loss=False, dual_clip=2.0),
]


@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: ",".join(f"{k}={v}" for k, v in c.items()) or "default")
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_ppo_matches_openrlhf_policy_loss(config, seed):
    batch = make_batch(seed)
    ours = run(PolicyLoss(policy_loss_type="ppo", **config), batch)
    theirs = run(openrlhf_models.PolicyLoss(policy_loss_type="ppo", **config), batch)
    assert_same(ours, theirs)


@pytest.mark.parametrize("token_level_loss", [True, False])
def test_ppo_matches_openrlhf_with_global_batch_totals_and_dp_size(token_level_loss):
    batch = make_batch(3)
    kwargs = dict(dp_size=4, batch_num_tokens=97.0, global_batch_size=21.0)
    ours = run(PolicyLoss(token_level_loss=token_level_loss), batch, **kwargs)
    theirs = run(openrlhf_models.PolicyLoss(token_level_loss=token_level_loss), batch, **kwargs)
    assert_same(ours, theirs)


IS_CONFIGS = [
    dict(
        is_correction_level=level,
        is_correction_mode=mode,
        is_correction_gating="ratio",
        is_correction_threshold=threshold,
    )
    for level, mode, threshold in itertools.product(["token", "seq"], ["mask", "clip"], [(0.5, 5.0), (0.8, 1.2)])
    if not (mode == "clip" and level == "seq")
] + [
    dict(is_correction_level=level, is_correction_gating=gating, is_correction_threshold=(0.0, delta))
    for level, gating, delta in itertools.product(["token", "seq"], ["binary_kl", "tv"], [0.02, 0.2])
]


@pytest.mark.parametrize("config", IS_CONFIGS, ids=lambda c: "-".join(str(v) for v in c.values()))
def test_ppo_matches_openrlhf_with_train_rollout_is_correction(config):
    batch = make_batch(4)
    ours = run(PolicyLoss(**config), batch)
    theirs = run(openrlhf_models.PolicyLoss(**config), batch)
    assert theirs[0][3] is not None  # the correction really ran upstream
    assert_same(ours, theirs)


@pytest.mark.parametrize("config", IS_CONFIGS[:3], ids=lambda c: "-".join(str(v) for v in c.values()))
def test_is_correction_applies_to_cfpo_as_to_ppo(config):
    """The upstream CFPO patch skipped is_correction_* for cfpo; here both losses share it."""
    logp, old, rollout, adv, mask = make_batch(5, dtype=torch.float64)
    low, high = config["is_correction_threshold"]
    log_is = old - rollout
    if config["is_correction_level"] == "seq":
        stat = ((log_is * mask).sum(-1, keepdim=True) / mask.sum(-1, keepdim=True)).exp().expand_as(log_is)
    else:
        stat = log_is.exp()
    if config["is_correction_mode"] == "clip":
        weight = stat.clamp(low, high)
    else:
        weight = torch.where((stat >= low) & (stat <= high), log_is.exp(), 0.0)
    per_token = torch.tensor(
        cfpo_oracle.cfpo_loss_grid(cfpo_oracle.ratios(logp.tolist(), old.tolist()), adv.tolist()), dtype=torch.float64
    )
    expected = (weight * per_token)[mask].mean()

    loss, _, _, vllm_kl, is_filter_ratio = PolicyLoss(policy_loss_type="cfpo", **config)(
        logp, old, adv, action_mask=mask, rollout_log_probs=rollout
    )
    plain, *_ = PolicyLoss(policy_loss_type="cfpo")(logp, old, adv, action_mask=mask)
    assert loss.item() == pytest.approx(expected.item(), rel=1e-10)
    assert loss.item() != pytest.approx(plain.item(), rel=1e-3)
    assert vllm_kl is not None and is_filter_ratio is not None


@pytest.mark.parametrize("config", IS_CONFIGS, ids=lambda c: "-".join(str(v) for v in c.values()))
def test_non_finite_padding_never_reaches_the_is_correction_statistics(config):
    logp, old, rollout, adv, mask = make_batch(7, dtype=torch.float64)
    mask[0, 3:] = False
    old, rollout = old.clone(), rollout.clone()
    old[0, 3] = float("nan")
    rollout[0, 4] = float("-inf")
    outputs = PolicyLoss(policy_loss_type="cfpo", **config)(logp, old, adv, action_mask=mask, rollout_log_probs=rollout)
    assert all(torch.isfinite(t) for t in outputs), outputs
