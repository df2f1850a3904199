"""Bad input: one clear error line and exit code 2, before any training writes anything."""
import shutil

import pytest

from openrlhf_cfpo.local.embedded.chat import build_tokenizer
from openrlhf_cfpo.local.cli import main_local


def _run_and_error(argv, capsys, out, fresh=True):
    code = main_local([*argv, "--ckpt.output_dir", str(out)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1 and err[0].startswith("openrlhf-cfpo local: error: ")
    if fresh:
        assert not (out / "metrics.jsonl").exists()
    return err[0]


def test_an_unknown_flag_is_named_with_the_closest_real_one(local_flags, capsys, tmp_path):
    line = _run_and_error([*local_flags, "--rollout.n_sample_per_prompt", "4"], capsys, tmp_path / "run")
    assert "--rollout.n_sample_per_prompt" in line and "did you mean --rollout.n_samples_per_prompt" in line


def test_a_missing_model_folder_is_reported(local_flags, capsys, tmp_path):
    line = _run_and_error([*local_flags, "--actor.model_name_or_path", str(tmp_path / "nope")], capsys, tmp_path / "run")
    assert "no such folder" in line and "--actor.model_name_or_path" in line


def test_a_reward_model_with_another_tokenizer_is_refused(local_flags, tiny_assets, capsys, tmp_path):
    other = tmp_path / "reward"
    shutil.copytree(tiny_assets.reward, other)
    tok = build_tokenizer()
    tok.add_tokens(["unrelated"])
    tok.save_pretrained(other)
    line = _run_and_error([*local_flags, "--reward.model_name_or_path", str(other)], capsys, tmp_path / "run")
    assert "different vocabularies" in line


@pytest.mark.parametrize("flags, words", [
    (["--train.batch_size", "3"], "must divide the rollout size"),
    (["--train.micro_batch_size", "3"], "must divide --train.batch_size"),
    (["--rollout.n_samples_per_prompt", "1"], "n_samples_per_prompt >= 2"),
    (["--data.max_samples", "2"], "make no rollout"),
])
def test_sizes_that_do_not_fit_are_reported(local_flags, capsys, tmp_path, flags, words):
    assert words in _run_and_error([*local_flags, *flags], capsys, tmp_path / "run")


def test_an_existing_run_is_not_overwritten_without_resume(local_flags, capsys, tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    (out / "metrics.jsonl").write_text('{"step": 1}\n')
    line = _run_and_error(local_flags, capsys, out, fresh=False)
    assert "--resume" in line
    assert (out / "metrics.jsonl").read_text() == '{"step": 1}\n'
