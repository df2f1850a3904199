"""What the TRL adapter does not implement is refused when the config (or trainer) is built, in one line."""

import pytest

from openrlhf_cfpo.trl import GRPOConfig, GRPOTrainer


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"loss_type": "cispo"}, "loss_type='cispo' is a surrogate of its own.*use one of grpo, bnpo, dr_grpo, dapo"),
        ({"loss_type": "sapo"}, "loss_type='sapo' is a surrogate of its own"),
        ({"loss_type": "luspo"}, "loss_type='luspo' is a surrogate of its own"),
        ({"loss_type": "vespo"}, "loss_type='vespo' is a surrogate of its own"),
        (
            {"importance_sampling_level": "sequence"},
            "importance_sampling_level='sequence' .*set importance_sampling_level='token'",
        ),
        ({"delta": 1.5}, r"delta=1.5 \(two-sided clipping\) is not supported.*set delta=None"),
        ({"epsilon": 0.0}, "clip eps must be > 0"),
        ({"epsilon_high": -0.1}, "clip eps must be > 0"),
        ({"policy_loss_type": "reinforce"}, "unknown policy loss 'reinforce'; known policy losses: .*cfpo"),
        ({"loss_type": "bogus"}, "unknown loss_type='bogus': TRL .* has grpo, bnpo, dr_grpo, dapo .*cispo, sapo"),
    ],
)
def test_unsupported_setting_is_rejected_when_the_config_is_built(tmp_path, overrides, message):
    with pytest.raises(ValueError, match=message) as error:
        GRPOConfig(output_dir=str(tmp_path), use_cpu=True, bf16=False, **overrides)
    assert "\n" not in str(error.value)


def test_setting_changed_after_the_config_is_rejected_before_the_model_loads(tmp_path):
    args = GRPOConfig(
        output_dir=str(tmp_path), use_cpu=True, bf16=False, num_generations=2, per_device_train_batch_size=2
    )
    args.importance_sampling_level = "sequence"
    # The model path does not exist: reaching the model would raise OSError instead.
    with pytest.raises(ValueError, match="importance_sampling_level='sequence'"):
        GRPOTrainer(model=str(tmp_path / "no-such-model"), reward_funcs=[], args=args)


def test_stock_trl_config_is_rejected_by_the_trainer(tmp_path):
    import trl

    args = trl.GRPOConfig(
        output_dir=str(tmp_path), use_cpu=True, bf16=False, num_generations=2, per_device_train_batch_size=2
    )
    with pytest.raises(TypeError, match="pass openrlhf_cfpo.trl.GRPOConfig, which adds policy_loss_type"):
        GRPOTrainer(model=str(tmp_path / "no-such-model"), reward_funcs=[], args=args)


def test_policy_loss_type_defaults_to_trls_own_surrogate_and_parses_from_the_command_line(tmp_path):
    from transformers import HfArgumentParser

    from openrlhf_cfpo.losses import DEFAULT_POLICY_LOSS

    # the rule of every adapter: the framework's own surrogate unless cfpo is named
    assert (
        GRPOConfig(output_dir=str(tmp_path), use_cpu=True, bf16=False).policy_loss_type == DEFAULT_POLICY_LOSS == "ppo"
    )
    assert "Clipping-Free" in GRPOConfig.__dataclass_fields__["policy_loss_type"].metadata["help"]
    (args,) = HfArgumentParser(GRPOConfig).parse_args_into_dataclasses(
        ["--output_dir", str(tmp_path), "--use_cpu", "--bf16", "false", "--policy_loss_type", "cfpo"]
    )
    assert args.policy_loss_type == "cfpo"


def test_the_replaced_compute_loss_is_pinned_to_the_installed_trls_source():
    """A TRL upgrade that changes _compute_loss must be re-checked, not drift silently."""
    import trl

    from openrlhf_cfpo.trl import trainer

    assert trainer.compute_loss_drift() is None, trainer.compute_loss_drift()
    assert trainer.TRL_COMPUTE_LOSS[0] == trl.__version__


def test_a_changed_trl_compute_loss_is_reported_in_one_line_saying_what_to_recheck(monkeypatch):
    from openrlhf_cfpo.trl import trainer

    monkeypatch.setattr(trainer, "TRL_COMPUTE_LOSS", ("1.16.0", "0" * 64))
    message = trainer.compute_loss_drift()
    assert "\n" not in message and "re-check each step" in message and "TRL_COMPUTE_LOSS" in message
