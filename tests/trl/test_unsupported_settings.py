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
        ({"importance_sampling_level": "sequence"}, "importance_sampling_level='sequence' .*set importance_sampling_level='token'"),
        ({"delta": 1.5}, r"delta=1.5 \(two-sided clipping\) is not supported.*set delta=None"),
        ({"epsilon": 0.0}, "clip eps must be > 0"),
        ({"epsilon_high": -0.1}, "clip eps must be > 0"),
        ({"policy_loss_type": "reinforce"}, "unknown policy loss 'reinforce'; known policy losses: .*cfpo"),
    ],
)
def test_unsupported_setting_is_rejected_when_the_config_is_built(tmp_path, overrides, message):
    with pytest.raises(ValueError, match=message) as error:
        GRPOConfig(output_dir=str(tmp_path), use_cpu=True, bf16=False, **overrides)
    assert "\n" not in str(error.value)


def test_setting_changed_after_the_config_is_rejected_before_the_model_loads(tmp_path):
    args = GRPOConfig(output_dir=str(tmp_path), use_cpu=True, bf16=False, num_generations=2, per_device_train_batch_size=2)
    args.importance_sampling_level = "sequence"
    # The model path does not exist: reaching the model would raise OSError instead.
    with pytest.raises(ValueError, match="importance_sampling_level='sequence'"):
        GRPOTrainer(model=str(tmp_path / "no-such-model"), reward_funcs=[], args=args)


def test_stock_trl_config_is_rejected_by_the_trainer(tmp_path):
    import trl

    args = trl.GRPOConfig(output_dir=str(tmp_path), use_cpu=True, bf16=False, num_generations=2, per_device_train_batch_size=2)
    with pytest.raises(TypeError, match="pass openrlhf_cfpo.trl.GRPOConfig, which adds policy_loss_type"):
        GRPOTrainer(model=str(tmp_path / "no-such-model"), reward_funcs=[], args=args)


def test_policy_loss_type_defaults_to_cfpo_and_parses_from_the_command_line(tmp_path):
    from transformers import HfArgumentParser

    assert GRPOConfig(output_dir=str(tmp_path), use_cpu=True, bf16=False).policy_loss_type == "cfpo"
    assert "Clipping-Free" in GRPOConfig.__dataclass_fields__["policy_loss_type"].metadata["help"]
    (args,) = HfArgumentParser(GRPOConfig).parse_args_into_dataclasses(
        ["--output_dir", str(tmp_path), "--use_cpu", "--bf16", "false", "--policy_loss_type", "ppo"]
    )
    assert args.policy_loss_type == "ppo"
