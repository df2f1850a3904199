"""One benchmark registry: the eval CLI, `report` and run_suite.sh are built from it; nothing else lists benchmarks."""

import json
import os
import subprocess
import sys
import types
from pathlib import Path

import pytest

from openrlhf_cfpo.eval import registry
from openrlhf_cfpo.eval.cli import build_parser
from openrlhf_cfpo.eval.decoding import Decoding
from openrlhf_cfpo.eval.judge import JudgeConfig

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def extra_benchmark(monkeypatch):
    """A benchmark declared by a module of its own, added to the registry as a new module would be."""
    module = types.ModuleType("extra_bench_module")
    module.BENCHMARKS = {
        "extra_bench": registry.Benchmark(
            name="extra_bench",
            module=module.__name__,
            suite="rlhf",
            table=1,
            columns=(("Extra", "score"),),
            results=("score",),
            decoding=Decoding(max_new_tokens=7),
            judge="judge-x",
        )
    }
    module.run = lambda args: {"score": 1.0}
    monkeypatch.setitem(sys.modules, module.__name__, module)
    collected = registry._collected()
    monkeypatch.setattr(registry, "_collected", lambda: collected + tuple(module.BENCHMARKS.values()))
    return module


def test_a_registered_benchmark_gets_a_subcommand_with_judge_flags_defaulting_to_its_judge(extra_benchmark):
    args = build_parser().parse_args(["extra_bench", "--model", "m", "--output", "o"])
    assert args.judge_model == "judge-x"
    assert (args.judge_concurrency, args.judge_max_retries, args.judge_timeout) == (
        JudgeConfig.concurrency,
        JudgeConfig.max_retries,
        JudgeConfig.timeout_s,
    )


def test_a_registered_benchmark_becomes_a_column_of_its_papers_table(extra_benchmark, cli, tmp_path, capsys):
    run = tmp_path / "run"
    (run / "extra_bench").mkdir(parents=True)
    (run / "extra_bench" / "results.json").write_text(json.dumps({"score": 12.5, "settings": {"model": "ck/m"}}))
    assert cli("report", run, "--output", tmp_path) == 0
    assert "| Arena-Hard | AlpacaEval-LC | AlpacaEval-WR | MT-Bench | IFEval | Extra |" in capsys.readouterr().out
    assert (tmp_path / "table1_instruction_following.csv").read_text().splitlines()[1].endswith(",12.5")


def test_benchmarks_without_a_judge_get_no_judge_flags():
    args = build_parser().parse_args(["ifeval", "--model", "m", "--output", "o"])
    assert not hasattr(args, "judge_model")


def test_every_suite_lists_its_benchmarks_in_the_papers_column_order():
    assert list(registry.benchmarks("reasoning")) == ["math500", "gsm8k", "gpqa_diamond", "aime24"]
    assert list(registry.benchmarks("rlhf")) == ["arena_hard", "alpaca_eval", "mt_bench", "ifeval", "openllm"]


def test_run_suite_runs_exactly_the_benchmarks_the_registry_lists(tmp_path):
    fake = tmp_path / "bin"
    fake.mkdir()
    log = tmp_path / "calls.log"
    # This python's registry lists two benchmarks of its own; every other call is only logged.
    (fake / "python").write_text(
        f'#!/bin/sh\nif [ "$2" = openrlhf_cfpo.eval.suite ]; then echo "listed $3" >> {log}; '
        'printf "one\\ntwo\\n"; exit 0; fi\n'
        f'echo "$@" >> {log}\n'
    )
    (fake / "python").chmod(0o755)
    env = {**os.environ, "PATH": f"{fake}:{os.environ['PATH']}"}
    proc = subprocess.run(
        ["bash", str(REPO / "eval/run_suite.sh"), "ck/a", "--reasoning", "--skip-doctor"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    calls = [line.split() for line in log.read_text().splitlines()]
    assert calls[0] == ["listed", "reasoning"]
    assert [c[3] for c in calls[1:]] == ["one", "two", "report"]


def _run_with(root, name, identity, model="given"):
    d = root / name
    (d / "ifeval").mkdir(parents=True)
    (d / "ifeval" / "results.json").write_text(
        json.dumps({"prompt_strict": 50.0, "settings": {"model": model, "model_identity": identity}})
    )
    return d


def test_report_names_rows_by_the_checkpoints_folder_or_hub_name_whatever_model_string_was_typed(cli, tmp_path, capsys):
    runs = [
        _run_with(tmp_path, "r1", {"path": "/ckpts/cfpo/final", "fingerprint": "1"}, model="."),
        _run_with(tmp_path, "r2", {"path": "/ckpts/rloo/final", "fingerprint": "2"}, model="../rloo/final/"),
        _run_with(tmp_path, "r3", {"path": "/ckpts/cfpo-it4", "fingerprint": "3"}, model="./"),
        _run_with(
            tmp_path, "r4", {"hub": "Qwen/Qwen2.5-3B-Instruct", "revision": "abc"}, model="Qwen/Qwen2.5-3B-Instruct"
        ),
    ]
    assert cli("report", *runs) == 0
    rows = [line.split(" | ")[0].lstrip("| ") for line in capsys.readouterr().out.splitlines() if line.startswith("| ")]
    assert rows[1:5] == ["cfpo/final", "rloo/final", "cfpo-it4", "Qwen2.5-3B-Instruct"]


def test_report_tells_the_same_model_in_two_run_folders_apart_by_the_run_folder(cli, tmp_path, capsys):
    same = {"path": "/ckpts/final", "fingerprint": "1"}
    assert cli("report", _run_with(tmp_path, "seed0", same), _run_with(tmp_path, "seed1", same)) == 0
    out = capsys.readouterr().out
    assert "| final (seed0) |" in out and "| final (seed1) |" in out


def test_report_writes_its_csv_tables_into_output_and_nowhere_else(cli, tmp_path):
    run = _run_with(tmp_path, "run", {"path": "/ckpts/final", "fingerprint": "1"})
    assert cli("report", run) == 0
    assert not list(run.glob("*.csv"))
    assert cli("report", run, "--output", tmp_path / "tables") == 0
    assert sorted(p.name for p in (tmp_path / "tables").iterdir()) == [
        "table1_instruction_following.csv",
        "table2_capabilities.csv",
    ]
    assert not list(run.glob("*.csv"))


def test_run_suite_help_prints_its_usage_and_succeeds():
    proc = subprocess.run(
        ["bash", str(REPO / "eval/run_suite.sh"), "--help"], capture_output=True, text=True, timeout=60
    )
    assert (
        proc.returncode == 0
        and proc.stdout.startswith("usage: bash eval/run_suite.sh CKPT")
        and "--reasoning" in proc.stdout
    )
