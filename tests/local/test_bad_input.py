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
    (["--train.batch_size", "3", "--train.micro_batch_size", "1"], "must divide the rollout size"),
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


@pytest.fixture
def no_model_loads(monkeypatch):
    import openrlhf_cfpo.local.trainer as trainer

    monkeypatch.setattr(trainer.AutoModelForCausalLM, "from_pretrained", lambda *a, **k: pytest.fail("a model was loaded"))


@pytest.mark.parametrize("flag", ["--ckpt.output_dir", "--ckpt.path", "--logger.tensorboard_dir"])
def test_an_output_folder_that_cannot_be_written_is_refused_before_any_model_loads(local_flags, capsys, tmp_path, read_only_folder,
                                                                                   no_model_loads, flag):
    target = f"{read_only_folder}/openrlhf-cfpo-test/run"
    extra = [flag, target] if flag != "--ckpt.output_dir" else []
    out = target if flag == "--ckpt.output_dir" else str(tmp_path / "run")
    code = main_local([*local_flags, *extra, "--ckpt.output_dir", out])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1, err
    assert err[0].startswith(f"openrlhf-cfpo local: error: {flag} {target} is not writable (creating a file in {read_only_folder} failed")


def test_an_output_folder_that_is_a_file_is_refused_before_any_model_loads(local_flags, capsys, tmp_path, no_model_loads):
    (tmp_path / "run").write_text("notes")
    line = _run_and_error(local_flags, capsys, tmp_path / "run", fresh=False)
    assert line == f"openrlhf-cfpo local: error: --ckpt.output_dir {tmp_path / 'run'} is a file; give a folder"
    line = _run_and_error([*local_flags, "--ckpt.path", str(tmp_path / "run" / "ckpt")], capsys, tmp_path / "out")
    assert f"--ckpt.path {tmp_path / 'run' / 'ckpt'} cannot be created: {tmp_path / 'run'} is a file" in line


def test_plot_refuses_an_output_it_cannot_write_before_reading_any_run(tmp_path, capsys, read_only_folder, monkeypatch):
    import openrlhf_cfpo.local.plot as plot

    monkeypatch.setattr(plot, "read_runs", lambda *a: pytest.fail("runs were read"))
    from openrlhf_cfpo.local.cli import main_plot

    for output, words in ((f"{read_only_folder}/fig.png", f"--output {read_only_folder}/fig.png: its folder is not writable"),
                          (str(tmp_path / "fig.bmp"), ".bmp is not a figure format matplotlib writes; end the name in .png"),
                          (str(tmp_path / "fig"), "no extension is not a figure format")):
        assert main_plot([str(tmp_path), "--output", output]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("openrlhf-cfpo plot: error: ") and words in err[0], err


def test_compare_refuses_an_unwritable_output_and_finished_runs_before_any_run_starts(local_flags, tmp_path, capsys, read_only_folder,
                                                                                     monkeypatch):
    import openrlhf_cfpo.local.runs as runs
    from openrlhf_cfpo.local.cli import main_compare

    monkeypatch.setattr(runs, "train_children", lambda *a, **k: pytest.fail("a run started"))
    assert main_compare(["--output", f"{read_only_folder}/cmp", *local_flags]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"openrlhf-cfpo compare: error: --output {read_only_folder}/cmp is not writable")
    (tmp_path / "cmp" / "ppo_kl0").mkdir(parents=True)
    (tmp_path / "cmp" / "ppo_kl0" / "metrics.jsonl").write_text('{"step": 1}\n')
    assert main_compare(["--output", str(tmp_path / "cmp"), *local_flags]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "ppo_kl0 already holds a run (metrics.jsonl); pass --resume" in err[0]


def _errors(argv, capsys, out):
    """Every error line of a refused run (exit 2, nothing written)."""
    code = main_local([*argv, "--ckpt.output_dir", str(out)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and all(line.startswith("openrlhf-cfpo local: error: ") for line in err), err
    assert not out.exists()
    return [line[len("openrlhf-cfpo local: error: "):] for line in err]


def test_every_bad_flag_is_listed_at_once(local_flags, capsys, tmp_path):
    errors = _errors([*local_flags, "--rollout.temperature", "0", "--rollout.top_p", "2", "--algo.kl.init_coef", "-1"],
                     capsys, tmp_path / "run")
    assert errors == ["--rollout.temperature must be > 0 (sampling only), got 0.0", "--rollout.top_p must be in (0, 1], got 2.0",
                      "--algo.kl.init_coef must be >= 0, got -1.0"]


def test_every_missing_input_is_listed_at_once_before_any_model_loads(local_flags, capsys, tmp_path, no_model_loads):
    errors = _errors([*local_flags, "--actor.model_name_or_path", str(tmp_path / "policy"), "--data.prompt_dataset",
                      str(tmp_path / "prompts.jsonl"), "--reward.model_name_or_path", str(tmp_path / "rm")], capsys, tmp_path / "run")
    assert [e.split(":")[0] for e in errors] == [f"--actor.model_name_or_path {tmp_path / 'policy'}",
                                                 f"--reward.model_name_or_path {tmp_path / 'rm'}",
                                                 f"--data.prompt_dataset {tmp_path / 'prompts.jsonl'}"]


def test_a_causal_lm_given_as_the_reward_model_is_called_a_language_model(local_flags, tiny_assets, capsys, tmp_path, no_model_loads):
    (error,) = _errors([*local_flags, "--reward.model_name_or_path", tiny_assets.policy], capsys, tmp_path / "run")
    assert error.startswith(f"--reward.model_name_or_path {tiny_assets.policy} is a language model (LlamaForCausalLM), not a reward model")
    assert "num_labels=2" not in error


def test_a_folder_given_as_the_reward_file_is_called_a_folder(local_flags, capsys, tmp_path):
    (error,) = _errors([f for f in local_flags[:2]] + local_flags[4:] + ["--reward.remote_url", str(tmp_path)], capsys, tmp_path / "run")
    assert error == f"--reward.remote_url {tmp_path} is a folder; give the .py file that defines reward_func(queries, prompts, labels)"


@pytest.mark.parametrize("lines, words", [
    (['{"input": "tell me about cats :"}'] * 5 + ['{"input": "tell me about dogs :",}'],
     "line 6 is not JSON (Expecting property name enclosed in double quotes: column 34)"),
    (['{"input": "tell me about cats :"}', '{"input": 5}', "", '{"input": 7}'], "line 2, line 4 hold 5 (int) in its field 'input', not text"),
    (['{"input": "tell me about cats :"}', "5"], "line 2 is 5 (int), not an object with a text field 'input'"),
])
def test_a_bad_prompt_row_is_named_by_its_line_and_what_it_holds(local_flags, capsys, tmp_path, lines, words):
    data = tmp_path / "prompts.jsonl"
    data.write_text("\n".join(lines) + "\n")
    (error,) = _errors([*local_flags, "--data.prompt_dataset", str(data)], capsys, tmp_path / "run")
    assert error == f"--data.prompt_dataset {data}: {words}"
