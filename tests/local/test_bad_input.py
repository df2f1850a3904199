"""Bad input: one clear error line and exit code 2, before any training writes anything."""

import json
import shutil

import pytest

from openrlhf_cfpo.local.cli import main_local
from openrlhf_cfpo.local.config import parse_args
from openrlhf_cfpo.local.embedded.chat import build_tokenizer


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
    line = _run_and_error(
        [*local_flags, "--actor.model_name_or_path", str(tmp_path / "nope")], capsys, tmp_path / "run"
    )
    assert "no such folder" in line and "--actor.model_name_or_path" in line


def test_a_reward_model_with_another_tokenizer_is_refused(local_flags, tiny_assets, capsys, tmp_path):
    other = tmp_path / "reward"
    shutil.copytree(tiny_assets.reward, other)
    tok = build_tokenizer()
    tok.add_tokens(["unrelated"])
    tok.save_pretrained(other)
    line = _run_and_error([*local_flags, "--reward.model_name_or_path", str(other)], capsys, tmp_path / "run")
    assert "different vocabularies" in line


@pytest.mark.parametrize(
    "flags, words",
    [
        (["--train.batch_size", "3", "--train.micro_batch_size", "1"], "must divide the rollout size"),
        (["--train.micro_batch_size", "3"], "must divide --train.batch_size"),
        (["--rollout.n_samples_per_prompt", "1"], "n_samples_per_prompt >= 2"),
        (["--data.max_samples", "2"], "make no rollout"),
    ],
)
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

    monkeypatch.setattr(
        trainer.AutoModelForCausalLM, "from_pretrained", lambda *a, **k: pytest.fail("a model was loaded")
    )


@pytest.mark.parametrize("flag", ["--ckpt.output_dir", "--ckpt.path", "--logger.tensorboard_dir"])
def test_an_output_folder_that_cannot_be_written_is_refused_before_any_model_loads(
    local_flags, capsys, tmp_path, read_only_folder, no_model_loads, flag
):
    target = f"{read_only_folder}/openrlhf-cfpo-test/run"
    extra = [flag, target] if flag != "--ckpt.output_dir" else []
    out = target if flag == "--ckpt.output_dir" else str(tmp_path / "run")
    code = main_local([*local_flags, *extra, "--ckpt.output_dir", out])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1, err
    assert err[0].startswith(
        f"openrlhf-cfpo local: error: {flag} {target} is not writable (creating a file in {read_only_folder} failed"
    )


def test_an_output_folder_that_is_a_file_is_refused_before_any_model_loads(
    local_flags, capsys, tmp_path, no_model_loads
):
    (tmp_path / "run").write_text("notes")
    line = _run_and_error(local_flags, capsys, tmp_path / "run", fresh=False)
    assert line == f"openrlhf-cfpo local: error: --ckpt.output_dir {tmp_path / 'run'} is a file; give a folder"
    line = _run_and_error([*local_flags, "--ckpt.path", str(tmp_path / "run" / "ckpt")], capsys, tmp_path / "out")
    assert f"--ckpt.path {tmp_path / 'run' / 'ckpt'} cannot be created: {tmp_path / 'run'} is a file" in line


def test_plot_refuses_an_output_it_cannot_write_before_reading_any_run(tmp_path, capsys, read_only_folder, monkeypatch):
    import openrlhf_cfpo.local.plot as plot

    monkeypatch.setattr(plot, "read_runs", lambda *a: pytest.fail("runs were read"))
    from openrlhf_cfpo.local.cli import main_plot

    for output, words in (
        (f"{read_only_folder}/fig.png", f"--output {read_only_folder}/fig.png: its folder is not writable"),
        (str(tmp_path / "fig.bmp"), ".bmp is not a figure format matplotlib writes; end the name in .png"),
        (str(tmp_path / "fig"), "no extension is not a figure format"),
    ):
        assert main_plot([str(tmp_path), "--output", output]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("openrlhf-cfpo plot: error: ") and words in err[0], err


def test_compare_refuses_an_unwritable_output_and_finished_runs_before_any_run_starts(
    local_flags, tmp_path, capsys, read_only_folder, monkeypatch
):
    import openrlhf_cfpo.local.runs as runs
    from openrlhf_cfpo.local.cli import main_compare

    monkeypatch.setattr(runs, "train_children", lambda *a, **k: pytest.fail("a run started"))
    assert main_compare(["--output", f"{read_only_folder}/cmp", *local_flags]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(
        f"openrlhf-cfpo compare: error: --output {read_only_folder}/cmp is not writable"
    )
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
    return [line[len("openrlhf-cfpo local: error: ") :] for line in err]


def test_every_bad_flag_is_listed_at_once(local_flags, capsys, tmp_path):
    errors = _errors(
        [*local_flags, "--rollout.temperature", "0", "--rollout.top_p", "2", "--algo.kl.init_coef", "-1"],
        capsys,
        tmp_path / "run",
    )
    assert errors == [
        "--rollout.temperature must be > 0 (sampling only), got 0.0",
        "--rollout.top_p must be in (0, 1], got 2.0",
        "--algo.kl.init_coef must be >= 0, got -1.0",
    ]


def test_every_missing_input_is_listed_at_once_before_any_model_loads(local_flags, capsys, tmp_path, no_model_loads):
    errors = _errors(
        [
            *local_flags,
            "--actor.model_name_or_path",
            str(tmp_path / "policy"),
            "--data.prompt_dataset",
            str(tmp_path / "prompts.jsonl"),
            "--reward.model_name_or_path",
            str(tmp_path / "rm"),
        ],
        capsys,
        tmp_path / "run",
    )
    assert [e.split(":")[0] for e in errors] == [
        f"--actor.model_name_or_path {tmp_path / 'policy'}",
        f"--reward.model_name_or_path {tmp_path / 'rm'}",
        f"--data.prompt_dataset {tmp_path / 'prompts.jsonl'}",
    ]


def test_a_causal_lm_given_as_the_reward_model_is_called_a_language_model(
    local_flags, tiny_assets, capsys, tmp_path, no_model_loads
):
    (error,) = _errors([*local_flags, "--reward.model_name_or_path", tiny_assets.policy], capsys, tmp_path / "run")
    assert error.startswith(
        f"--reward.model_name_or_path {tiny_assets.policy} is a language model (LlamaForCausalLM), not a reward model"
    )
    assert "num_labels=2" not in error


def test_a_folder_given_as_the_reward_file_is_called_a_folder(local_flags, capsys, tmp_path):
    (error,) = _errors(
        [f for f in local_flags[:2]] + local_flags[4:] + ["--reward.remote_url", str(tmp_path)],
        capsys,
        tmp_path / "run",
    )
    assert (
        error
        == f"--reward.remote_url {tmp_path} is a folder; give the .py file that defines reward_func(queries, prompts, "
        "labels)"
    )


@pytest.mark.parametrize(
    "lines, words",
    [
        (
            ['{"input": "tell me about cats :"}'] * 5 + ['{"input": "tell me about dogs :",}'],
            "line 6 is not JSON (Expecting property name enclosed in double quotes: column 34)",
        ),
        (
            ['{"input": "tell me about cats :"}', '{"input": 5}', "", '{"input": 7}'],
            "line 2, line 4 hold 5 (int) in its field 'input', neither text nor chat messages "
            '[{"role": ..., "content": ...}, ...]',
        ),
        (['{"input": "tell me about cats :"}', "5"], "line 2 is 5 (int), not an object with a text field 'input'"),
    ],
)
def test_a_bad_prompt_row_is_named_by_its_line_and_what_it_holds(local_flags, capsys, tmp_path, lines, words):
    data = tmp_path / "prompts.jsonl"
    data.write_text("\n".join(lines) + "\n")
    (error,) = _errors([*local_flags, "--data.prompt_dataset", str(data)], capsys, tmp_path / "run")
    assert error == f"--data.prompt_dataset {data}: {words}"


def test_empty_prompts_and_null_labels_are_refused_by_where_they_are(arithmetic_flags, capsys, tmp_path):
    data = tmp_path / "prompts.jsonl"
    rows = [{"input": "1 + 2 =", "label": "3"}, {"input": "  ", "label": "4"}, {"input": "2 + 2 =", "label": None}] * 4
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    errors = _errors([*arithmetic_flags, "--data.prompt_dataset", str(data)], capsys, tmp_path / "run")
    assert errors == [
        f"--data.prompt_dataset {data}: line 2, line 5, line 8 and 1 more hold an empty prompt in its field 'input'; "
        f"remove such rows",
        f"--data.prompt_dataset {data}: line 3, line 6, line 9 and 1 more hold a null label in its field 'label' "
        f"(--data.label_key); remove such rows or fill them in",
    ]


@pytest.mark.parametrize(
    "flags, error",
    [
        (
            ["--actor.lr_warmup_ratio", "2"],
            "--actor.lr_warmup_ratio must be in [0, 1] (a share of all optimizer steps), got 2.0",
        ),
        (["--actor.min_lr_ratio", "-0.5"], "--actor.min_lr_ratio must be in [0, 1] (a share of the peak lr), got -0.5"),
        (["--device", "tpu"], "--device tpu: choose auto, cpu, cuda or cuda:N"),
        (
            ["--actor.eps_clip", "0.3", "--actor.eps_clip_low_high", "0.2", "0.28"],
            "give --actor.eps_clip 0.3 (both sides) or --actor.eps_clip_low_high 0.2 0.28, not both: OpenRLHF would "
            "ignore --actor.eps_clip",
        ),
    ],
)
def test_values_that_would_be_silently_ignored_or_crash_are_refused(local_flags, capsys, tmp_path, flags, error):
    assert _errors([*local_flags, *flags], capsys, tmp_path / "run") == [error]


def test_either_trust_region_flag_alone_is_taken(local_flags, tmp_path):
    assert parse_args([*local_flags, "--actor.eps_clip", "0.3", "--ckpt.output_dir", str(tmp_path)]).eps_low_high == (
        0.3,
        0.3,
    )
    low_high = ["--actor.eps_clip_low_high", "0.2", "0.28", "--ckpt.output_dir", str(tmp_path)]
    assert parse_args([*local_flags, *low_high]).eps_low_high == (0.2, 0.28)


def test_prompts_left_over_from_the_last_rollout_get_one_warning_line(local_flags, capsys, tmp_path):
    # 7 prompts, 4 per rollout: 1 rollout per episode, 3 never trained on in it
    assert main_local([*local_flags, "--data.max_samples", "7", "--ckpt.output_dir", str(tmp_path / "run")]) == 0
    warnings = [line for line in capsys.readouterr().err.splitlines() if line.startswith("warning:")]
    assert warnings == [
        "warning: 7 prompts make 1 rollout(s) of --rollout.batch_size 4 per episode; 3 are left out of each episode "
        "(which ones changes with the episode's shuffle): use a multiple of 4 prompts (--data.max_samples) to train "
        "on all"
    ]


@pytest.mark.parametrize("command", ["compare", "sweep"])
def test_jobs_below_one_are_refused_with_the_other_bad_options(local_flags, capsys, tmp_path, command):
    from openrlhf_cfpo.local.cli import main_compare, main_sweep

    main = main_compare if command == "compare" else main_sweep
    assert main(["--output", str(tmp_path / "out"), "--jobs", "0", "--smooth", "1", *local_flags]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert sorted(err) == [
        f"openrlhf-cfpo {command}: error: --jobs must be >= 1 (runs trained at once), got 0",
        f"openrlhf-cfpo {command}: error: --smooth must be in [0, 1) (an EMA weight; 0 plots raw values), got 1.0",
    ]
    assert not (tmp_path / "out").exists()
