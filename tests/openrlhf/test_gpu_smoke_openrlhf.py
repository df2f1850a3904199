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


def test_on_a_cpu_the_openrlhf_part_is_the_gpu_command_less_the_switches_that_need_cuda(tmp_path, parse_with_openrlhf):
    """No colocation (CUDA IPC weight sync), no sleep mode, no packing (flash-attn), gloo for NCCL: nothing else."""
    assets = gpu_smoke.Assets("/models/policy", "/models/reward", str(tmp_path / "prompts.jsonl"), "eval", "verl")
    gpu = gpu_smoke.openrlhf_command(sys.executable, assets, tmp_path, "cuda")
    cpu = gpu_smoke.openrlhf_command(sys.executable, assets, tmp_path, "cpu")
    assert gpu == gpu_smoke.openrlhf_command(sys.executable, assets, tmp_path)  # cuda is the default
    assert [a for a in gpu if a not in cpu] == [
        "--train.colocate_all",
        "--vllm.enable_sleep",
        "--ds.enable_sleep",
        "flash_attention_2",
        "--ds.packing_samples",
    ]
    assert [a for a in cpu if a not in gpu] == ["--vllm.sync_backend", "gloo", "sdpa"]
    on_gpu, on_cpu = vars(parse_with_openrlhf(gpu[3:])), vars(parse_with_openrlhf(cpu[3:]))
    differ = {k: (on_gpu[k], on_cpu[k]) for k in on_gpu if on_gpu[k] != on_cpu[k]}
    assert differ == {
        "train.colocate_all": (True, False),
        "vllm.enable_sleep": (True, False),
        "ds.enable_sleep": (True, False),
        "vllm.sync_backend": ("nccl", "gloo"),
        "ds.attn_implementation": ("flash_attention_2", "sdpa"),
        "ds.packing_samples": (True, False),
    }
