"""A reward_func that hangs, exits or returns the wrong thing, prompts too long for the models, and a run folder or
prompts file changed before --resume: each is one line (or one warning), and nothing already computed is lost."""

import json
import shutil
import time

import pytest

from openrlhf_cfpo.local import rewards
from openrlhf_cfpo.local.cli import main_local
from openrlhf_cfpo.local.config import parse_args
from openrlhf_cfpo.local.preflight import prepare
from openrlhf_cfpo.local.trainer import LocalTrainer

PREFIX = "openrlhf-cfpo local: error: "


@pytest.fixture
def no_model_loads(monkeypatch):
    import openrlhf_cfpo.local.trainer as trainer

    monkeypatch.setattr(
        trainer.AutoModelForCausalLM, "from_pretrained", lambda *a, **k: pytest.fail("a model was loaded")
    )


def _reward_file(tmp_path, body: str, name: str = "reward.py"):
    """A reward file whose reward_func counts its calls (``calls``) and then runs ``body`` (indented 4)."""
    path = tmp_path / name
    path.write_text(
        "import sys, time, torch\ncalls = 0\ndef reward_func(queries, prompts, labels):\n    global calls\n"
        f"    calls += 1\n{body}"
    )
    return str(path)


def _stderr_lines(capsys):
    return capsys.readouterr().err.strip().splitlines()


# ---------------------------------------------------------------- a reward_func that hangs or exits (item 4)


def test_a_reward_call_that_outlasts_reward_timeout_stops_the_run_saved_with_one_line(
    arithmetic_flags, tmp_path, capsys
):
    # the 9th call (rollout 1, after 2 steps) never returns, as far as the run can wait
    reward = _reward_file(
        tmp_path, "    if calls == 9:\n        time.sleep(30)\n    return {'rewards': torch.ones(1)}\n"
    )
    out = tmp_path / "run"
    flags = [*arithmetic_flags, "--reward.remote_url", reward, "--ckpt.save_steps", "100", "--reward.timeout", "1"]
    t0 = time.time()
    assert main_local([*flags, "--ckpt.output_dir", str(out)]) == 1
    assert time.time() - t0 < 25  # (without the timeout: 30 s, then the run goes on)
    err = _stderr_lines(capsys)
    saved = out / "checkpoints" / "global_step_2"
    assert err[-1].startswith(
        f"{PREFIX}--reward.remote_url {reward}: reward_func did not return within --reward.timeout 1 s "
        "(sample 1/8 of rollout 1 (before step 3), query "
    )
    assert err[-1].endswith(
        f"; saved step 2 as {saved}: `--resume` continues from it; the call itself cannot be stopped (it runs in a "
        "thread), so the process must exit"
    )
    assert saved.is_dir()  # the steps before the hung call are kept, though --ckpt.save_steps 100 would not save them


def test_a_reward_call_that_runs_long_is_named_in_one_warning_line(arithmetic_flags, tmp_path, monkeypatch):
    monkeypatch.setattr(rewards, "SLOW_CALL_S", 0.2, raising=False)
    reward = _reward_file(
        tmp_path, "    if calls == 3:\n        time.sleep(0.6)\n    return {'rewards': torch.ones(1)}\n"
    )
    lines = []
    flags = [*arithmetic_flags, "--reward.remote_url", reward, "--ckpt.output_dir", str(tmp_path / "run")]
    LocalTrainer(parse_args(flags), log=lines.append).fit()
    slow = [line for line in lines if "has run for" in line]
    assert slow == [
        f"warning: reward_func of {reward} has run for 0 s on sample 3/8 of rollout 0 (before step 1) and not "
        "returned; still waiting (Ctrl-C stops the run, saved; --reward.timeout SECONDS stops it by itself)"
    ]


def test_a_reward_func_that_calls_sys_exit_is_one_line_not_a_silent_exit(arithmetic_flags, tmp_path, capsys):
    reward = _reward_file(tmp_path, "    sys.exit(3)\n")
    code = main_local([*arithmetic_flags, "--reward.remote_url", reward, "--ckpt.output_dir", str(tmp_path / "run")])
    err = _stderr_lines(capsys)
    assert code == 1 and err[-1].startswith(f"{PREFIX}--reward.remote_url {reward}: reward_func called sys.exit(3) ")
    assert err[-1].endswith("it must return {'rewards': ...}, not exit")


# ---------------------------------------------------------------- what reward_func returns (item 8)


@pytest.mark.parametrize(
    "returned, words",
    [
        (
            "{'reward': torch.ones(1), 'scores': torch.ones(1)}",
            "reward_func returned a dict in which the key 'rewards' is missing (its keys: 'reward', 'scores'); "
            "OpenRLHF trains on its 'rewards'",
        ),
        (
            "{'rewards': torch.ones(1, device='meta')}",  # (the stand-in for a tensor on a GPU that holds no values)
            "reward_func returned its rewards as a tensor on the meta device, which holds no values; return numbers "
            "or tensors on a real device",
        ),
    ],
)
def test_a_reward_dict_that_cannot_be_read_says_why_in_one_line(arithmetic_flags, tmp_path, capsys, returned, words):
    reward = _reward_file(tmp_path, f"    return {returned}\n")
    code = main_local([*arithmetic_flags, "--reward.remote_url", reward, "--ckpt.output_dir", str(tmp_path / "run")])
    assert code == 1 and _stderr_lines(capsys)[-1] == f"{PREFIX}--reward.remote_url {reward}: {words}"


def test_label_key_with_a_reward_model_is_a_warning_that_it_is_ignored(local_flags, tiny_assets, tmp_path):
    lines = []
    cfg = parse_args([*local_flags, "--data.label_key", "topic", "--ckpt.output_dir", str(tmp_path / "run")])
    inputs = prepare(cfg, lines.append)
    assert lines == [
        f"warning: --data.label_key topic is ignored: labels go to a reward_func (--reward.remote_url), and the reward "
        f"model {tiny_assets.reward} never sees them"
    ]
    assert inputs.label_key is None


# ---------------------------------------------------------------- prompts too long for the models (item 5)


def _prompts(tmp_path, long_line: int, long_text: str, n: int = 12):
    path = tmp_path / "prompts.jsonl"
    rows = [{"input": long_text if i + 1 == long_line else "tell me about cats :"} for i in range(n)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_a_prompt_longer_than_the_reward_models_positions_is_cut_as_openrlhf_cuts_it(local_flags, tmp_path, capsys):
    # 80 words: past the tiny reward model's 64 positions (it crashed with IndexError after generation)
    prompts = _prompts(tmp_path, 5, "tell me about cats " * 20 + ":")
    out = tmp_path / "run"
    assert main_local([*local_flags, "--data.prompt_dataset", str(prompts), "--ckpt.output_dir", str(out)]) == 0
    warnings = [line for line in _stderr_lines(capsys) if line.startswith("warning:")]
    assert warnings == [
        f"warning: 1 of 12 prompts are longer than the 58 tokens left for a prompt (the reward model's 64 positions "
        f"({local_flags[3]}) less --rollout.max_new_tokens 6), the first at line 5 of {prompts} (82 tokens); each is "
        "cut to its last 58 tokens, as OpenRLHF cuts them"
    ]
    assert (out / "model").is_dir()


def test_a_100k_character_prompt_is_measured_in_seconds_before_any_model_loads(local_flags, tmp_path, no_model_loads):
    prompts = _prompts(tmp_path, 7, "cats " * 20_000 + ":")
    cfg = parse_args([*local_flags, "--data.prompt_dataset", str(prompts), "--ckpt.output_dir", str(tmp_path / "run")])
    lines = []
    t0 = time.time()
    inputs = prepare(cfg, lines.append)
    assert time.time() - t0 < 10  # (it used to generate for 26 s and then ask for 28.7 GB)
    (line,) = lines
    assert line.startswith("warning: 1 of 12 prompts are longer than the 58 tokens") and "line 7 of" in line
    assert inputs.max_prompt_tokens == 58  # what the trainer cuts each prompt to


def test_prompts_longer_than_data_max_len_allows_are_cut_to_fit_it(local_flags, tmp_path):
    cfg = parse_args([*local_flags, "--data.max_len", "10", "--ckpt.output_dir", str(tmp_path / "run")])
    lines = []
    assert prepare(cfg, lines.append).max_prompt_tokens == 4
    assert lines[0].startswith(
        "warning: 12 of 12 prompts are longer than the 4 tokens left for a prompt (--data.max_len 10 less "
        "--rollout.max_new_tokens 6), the first at line 1 of "
    )


def test_a_generation_length_that_leaves_no_room_for_a_prompt_is_one_line(local_flags, tmp_path, capsys):
    out = tmp_path / "run"
    assert main_local([*local_flags, "--rollout.max_new_tokens", "64", "--ckpt.output_dir", str(out)]) == 2
    assert _stderr_lines(capsys) == [
        f"{PREFIX}--rollout.max_new_tokens 64 leaves no room for a prompt within the reward model's 64 positions "
        f"({local_flags[3]}): give at most 63"
    ]


def test_a_chat_template_the_tokenizer_lacks_is_one_line_before_any_model_loads(
    local_flags, tiny_assets, tmp_path, capsys, no_model_loads
):
    out = tmp_path / "run"
    assert main_local([*local_flags, "--data.apply_chat_template", "--ckpt.output_dir", str(out)]) == 2
    assert _stderr_lines(capsys) == [
        f"{PREFIX}--data.apply_chat_template: the policy's tokenizer ({tiny_assets.policy}) has no chat template; "
        "drop the flag (and give --data.input_template if the prompts need one), or use a model whose tokenizer has "
        "a template"
    ]


# ---------------------------------------------------------------- what --resume finds changed (item 8)


def test_resume_with_a_damaged_run_config_is_one_line_naming_it(local_flags, tmp_path, capsys):
    out = tmp_path / "run"
    assert main_local([*local_flags, "--ckpt.output_dir", str(out)]) == 0
    config = out / "run_config.json"
    config.write_text(config.read_text()[:100])  # what a kill while writing it left
    capsys.readouterr()
    assert main_local([*local_flags, "--ckpt.output_dir", str(out), "--resume"]) == 2
    (line,) = _stderr_lines(capsys)
    assert line.startswith(f"{PREFIX}--resume: {config} is damaged (not JSON: ")
    assert line.endswith(
        f"delete it, and `--resume` reads the run's id and flags from its checkpoints in {out}/checkpoints"
    )


def test_resume_refuses_prompts_changed_on_disk_since_the_run_started(local_flags, tiny_assets, tmp_path, capsys):
    prompts = tmp_path / "prompts.jsonl"
    shutil.copy(tiny_assets.prompts, prompts)
    flags = [*local_flags, "--data.prompt_dataset", str(prompts), "--ckpt.output_dir", str(tmp_path / "run")]
    assert main_local(flags) == 0
    lines = prompts.read_text().splitlines(keepends=True)
    prompts.write_text("".join([lines[0].replace("tell me about", "tell me more about"), *lines[1:]]))
    capsys.readouterr()
    assert main_local([*flags, "--resume"]) == 2
    assert _stderr_lines(capsys) == [
        f"{PREFIX}--resume: the prompts read from {prompts} are not the ones the run trained on (changed on disk since "
        f"it started: their sha256 differs from the one in {tmp_path / 'run' / 'run_config.json'}); put the run's "
        "prompts back, or train on these as a new run in another --ckpt.output_dir"
    ]
