"""The paper's tables in one place: what they hold, and that every train script reads them instead of a copy."""

import os
import shlex
import stat
import subprocess
import sys

import pytest

from openrlhf_cfpo import recipes
from openrlhf_cfpo.recipes import SYSTEM_PROMPTS, TABLE_3, TABLE_4

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT_ENV = ("NUM_NODES", "GPUS_PER_NODE", "OUTPUT_DIR", "TENSORBOARD_DIR", "WANDB_API_KEY", "VLLM_TP", "PYTHON")


def test_table_3_and_table_4_hold_the_papers_values():
    assert TABLE_3.learning_rate == {"1.5B": 3e-6, "3B": 3e-6, "7B": 1e-6}
    assert (TABLE_3.batch_size, TABLE_3.group_size, TABLE_3.kl_beta) == (128, 3, 0.0)
    assert (TABLE_3.max_prompt_length, TABLE_3.max_completion_length) == (512, 3072)
    assert (TABLE_3.temperature, TABLE_3.clip_ratio, TABLE_3.lr_scheduler, TABLE_3.warmup_ratio) == (
        0.9,
        0.2,
        "cosine",
        0.1,
    )
    assert (TABLE_3.adam_betas, TABLE_3.adam_epsilon) == ((0.9, 0.999), 1e-8)
    assert (TABLE_4.actor_learning_rate, TABLE_4.train_batch_size, TABLE_4.rollout_batch_size) == (5e-7, 64, 512)
    assert (TABLE_4.samples_per_prompt, TABLE_4.max_prompt_length, TABLE_4.max_generation_length) == (2, 1024, 1024)
    assert (TABLE_4.kl_coef, TABLE_4.advantage_estimator) == (1e-4, "rloo")
    assert set(SYSTEM_PROMPTS) == set(TABLE_3.learning_rate) == set(recipes.MODEL_SIZES)


def test_numbers_are_written_as_the_tables_write_them():
    assert [recipes.number(x) for x in (3e-6, 1e-8, 5e-7, 1e-4, 0.2, 0.999, 0.0, 0.1)] == [
        "3e-6",
        "1e-8",
        "5e-7",
        "1e-4",
        "0.2",
        "0.999",
        "0",
        "0.1",
    ]


def test_reading_the_tables_loads_no_framework():
    probe = "import sys, openrlhf_cfpo.recipes; print(sorted({'torch', 'transformers', 'trl'} & set(sys.modules)))"
    out = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONPATH": ROOT},
    ).stdout
    assert out.strip() == "[]"


# Tables that differ from the paper's in every value: a script that prints one of the paper's numbers holds a copy.
OTHER_TABLES = """
import dataclasses, sys
import openrlhf_cfpo.recipes as recipes
recipes.TABLE_3 = dataclasses.replace(
    recipes.TABLE_3, learning_rate={"1.5B": 2e-6, "3B": 2e-6, "7B": 4e-7}, batch_size=64, group_size=4, kl_beta=0.5,
    max_prompt_length=256, max_completion_length=1000, temperature=0.7, clip_ratio=0.3, lr_scheduler="linear",
    warmup_ratio=0.05, adam_betas=(0.8, 0.99), adam_epsilon=1e-6)
recipes.TABLE_4 = dataclasses.replace(
    recipes.TABLE_4, actor_learning_rate=1e-6, train_batch_size=32, rollout_batch_size=256, samples_per_prompt=4,
    max_prompt_length=512, max_generation_length=768, kl_coef=1e-3, advantage_estimator="reinforce_baseline",
    clip_ratio=0.3)
sys.exit(recipes.main(sys.argv[1:]))
"""


@pytest.fixture
def other_tables_python(tmp_path):
    """A PYTHON for the scripts whose reads of openrlhf_cfpo.recipes see OTHER_TABLES."""
    patch = tmp_path / "other_tables.py"
    patch.write_text(OTHER_TABLES)
    python = tmp_path / "python"
    python.write_text(
        f'#!/bin/sh\nif [ "$2" = openrlhf_cfpo.recipes ]; then shift 2; exec {sys.executable} {patch} "$@"; fi\n'
        f'exec {sys.executable} "$@"\n'
    )
    python.chmod(python.stat().st_mode | stat.S_IEXEC)
    return str(python)


def printed(script, python, *args):
    env = {k: v for k, v in os.environ.items() if k not in SCRIPT_ENV}
    proc = subprocess.run(
        ["bash", os.path.join(ROOT, "train_scripts", script), "--dry-run", *args],
        capture_output=True,
        text=True,
        env={**env, "PYTHON": python},
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    return [shlex.split(line) for line in proc.stdout.strip().split("\n")]


def flag_values(argv):
    """``--flag value`` pairs as {flag: value} (the last one wins, as argparse and TRL's parser keep it)."""
    return {flag: value for flag, value in zip(argv, argv[1:]) if flag.startswith("--") and not value.startswith("--")}


def test_the_llama3_script_reads_table_4(other_tables_python):
    (argv,) = printed("cfpo_llama3.sh", other_tables_python)
    got = flag_values(argv)
    assert got["--actor.adam.lr"] == "1e-6" and got["--algo.kl.init_coef"] == "1e-3"
    assert (got["--train.batch_size"], got["--rollout.batch_size"], got["--rollout.n_samples_per_prompt"]) == (
        "32",
        "256",
        "4",
    )
    assert (got["--data.max_len"], got["--rollout.max_new_tokens"]) == (str(512 + 768), "768")
    assert got["--algo.advantage.estimator"] == "reinforce_baseline" and got["--actor.eps_clip"] == "0.3"
    assert "cfpo_llama3-8b_kl1e-3" in got["--ckpt.path"]


def test_the_trl_script_reads_table_3(other_tables_python):
    (argv,) = printed("cfpo_qwen25_math_trl.sh", other_tables_python, "--model-size", "7B")
    got = flag_values(argv)
    assert got["--learning_rate"] == "4e-7" and got["--max_prompt_length"] == "256"
    assert (got["--max_completion_length"], got["--temperature"], got["--epsilon"], got["--beta"]) == (
        "1000",
        "0.7",
        "0.3",
        "0.5",
    )
    assert got["--num_generations"] == "4"
    gpus, micro = int(got["--num_processes"]), int(got["--per_device_train_batch_size"])
    assert gpus * micro * int(got["--gradient_accumulation_steps"]) == 64 * 4
    assert (got["--lr_scheduler_type"], got["--warmup_steps"]) == ("linear", "0.05")
    assert (got["--adam_beta1"], got["--adam_beta2"], got["--adam_epsilon"]) == ("0.8", "0.99", "1e-6")


def test_the_verl_script_reads_table_3(other_tables_python):
    prepare, train = printed("cfpo_qwen25_math_verl.sh", other_tables_python, "--batch-ratio", "2")
    assert flag_values(prepare)["--max-prompt-length"] == "256"
    got = dict(item.split("=", 1) for item in train if "=" in item and not item.startswith("TENSORBOARD_DIR"))
    actor = "actor_rollout_ref.actor."
    assert (got["data.max_prompt_length"], got["data.max_response_length"]) == ("256", "1000")
    assert (got["data.train_batch_size"], got[actor + "ppo_mini_batch_size"]) == ("64", "32")
    assert (got["actor_rollout_ref.rollout.n"], got["actor_rollout_ref.rollout.temperature"]) == ("4", "0.7")
    assert got[actor + "clip_ratio_low"] == got[actor + "clip_ratio_high"] == "0.3"
    assert got[actor + "kl_loss_coef"] == "0.5"
    assert (got[actor + "optim.lr"], got[actor + "optim.lr_scheduler_type"]) == ("2e-6", "linear")
    assert got[actor + "optim.lr_warmup_steps_ratio"] == "0.05"
    assert (got[actor + "optim.betas"], got[actor + "optim.override_optimizer_config"]) == ("[0.8,0.99]", "{eps:1e-6}")


SCRIPTS = [
    "cfpo_llama3.sh",
    "rloo_llama3.sh",
    "cfpo_qwen25_math_trl.sh",
    "grpo_qwen25_math_trl.sh",
    "cfpo_qwen25_math_verl.sh",
    "grpo_qwen25_math_verl.sh",
]


@pytest.mark.parametrize("script", SCRIPTS)
def test_script_flags_are_spelled_with_dashes_and_the_underscore_spelling_is_pointed_at(script):
    env = {k: v for k, v in os.environ.items() if k not in SCRIPT_ENV}
    proc = subprocess.run(
        ["bash", os.path.join(ROOT, "train_scripts", script), "--output_dir", "x", "--dry-run"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    if "llama3" in script:  # OpenRLHF flags pass through unchanged: --output_dir is OpenRLHF's to refuse
        assert proc.returncode == 0
        return
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1
    assert "--output-dir" in proc.stderr, proc.stderr


KEEP_FLAG = {
    "cfpo_llama3.sh": "--ckpt.max_num",
    "cfpo_qwen25_math_trl.sh": "--save_total_limit",
    "cfpo_qwen25_math_verl.sh": "trainer.max_actor_ckpt_to_keep",
}


def dry_run_with_stderr(script, *args):
    env = {k: v for k, v in os.environ.items() if k not in SCRIPT_ENV}
    proc = subprocess.run(
        ["bash", os.path.join(ROOT, "train_scripts", script), "--dry-run", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    return proc


def kept(argv_lines, flag):
    for argv in argv_lines:
        for i, token in enumerate(argv):
            if token == flag:
                return int(argv[i + 1])
            if token.startswith(flag + "="):
                return int(token.split("=", 1)[1])
    raise AssertionError(f"{flag} not in the printed command")


def disk_gib(stderr):
    (line,) = [line for line in stderr.splitlines() if ": disk: about " in line]
    return int(line.split("about ")[1].split(" GiB")[0]), line


@pytest.mark.parametrize("script", KEEP_FLAG)
def test_checkpoints_kept_are_bounded_and_the_dry_run_prints_the_disk_they_take(script):
    two = dry_run_with_stderr(script, "--model-size", "7B") if "qwen" in script else dry_run_with_stderr(script)
    five = dry_run_with_stderr(script, "--keep-checkpoints", "5", *(["--model-size", "7B"] if "qwen" in script else []))
    lines = lambda proc: [shlex.split(line) for line in proc.stdout.strip().split("\n")]  # noqa: E731
    assert kept(lines(two), KEEP_FLAG[script]) == 2 and kept(lines(five), KEEP_FLAG[script]) == 5
    (gib_two, line), (gib_five, _) = disk_gib(two.stderr), disk_gib(five.stderr)
    # each checkpoint holds the weights and AdamW's states: 14 bytes per parameter in DeepSpeed (bf16 weights, fp32
    # master, two fp32 moments), 16 with TRL's copy of the weights, 12 in verl's FSDP (fp32 weights, two moments)
    per_checkpoint = {
        "--ckpt.max_num": 14 * 8.03e9,
        "--save_total_limit": 16 * 7.62e9,
        "trainer.max_actor_ckpt_to_keep": 12 * 7.62e9,
    }[KEEP_FLAG[script]]
    assert abs((gib_five - gib_two) - 3 * per_checkpoint / 2**30) <= 1, line
    assert "--keep-checkpoints" in line


def test_the_llama3_run_keeps_no_unrotated_hf_copy_per_checkpoint():
    # OpenRLHF 0.11.2 writes {tag}_hf beside every DeepSpeed checkpoint with --ckpt.save_hf and never rotates them
    # (ppo_actor.py:675-680); the final HF model is written whatever it says (cli/train_ppo_ray.py:191)
    argv = shlex.split(dry_run_with_stderr("cfpo_llama3.sh").stdout)
    assert "--ckpt.save_hf" not in argv and argv[argv.index("--ckpt.output_dir") + 1].endswith("/final")


@pytest.mark.parametrize("script", KEEP_FLAG)
def test_keeping_no_checkpoint_is_one_clear_error(script):
    env = {k: v for k, v in os.environ.items() if k not in SCRIPT_ENV}
    proc = subprocess.run(
        ["bash", os.path.join(ROOT, "train_scripts", script), "--dry-run", "--keep-checkpoints", "0"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert proc.returncode == 2 and proc.stdout == "" and proc.stderr.count("\n") == 1
    assert "--keep-checkpoints" in proc.stderr


def flags_handled(script):
    """The flags a train script takes: its recipe's in openrlhf_cfpo.recipe_commands, the recipe named where the
    script (or the script it hands everything to, for cfpo_*.sh and friends) calls `run_recipe`."""
    import re

    from openrlhf_cfpo.recipe_commands import SCRIPTS as COMMAND_LINES

    body = open(os.path.join(ROOT, "train_scripts", script)).read()
    target = re.search(r'exec bash "\$\(dirname "\$\{BASH_SOURCE\[0\]\}"\)/(\w+\.sh)"', body)
    if target:
        body = open(os.path.join(ROOT, "train_scripts", target.group(1))).read()
    command_line = COMMAND_LINES[re.search(r"^run_recipe ([\w-]+) ", body, flags=re.M).group(1)]
    return (set(command_line.values) | set(command_line.switches) | {"-h", "--help"}) - {"--loss"}


@pytest.mark.parametrize("script", SCRIPTS)
def test_help_prints_the_usage_of_every_flag_and_no_script_source(script):
    env = {k: v for k, v in os.environ.items() if k not in SCRIPT_ENV}
    proc = subprocess.run(
        ["bash", os.path.join(ROOT, "train_scripts", script), "--help"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert proc.returncode == 0 and proc.stderr == ""
    assert proc.stdout.startswith(("Llama-3-8B", "Qwen2.5")) and "Usage: bash train_scripts/" in proc.stdout
    assert not [
        line
        for line in proc.stdout.splitlines()
        if line.startswith(("set -", "source ", "#!")) or line.rstrip().endswith(('=""', "=0", ";;"))
    ], proc.stdout
    assert {"--dry-run", "--help", "--keep-checkpoints"} <= flags_handled(script)
    missing = [flag for flag in flags_handled(script) if flag not in proc.stdout]
    assert missing == []


DOCTOR = {
    "cfpo_llama3.sh": ("llama3-rlhf", "flash_attn,vllm,deepspeed,ray,nccl"),
    "cfpo_qwen25_math_trl.sh": ("qwen25-math-trl", "vllm,deepspeed,nccl,trl,math_verify"),
    "cfpo_qwen25_math_verl.sh": ("qwen25-math-verl", "vllm,ray,nccl,verl,math_verify"),
}


@pytest.fixture
def run_for_real(tmp_path):
    """Run a script without --dry-run, PYTHON a stand-in: the recipe reads go to the real Python, the doctor answers
    with $DOCTOR_STATUS, every call but the recipe reads is recorded (one line each, in order)."""
    calls = tmp_path / "calls"
    python = tmp_path / "python"
    python.write_text(
        f'#!/bin/sh\n[ "$2" = openrlhf_cfpo.recipes ] && exec {sys.executable} "$@"\n'
        f'echo "$@" >> {calls}\necho "${{PYTHONPATH-}}" >> {tmp_path / "pythonpath"}\n'
        '[ "$2" = openrlhf_cfpo.doctor ] && exit "${DOCTOR_STATUS:-0}"\nexit 0\n'
    )
    python.chmod(python.stat().st_mode | stat.S_IEXEC)

    def run(script, *args, env=None):
        clean = {k: v for k, v in os.environ.items() if k not in SCRIPT_ENV + ("OPENRLHF_CFPO_SKIP_DOCTOR",)}
        clean.update(PYTHON=str(python), OUTPUT_DIR=str(tmp_path / "runs"), **(env or {}))
        proc = subprocess.run(
            ["bash", os.path.join(ROOT, "train_scripts", script), *args],
            capture_output=True,
            text=True,
            env=clean,
            timeout=60,
        )
        return proc, [shlex.split(line) for line in calls.read_text().splitlines()] if calls.exists() else []

    return run


@pytest.mark.parametrize("script", DOCTOR)
def test_the_preflight_runs_first_with_the_recipes_plan(script, run_for_real, tmp_path):
    proc, calls = run_for_real(script, "--gpus-per-node", "4", "--keep-checkpoints", "3")
    assert proc.returncode == 0, proc.stderr
    doctor, *started = calls
    assert doctor[:2] == ["-m", "openrlhf_cfpo.doctor"] and started  # then data preparation / training
    got = flag_values(doctor)
    recipe, needs = DOCTOR[script]
    assert (got["--recipe"], got["--needs"], got["--nodes"], got["--gpus-per-node"]) == (recipe, needs, "1", "4")
    assert float(got["--gpu-memory-gib"]) == recipes.GPU_MEMORY_GIB
    (line,) = [line for line in proc.stderr.splitlines() if ": disk: about " in line]
    assert got["--disk-gib"] == line.split("about ")[1].split(" GiB")[0]  # the estimate the script printed
    assert os.path.dirname(got["--output-dir"]) == str(tmp_path / "runs")  # the run folder


@pytest.mark.parametrize("script", DOCTOR)
def test_a_failed_preflight_stops_the_script_before_anything_starts(script, run_for_real, tmp_path):
    proc, calls = run_for_real(script, env={"DOCTOR_STATUS": "1"})
    assert proc.returncode == 1
    assert [call[1] for call in calls] == ["openrlhf_cfpo.doctor"]  # no data preparation, no training
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("script", DOCTOR)
@pytest.mark.parametrize("skip", [["--skip-doctor"], ["--dry-run"], "env"])
def test_the_preflight_is_skipped_on_request_and_in_a_dry_run(script, skip, run_for_real):
    args, env = ([], {"OPENRLHF_CFPO_SKIP_DOCTOR": "1"}) if skip == "env" else (skip, {})
    proc, calls = run_for_real(script, *args, env={"DOCTOR_STATUS": "1", **env})
    assert proc.returncode == 0, proc.stderr
    assert "openrlhf_cfpo.doctor" not in [call[1] for call in calls]
    assert calls if skip != ["--dry-run"] else calls == []


@pytest.mark.parametrize("script", ["cfpo_llama3.sh", "cfpo_qwen25_math_trl.sh", "cfpo_qwen25_math_verl.sh"])
def test_the_train_scripts_name_no_setting_of_the_commands_they_print(script):
    # the settings live in openrlhf_cfpo/recipes.py and recipe_commands.py: a script that names one holds a copy
    import re

    printed = [shlex.split(line) for line in dry_run_with_stderr(script).stdout.strip().split("\n")]
    names = {
        token.split("=")[0].lstrip("+") for argv in printed for token in argv if token.startswith("--") or "=" in token
    }
    names -= flags_handled(script)  # the data preparation shares some of the scripts' own flags
    folder = os.path.join(ROOT, "train_scripts")
    sources = "".join(open(os.path.join(folder, name)).read() for name in os.listdir(folder))
    named = [name for name in names if re.search(rf"(?<![\w.-]){re.escape(name)}(?![\w.-])", sources)]
    assert len(names) > 20 and named == []


def test_printed_commands_quote_every_argument_as_bash_printf_q_does():
    from openrlhf_cfpo.recipe_commands import shell_quote

    words = ["", "plain/path-1.0", "a b", "it's", "[0.9,0.999]", "{eps:1e-8}", "$HOME", "~/x", "a=~b", "#c", "c#", "é"]
    words += ["tab\there", "new\nline", "bell\a", "x;y|z&w", "`cmd`", "(x)", "<in>", "q?*!", 'say "hi"', "back\\slash"]
    quoted = subprocess.run(
        ["bash", "-c", 'printf "%q\\0" "$@"', "_", *words], capture_output=True, text=True, env={"LANG": "C.UTF-8"}
    ).stdout.split("\0")[:-1]
    assert [shell_quote(word) for word in words] == quoted


def test_the_started_command_gets_the_callers_pythonpath_back(run_for_real, tmp_path):
    # the script puts the checkout first on PYTHONPATH to read its recipes; the run itself sees the caller's
    proc, calls = run_for_real("cfpo_llama3.sh", "--skip-doctor", env={"PYTHONPATH": "/callers/path"})
    assert proc.returncode == 0, proc.stderr
    (started,) = calls
    assert started[:2] == ["-m", "openrlhf_cfpo.cli.train_ppo_ray"]
    assert (tmp_path / "pythonpath").read_text().split("\n")[-2] == "/callers/path"
