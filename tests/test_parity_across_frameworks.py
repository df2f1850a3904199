"""One CFPO across OpenRLHF, TRL and verl: the same batch gives the same objective, gradients and metrics.

Each adapter gets the same ``(log_probs, old_log_probs, advantages, mask, eps_low, eps_high)``:
- OpenRLHF: our drop-in ``PolicyLoss`` (token_level_loss = OpenRLHF's token-mean / seq-mean-token-mean);
- TRL: ``openrlhf_cfpo.trl.GRPOTrainer``'s own ``_compute_loss`` with the model's log-probs replaced by ours
  (``bnpo`` is a token mean, ``grpo`` the paper's eq. 8, a mean over sequences of token means);
- verl: the ``cfpo`` loss verl's ``get_policy_loss_fn`` returns after ``import verl`` (the entry-point path),
  run in ``.venv-verl`` on the saved tensors, since verl and OpenRLHF cannot share an environment.
Equal per-token gradients under a token mean are equal per-token objectives (up to the common 1/N).
"""

import importlib.util
import subprocess
from pathlib import Path

import pytest
import torch

from openrlhf_cfpo.openrlhf import PolicyLoss

ROOT = Path(__file__).resolve().parent.parent
VERL_PYTHON = ROOT / ".venv-verl" / "bin" / "python"
MODES = {  # OpenRLHF token_level_loss, TRL loss_type, verl loss_agg_mode
    "token-mean": (True, "bnpo", "token-mean"),
    "seq-mean-token-mean": (False, "grpo", "seq-mean-token-mean"),
}
WIDTHS = [(0.2, 0.2), (0.2, 0.28)]


def trl_helpers():
    """tests/trl/conftest.py as a module (it builds tiny TRL trainers offline and imports TRL beside tests/stubs)."""
    spec = importlib.util.spec_from_file_location("trl_test_helpers", ROOT / "tests" / "trl" / "conftest.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def batch():
    g = torch.Generator().manual_seed(7)
    b, t = 6, 11
    old = -torch.rand(b, t, generator=g, dtype=torch.float64) * 3
    logp = old + 0.4 * torch.randn(b, t, generator=g, dtype=torch.float64)  # ratios well outside [0.8, 1.28]
    adv = torch.randn(b, generator=g, dtype=torch.float64)
    lengths = torch.tensor([11, 7, 3, 11, 1, 9])
    mask = torch.arange(t)[None, :] < lengths[:, None]
    return logp, old, adv, mask


def openrlhf_side(batch, eps, token_level_loss):
    logp, old, adv, mask = batch
    x = logp.clone().requires_grad_(True)
    loss_fn = PolicyLoss(
        clip_eps_low=eps[0], clip_eps_high=eps[1], token_level_loss=token_level_loss, policy_loss_type="cfpo"
    )
    out = loss_fn.compute(x, old, adv[:, None].expand_as(x), action_mask=mask)
    (grad,) = torch.autograd.grad(out.loss, x)
    return out.loss.item(), grad, {k: v.item() for k, v in out.metrics.items()}


@pytest.fixture(scope="module")
def trl_side(tmp_path_factory):
    helpers = trl_helpers()
    model = helpers._save_tiny_model(tmp_path_factory.mktemp("trl_model") / "tiny")

    def run(batch, eps, loss_type):
        logp, old, adv, mask = batch
        trainer = helpers.make_trainer(
            model,
            tmp_path_factory.mktemp("trl_run"),
            loss_type=loss_type,
            epsilon=eps[0],
            epsilon_high=eps[1],
            gradient_accumulation_steps=1,
            policy_loss_type="cfpo",
        )
        x = logp.clone().requires_grad_(True)
        loss = helpers.trl_loss_from_log_probs(trainer, x, old, adv, mask)
        (grad,) = torch.autograd.grad(loss, x)
        logged = {k: v[-1] for k, v in trainer._metrics["train"].items()}
        return loss.item(), grad, logged

    return run


@pytest.fixture(scope="module")
def verl_side(batch, tmp_path_factory):
    """verl's results for each width pair, computed once in .venv-verl."""
    if not VERL_PYTHON.exists():
        pytest.skip(f"needs the verl environment: no {VERL_PYTHON} here (`make setup-verl` builds it)")
    results = {}
    for eps in WIDTHS:
        folder = tmp_path_factory.mktemp("verl")
        logp, old, adv, mask = batch
        torch.save(
            {
                "log_probs": logp,
                "old_log_probs": old,
                "advantages": adv[:, None].expand_as(logp).contiguous(),
                "mask": mask,
                "eps_low": eps[0],
                "eps_high": eps[1],
            },
            folder / "in.pt",
        )
        proc = subprocess.run(
            [
                str(VERL_PYTHON),
                str(ROOT / "tests" / "verl" / "verl_losses_for_parity.py"),
                str(folder / "in.pt"),
                str(folder / "out.pt"),
            ],
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert proc.returncode == 0, proc.stderr[-3000:]
        results[eps] = torch.load(folder / "out.pt")
    return results


def close(a, b, rel=1e-9):
    return a == pytest.approx(b, rel=rel, abs=1e-12)


def close_logged(a, b):
    return close(a, b, rel=1e-6)  # TRL and verl count some metrics in float32 for logging


@pytest.mark.parametrize("eps", WIDTHS, ids=lambda e: f"eps{e[0]}-{e[1]}")
@pytest.mark.parametrize("mode", MODES)
def test_openrlhf_trl_and_verl_give_cfpo_the_same_loss_gradients_and_metrics(batch, trl_side, verl_side, mode, eps):
    token_level_loss, trl_loss_type, verl_mode = MODES[mode]
    ours_loss, ours_grad, ours_metrics = openrlhf_side(batch, eps, token_level_loss)
    trl_loss, trl_grad, trl_metrics = trl_side(batch, eps, trl_loss_type)
    verl = verl_side[eps][verl_mode]

    # The batch leaves the trust region on both sides, so the surrogate matters (it is not the plain gradient).
    assert 0.1 < ours_metrics["clip_ratio"] < 0.9 and ours_metrics["cfpo_penalty"] > 0

    assert close(trl_loss, ours_loss) and close(verl["loss"].item(), ours_loss)
    torch.testing.assert_close(trl_grad, ours_grad, rtol=1e-9, atol=1e-12)
    torch.testing.assert_close(verl["grad"], ours_grad, rtol=1e-9, atol=1e-12)

    # One clip ratio (tokens outside the trust region in A's direction) under each framework's name.
    assert close_logged(trl_metrics["clip_ratio/region_mean"], ours_metrics["clip_ratio"])
    assert close_logged(verl["metrics"]["actor/pg_clipfrac"], ours_metrics["clip_ratio"])
    assert close_logged(verl["metrics"]["actor/ppo_kl"], ours_metrics["ppo_kl"])
    for name in ("cfpo_penalty", "ratio_dev_mean", "ratio_outside_region"):
        assert close_logged(trl_metrics[name], ours_metrics[name]), name
        assert close_logged(verl["metrics"][f"actor/{name}"], ours_metrics[name]), name


def test_the_two_aggregations_really_differ_on_this_batch(batch):
    # Otherwise the per-mode comparison above could not tell a token mean from eq. 8's sequence mean.
    token, _, _ = openrlhf_side(batch, WIDTHS[0], True)
    seq, _, _ = openrlhf_side(batch, WIDTHS[0], False)
    assert abs(token - seq) > 1e-3
