"""gpu-smoke's openrlhf part through OpenRLHF 0.11.2's own parser and our driver checks."""
import sys

from openrlhf_cfpo import gpu_smoke


def test_the_openrlhf_part_parses_with_openrlhf_and_trains_one_rollout_in_two_cfpo_steps(tmp_path, parse_with_openrlhf):
    assets = gpu_smoke.Assets("/models/policy", "/models/reward", str(tmp_path / "prompts.jsonl"), "eval", "verl")
    argv = gpu_smoke.openrlhf_command(sys.executable, assets, tmp_path)
    assert argv[1:3] == ["-m", "openrlhf_cfpo.cli.train_ppo_ray"]
    args = parse_with_openrlhf(argv[3:])
    value = lambda name: getattr(args, name)  # noqa: E731
    assert value("actor.policy_loss_type") == "cfpo" and value("train.colocate_all") and value("vllm.num_engines") == 1
    samples = value("rollout.batch_size") * value("rollout.n_samples_per_prompt")
    assert value("data.max_samples") == value("rollout.batch_size")  # one rollout
    assert samples // value("train.batch_size") == 2 and samples % value("train.batch_size") == 0  # two optimizer steps
    assert value("ds.attn_implementation") == "flash_attention_2" and value("ds.packing_samples")
