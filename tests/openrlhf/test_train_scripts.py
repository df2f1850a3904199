"""train_scripts/: --dry-run prints an OpenRLHF command with paper Table 4's settings."""

import os
import shlex
import subprocess

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ENV_KEYS = ("NUM_NODES", "GPUS_PER_NODE", "OUTPUT_DIR", "TENSORBOARD_DIR", "WANDB_API_KEY", "VLLM_TP")


def dry_run(script, *args, env=None):
    clean = {k: v for k, v in os.environ.items() if k not in ENV_KEYS}
    proc = subprocess.run(
        ["bash", os.path.join(ROOT, "train_scripts", script), "--dry-run", *args],
        capture_output=True,
        text=True,
        env={**clean, **(env or {})},
        timeout=60,
    )
    return proc


def flags(command_line):
    """The OpenRLHF flags of a printed command as {flag: last value} (argparse keeps the last)."""
    argv = shlex.split(command_line)
    assert argv[1:3] == ["-m", "openrlhf_cfpo.cli.train_ppo_ray"]
    out, key = {}, None
    for token in argv[3:]:
        if token.startswith("--"):
            key = token
            out[key] = True
        else:
            out[key] = token if out[key] is True else f"{out[key]} {token}"
    return out


TABLE_4 = {
    "--actor.model_name_or_path": "OpenRLHF/Llama-3-8b-sft-mixture",
    "--reward.model_name_or_path": "OpenRLHF/Llama-3-8b-rm-700k",
    "--data.prompt_dataset": "OpenRLHF/prompt-collection-v0.1",
    "--data.input_key": "context_messages",
    "--data.apply_chat_template": True,
    "--actor.adam.lr": "5e-7",
    "--train.batch_size": "64",
    "--rollout.batch_size": "512",
    "--rollout.n_samples_per_prompt": "2",
    "--rollout.max_new_tokens": "1024",
    "--data.max_len": "2048",
    "--algo.advantage.estimator": "rloo",
    "--actor.eps_clip": "0.2",
}


@pytest.mark.parametrize("script,loss", [("cfpo_llama3.sh", "cfpo"), ("rloo_llama3.sh", "ppo")])
@pytest.mark.parametrize("kl0", [False, True])
def test_dry_run_prints_table_4_with_the_loss_and_kl_coefficient(script, loss, kl0):
    proc = dry_run(script, *(["--kl0"] if kl0 else []))
    assert proc.returncode == 0, proc.stderr
    got = flags(proc.stdout.strip())
    for flag, value in TABLE_4.items():
        assert got[flag] == value, flag
    assert got["--actor.policy_loss_type"] == loss
    assert got["--algo.kl.init_coef"] == ("0" if kl0 else "1e-4")
    # 1024 samples per rollout / 64 per optimizer step = 16 steps: the off-policy regime
    assert int(got["--rollout.batch_size"]) * 2 // int(got["--train.batch_size"]) == 16
    run_name = f"{'cfpo' if loss == 'cfpo' else 'rloo'}_llama3-8b_kl{'0' if kl0 else '1e-4'}"
    assert run_name in got["--ckpt.output_dir"] and run_name in got["--logger.tensorboard_dir"]


def test_cfpo_and_rloo_scripts_differ_only_in_loss_type_and_run_name():
    cfpo = flags(dry_run("cfpo_llama3.sh").stdout)
    rloo = flags(dry_run("rloo_llama3.sh").stdout)
    differing = {k for k in cfpo.keys() | rloo.keys() if cfpo.get(k) != rloo.get(k)}
    assert differing == {"--actor.policy_loss_type", "--ckpt.output_dir", "--ckpt.path", "--logger.tensorboard_dir"}


def test_extra_arguments_pass_through_after_the_defaults_and_override_them():
    got = dry_run("cfpo_llama3.sh", "--train.batch_size", "128", "--train.max_epochs", "2").stdout
    argv = shlex.split(got)
    assert argv[-4:] == ["--train.batch_size", "128", "--train.max_epochs", "2"]
    assert flags(got)["--train.batch_size"] == "128"


def test_gpu_counts_outputs_and_wandb_come_from_flags_or_environment():
    env = {"NUM_NODES": "2", "GPUS_PER_NODE": "4", "OUTPUT_DIR": "/data/runs", "WANDB_API_KEY": "k"}
    got = flags(dry_run("cfpo_llama3.sh", env=env).stdout)
    assert got["--actor.num_nodes"] == "2" and got["--actor.num_gpus_per_node"] == "4"
    assert got["--vllm.num_engines"] == "8"
    assert got["--ckpt.output_dir"].startswith("/data/runs/")
    assert got["--logger.wandb.key"] == "k"
    got = flags(dry_run("cfpo_llama3.sh", "--gpus-per-node", "2", "--output-dir", "/x").stdout)
    assert got["--actor.num_gpus_per_node"] == "2" and got["--ckpt.output_dir"].startswith("/x/")
    assert "--logger.wandb.key" not in got


@pytest.mark.parametrize(
    "args,flag",
    [
        (["--nodes", "zero"], "--nodes"),
        (["--gpus-per-node", "3"], "--gpus-per-node"),  # 3 GPUs x micro-batch 4 do not divide Table 4's 64 samples
        (["--nodes", "4"], "--nodes"),  # 32 GPUs x 4 is more than a train batch
    ],
)
def test_bad_gpu_count_is_one_clear_error(args, flag):
    proc = dry_run("cfpo_llama3.sh", *args)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.count("\n") == 1 and flag in proc.stderr


def test_the_dry_run_command_parses_with_openrlhf_and_passes_our_checks(parse_with_openrlhf):
    argv = shlex.split(dry_run("cfpo_llama3.sh", "--kl0").stdout)
    args = parse_with_openrlhf(argv[3:])
    assert getattr(args, "actor.policy_loss_type") == "cfpo"
    assert getattr(args, "algo.kl.init_coef") == 0.0
    assert getattr(args, "actor.adam.lr") == 5e-7


def test_leave_out_drops_one_of_the_scripts_switches_and_nothing_else():
    full = shlex.split(dry_run("cfpo_llama3.sh").stdout)
    got = shlex.split(
        dry_run("cfpo_llama3.sh", "--leave-out", "--vllm.enable_sleep", "--leave-out", "--ds.packing_samples").stdout
    )
    assert [a for a in full if a not in ("--vllm.enable_sleep", "--ds.packing_samples")] == got
    assert "--ds.enable_sleep" in got and "--train.colocate_all" in got


@pytest.mark.parametrize("flag", ["--ds.zero_stage", "--no-such-switch", "--train.colocate_all="])
def test_leave_out_of_anything_but_a_switch_is_one_clear_error(flag):
    proc = dry_run("cfpo_llama3.sh", "--leave-out", flag)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.count("\n") == 1 and "--leave-out takes one of" in proc.stderr and flag in proc.stderr
