"""Values the engine used to take without a word (or with a traceback, or a misleading hint) stop a command in one
line, before anything is loaded or built."""

import pytest

from openrlhf_cfpo.local.cli import main_compare, main_local, main_plot, main_sweep
from openrlhf_cfpo.local.config import parse_args
from openrlhf_cfpo.local.errors import ConfigError

LOCAL = "openrlhf-cfpo local: error: "


def _problems(flags, tmp_path):
    """Every problem ``local`` finds in ``flags`` by themselves (no model, no file)."""
    with pytest.raises(ConfigError) as e:
        parse_args([*flags, "--ckpt.output_dir", str(tmp_path / "run")])
    return e.value.problems


@pytest.mark.parametrize(
    "flags, problem",
    [
        (
            ["--actor.adam.betas", "1.5", "0.9"],
            "--actor.adam.betas B1 B2 must each be in [0, 1) (AdamW's averaging factors), got 1.5 0.9",
        ),
        (
            ["--actor.adam.betas", "0.9", "1"],
            "--actor.adam.betas B1 B2 must each be in [0, 1) (AdamW's averaging factors), got 0.9 1.0",
        ),
        (
            ["--ckpt.save_steps", "0"],
            "--ckpt.save_steps must be >= 1 (a checkpoint every N optimizer steps) or -1 (never), got 0",
        ),
        (
            ["--ckpt.save_steps", "-5"],
            "--ckpt.save_steps must be >= 1 (a checkpoint every N optimizer steps) or -1 (never), got -5",
        ),
        (
            ["--ckpt.max_num", "0"],
            "--ckpt.max_num must be >= 1 (checkpoints kept; --ckpt.save_steps -1 saves none), got 0",
        ),
        (["--num_threads", "-1"], "--num_threads must be >= 0 (0: chosen by the model's size), got -1"),
    ],
)
def test_values_outside_their_documented_range_are_refused_in_one_line(tmp_path, flags, problem):
    assert _problems(flags, tmp_path) == [problem]


def test_the_documented_never_and_zero_threads_are_taken(tmp_path):
    a = parse_args(["--ckpt.save_steps", "-1", "--num_threads", "0", "--ckpt.output_dir", str(tmp_path)]).args
    assert a.ckpt.save_steps == -1 and a.num_threads == 0


def test_bad_betas_stop_the_command_before_any_model_loads(capsys, tmp_path):
    assert main_local(["--actor.adam.betas", "1.5", "0.9", "--ckpt.output_dir", str(tmp_path / "run")]) == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        f"{LOCAL}--actor.adam.betas B1 B2 must each be in [0, 1) (AdamW's averaging factors), got 1.5 0.9"
    ]
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    "flag, meant",
    [
        ("--lr", "--actor.adam.lr"),
        ("--learning_rate", "--actor.adam.lr"),
        ("--actor.learning_rate", "--actor.adam.lr"),
        ("--actor_learning_rate", "--actor.adam.lr"),
        ("--max_ckpt_num", "--ckpt.max_num"),  # OpenRLHF's name before its dotted ones
        ("--max_epochs", "--train.max_epochs"),  # the last dotted part alone
        ("--batch_size", "--rollout.batch_size or --train.batch_size"),
        ("--rollout.n_sample_per_prompt", "--rollout.n_samples_per_prompt"),
    ],
)
def test_an_unknown_flag_is_answered_with_the_flag_it_means_never_help(tmp_path, flag, meant):
    (problem,) = _problems([flag, "1"], tmp_path)
    assert problem == (f"unrecognized arguments: {flag} 1; did you mean {meant}? (see `openrlhf-cfpo local --help`)"), (
        problem
    )


@pytest.mark.parametrize(
    "prefix, meant",
    [
        ("--rollout.batch", "--rollout.batch_size"),  # argparse's default would read it as that flag without a word
        ("--actor.lr", "--actor.adam.lr"),  # a prefix of --actor.lr_scheduler and --actor.lr_warmup_ratio
    ],
)
def test_a_flag_cut_short_is_not_taken_for_a_longer_one_and_is_answered_with_the_flag_it_means(tmp_path, prefix, meant):
    (problem,) = _problems([prefix, "3"], tmp_path)
    assert problem == f"unrecognized arguments: {prefix} 3; did you mean {meant}? (see `openrlhf-cfpo local --help`)"


@pytest.mark.parametrize(
    "command, flags, meant",
    [
        (main_sweep, ["--iter", "4"], "--iterations"),
        (main_sweep, ["--los", "ppo"], "--losses"),
        (main_compare, ["--kl_coef", "0.1"], "--kl_coefs"),
    ],
)
def test_a_compare_or_sweep_option_cut_short_is_one_line_naming_it_before_anything_runs(
    tmp_path, capsys, command, flags, meant
):
    prog = f"openrlhf-cfpo {command.__name__.removeprefix('main_')}"
    assert command(["--output", str(tmp_path / "out"), *flags]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"{prog}: error: unrecognized arguments: {flags[0]}; did you mean {meant}? (see `{prog} --help`)"]
    assert not (tmp_path / "out").exists()


def test_an_unwritable_empty_cache_is_one_line_naming_it_and_its_variable_before_anything_is_built(
    capsys, tmp_path, monkeypatch, read_only_folder
):
    from openrlhf_cfpo.local.embedded.build import EmbeddedDefault

    cache = f"{read_only_folder}/openrlhf-cfpo-cache"
    monkeypatch.setenv("OPENRLHF_CFPO_CACHE", cache)
    monkeypatch.setattr(EmbeddedDefault, "build", lambda *a, **k: pytest.fail("a build started"))
    for default in ("chat", "arithmetic"):
        out = tmp_path / default
        assert main_local(["--embedded_default", default, "--ckpt.output_dir", str(out)]) == 2
        assert capsys.readouterr().err.strip().splitlines() == [
            f"{LOCAL}the cache folder {cache}, where the embedded defaults are built, is not writable (creating a "
            f"file in {read_only_folder} failed: Permission denied); set OPENRLHF_CFPO_CACHE to a folder you can write"
        ]
        assert not out.exists()


def test_a_cache_under_a_file_is_one_line_too(capsys, tmp_path, monkeypatch):
    (tmp_path / "notes").write_text("")
    monkeypatch.setenv("OPENRLHF_CFPO_CACHE", str(tmp_path / "notes" / "cache"))
    assert main_local(["--ckpt.output_dir", str(tmp_path / "run")]) == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        f"{LOCAL}the cache folder {tmp_path / 'notes' / 'cache'}, where the embedded defaults are built, cannot be "
        f"created: {tmp_path / 'notes'} is a file; set OPENRLHF_CFPO_CACHE to a folder you can write"
    ]


def test_smollm2s_own_build_names_an_unwritable_cache_too(monkeypatch, read_only_folder):
    from openrlhf_cfpo.local import smollm2

    monkeypatch.setattr(smollm2, "source_versions", lambda: {smollm2.WEIGHTS_PACKAGE: "0", "gguf": "0"})
    monkeypatch.setattr(smollm2, "build", lambda *a, **k: pytest.fail("a build started"))
    monkeypatch.setenv("OPENRLHF_CFPO_CACHE", f"{read_only_folder}/cache")
    with pytest.raises(ConfigError, match=f"the cache folder {read_only_folder}/cache, .* set OPENRLHF_CFPO_CACHE"):
        smollm2.cached()


def test_an_unwritable_output_folder_is_named_once(capsys, read_only_folder):
    # the folder itself cannot be written: "creating a file there", not its name a second time
    assert main_local(["--ckpt.output_dir", read_only_folder]) == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        f"{LOCAL}--ckpt.output_dir {read_only_folder} is not writable (creating a file there failed: Permission "
        "denied); choose another folder"
    ]


def test_a_figure_inside_a_file_names_that_file(tmp_path, capsys):
    (tmp_path / "notes").write_text("")
    assert main_plot([str(tmp_path), "--output", str(tmp_path / "notes" / "fig.png")]) == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        f"openrlhf-cfpo plot: error: --output {tmp_path / 'notes' / 'fig.png'}: {tmp_path / 'notes'} is a file, not a "
        "folder"
    ]
