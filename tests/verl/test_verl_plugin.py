"""How a verl run gets CFPO: the `verl.plugins` entry point, its log line, its failure mode, verl's own config.

Runs in .venv-verl (`make test`). Loading is checked in fresh interpreters, as each verl worker starts one.
"""

import os
import subprocess
import sys
from importlib.metadata import entry_points

import pytest
import torch

REGISTERED_LINE = "registered policy loss 'cfpo' in verl"


def fresh_python(code, tmp_path, **env):
    """Run ``code`` in a new interpreter of this environment, outside the repository, without test stubs."""
    clean = {
        k: v
        for k, v in os.environ.items()
        if k not in ("PYTHONPATH", "VERL_USE_EXTERNAL_PLUGINS", "VERL_USE_EXTERNAL_MODULES")
    }
    return subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, env={**clean, **env}, capture_output=True, text=True, timeout=120
    )


def test_package_declares_the_verl_plugin_entry_point():
    (ep,) = [ep for ep in entry_points(group="verl.plugins") if ep.name == "cfpo"]
    assert ep.value == "openrlhf_cfpo.verl"


@pytest.mark.parametrize(
    "first_import",
    ["import verl", "import verl.trainer.ppo.core_algos", "import openrlhf_cfpo.verl"],
    ids=["verl", "core_algos", "adapter_first"],
)
def test_importing_verl_alone_registers_cfpo_and_logs_one_warning(first_import, tmp_path):
    code = f"""{first_import}
import sys
import verl
from verl.trainer.ppo.core_algos import get_policy_loss_fn
import openrlhf_cfpo.verl
fn = get_policy_loss_fn("cfpo")
print(fn.__module__, fn.__name__)
"""
    proc = fresh_python(code, tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["openrlhf_cfpo.verl.policy_loss", "compute_policy_loss_cfpo"]
    lines = [line for line in proc.stderr.splitlines() if REGISTERED_LINE in line]
    assert len(lines) == 1 and lines[0].startswith("WARNING"), proc.stderr


def test_verl_plugin_switch_turns_the_entry_point_off(tmp_path):
    code = (
        "import verl\nfrom verl.trainer.ppo.core_algos import POLICY_LOSS_REGISTRY\n"
        'print("cfpo" in POLICY_LOSS_REGISTRY)'
    )
    proc = fresh_python(code, tmp_path, VERL_USE_EXTERNAL_PLUGINS="none")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "False" and REGISTERED_LINE not in proc.stderr


def test_a_broken_install_is_logged_as_an_error_and_asking_for_cfpo_then_raises(tmp_path):
    # None in sys.modules makes our registry's import fail inside the plugin, which verl's loader swallows
    code = """import sys
sys.modules["openrlhf_cfpo.losses"] = None
import verl
print("verl imported")
from verl.trainer.ppo.core_algos import get_policy_loss_fn
get_policy_loss_fn("vanilla")
print("vanilla available")
get_policy_loss_fn("cfpo")
"""
    proc = fresh_python(code, tmp_path)
    assert proc.stdout.split("\n")[:2] == ["verl imported", "vanilla available"]  # verl swallowed the exception...
    assert "ERROR" in proc.stderr and "could not register the 'cfpo' policy loss" in proc.stderr  # ...we logged it
    assert proc.returncode != 0 and "Unsupported loss mode: cfpo" in proc.stderr  # and cfpo is never replaced
    assert REGISTERED_LINE not in proc.stderr


def test_the_adapter_without_verl_fails_with_the_install_hint(tmp_path):
    proc = fresh_python('import sys\nsys.modules["verl"] = None\nimport openrlhf_cfpo.verl', tmp_path)
    assert proc.returncode != 0 and "ModuleNotFoundError" in proc.stderr
    assert "pip install 'openrlhf-cfpo[verl]'" in proc.stderr


@pytest.mark.filterwarnings("ignore:Disabled critic")
def test_verl_ppo_trainer_config_selects_cfpo_with_its_clip_widths():
    import verl
    from hydra import compose, initialize_config_dir
    from verl.trainer.main_ppo import need_critic, need_reference_policy
    from verl.trainer.ppo.core_algos import get_policy_loss_fn
    from verl.utils.config import omega_conf_to_dataclass, validate_config
    from verl.workers.config import ActorConfig

    overrides = [
        "actor_rollout_ref.actor.policy_loss.loss_mode=cfpo",
        "actor_rollout_ref.actor.clip_ratio_low=0.1",
        "actor_rollout_ref.actor.clip_ratio_high=0.3",
        "actor_rollout_ref.actor.loss_agg_mode=seq-mean-token-mean",
        "algorithm.adv_estimator=grpo",
        "trainer.n_gpus_per_node=1",
        "data.train_batch_size=4",
        "actor_rollout_ref.rollout.n=2",
        "actor_rollout_ref.actor.ppo_mini_batch_size=2",
        "actor_rollout_ref.actor.ppo_micro_batch_size_per_gpu=1",
        "actor_rollout_ref.rollout.log_prob_micro_batch_size_per_gpu=1",
        "actor_rollout_ref.ref.log_prob_micro_batch_size_per_gpu=1",
    ]
    config_dir = os.path.join(os.path.dirname(verl.__file__), "trainer", "config")
    with initialize_config_dir(config_dir=config_dir, version_base=None):
        config = compose(config_name="ppo_trainer", overrides=overrides)
    validate_config(config=config, use_reference_policy=need_reference_policy(config), use_critic=need_critic(config))
    actor = omega_conf_to_dataclass(config.actor_rollout_ref.actor)  # as verl's actor worker builds it

    assert isinstance(actor, ActorConfig) and actor.policy_loss.loss_mode == "cfpo"
    g = torch.Generator().manual_seed(0)
    old = -torch.rand(3, 5, generator=g, dtype=torch.float64)
    new = old + 0.5 * torch.randn(3, 5, generator=g, dtype=torch.float64)
    adv = torch.randn(3, 5, generator=g, dtype=torch.float64)
    mask = torch.rand(3, 5, generator=g) > 0.3

    def loss_with(cfg):
        kwargs = dict(
            old_log_prob=old,
            log_prob=new,
            advantages=adv,
            response_mask=mask,
            loss_agg_mode=cfg.loss_agg_mode,
            config=cfg,
        )
        return get_policy_loss_fn(cfg.policy_loss.loss_mode)(**kwargs)[0].item()

    def direct(eps_low, eps_high):
        return ActorConfig(
            strategy="fsdp",
            rollout_n=2,
            ppo_micro_batch_size_per_gpu=1,
            clip_ratio_low=eps_low,
            clip_ratio_high=eps_high,
            loss_agg_mode="seq-mean-token-mean",
            policy_loss=actor.policy_loss,
        )

    assert loss_with(actor) == loss_with(direct(0.1, 0.3))
    assert loss_with(actor) != loss_with(direct(0.2, 0.2))
