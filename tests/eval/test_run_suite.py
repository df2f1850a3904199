"""eval/run_suite.sh runs `openrlhf-cfpo doctor` before any benchmark, with the flags its benchmarks need."""

import os
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def _suite(env, *args):
    return subprocess.run(
        ["bash", str(REPO / "eval/run_suite.sh"), *args], env=env, capture_output=True, text=True, timeout=60
    )


def _calls(log):
    return [line.split() for line in log.read_text().splitlines()] if log.exists() else []


def test_the_doctor_runs_first_asking_for_a_token_where_data_is_gated(logging_python):
    env, log = logging_python
    proc = _suite(env, "ck/a", "--reasoning", "--output", "O")
    assert proc.returncode == 0, proc.stderr
    calls = _calls(log)
    assert calls[0] == [
        "-m",
        "openrlhf_cfpo.doctor",
        "--recipe",
        "eval",
        "--gpus",
        "0",
        "--hf-token",
        "--output-dir",
        "O",
    ]
    assert all(c[1] != "openrlhf_cfpo.doctor" for c in calls[1:])


def test_the_doctor_checks_the_judge_the_benchmarks_will_use(logging_python):
    env, log = logging_python
    proc = _suite(env, "ck/a", "--", "--limit", "2", "--judge-base-url", "http://127.0.0.1:8000/v1")
    assert proc.returncode == 0, proc.stderr
    assert _calls(log)[0] == [
        "-m",
        "openrlhf_cfpo.doctor",
        "--recipe",
        "eval",
        "--gpus",
        "0",
        "--judge-base-url",
        "http://127.0.0.1:8000/v1",
        "--judge-model",
        "gpt-4.1",
        "--judge-model",
        "gpt-4",
        "--output-dir",
        "eval_results",
    ]
    proc = _suite({**env, "OPENAI_BASE_URL": "http://judge/v1"}, "ck/a", "--", "--judge-model", "my-judge")
    doctor = [c for c in _calls(log) if c[1] == "openrlhf_cfpo.doctor"][-1]
    assert (
        doctor[6:10] == ["--judge-base-url", "http://judge/v1", "--judge-model", "my-judge"]
        and doctor.count("--judge-model") == 1
    )


@pytest.mark.parametrize("how", ["flag", "environment"])
def test_the_doctor_can_be_skipped(how, logging_python):
    env, log = logging_python
    args = ["ck/a", "--reasoning"] + (["--skip-doctor"] if how == "flag" else [])
    proc = _suite({**env, "OPENRLHF_CFPO_SKIP_DOCTOR": "1"} if how == "environment" else env, *args)
    assert proc.returncode == 0, proc.stderr
    calls = _calls(log)
    assert calls and all(c[1] != "openrlhf_cfpo.doctor" for c in calls)


def test_a_fault_the_doctor_finds_stops_the_suite_before_any_benchmark(logging_python):
    env, log = logging_python
    python = Path(env["PATH"].split(os.pathsep)[0]) / "python"
    lines = python.read_text().splitlines()
    python.write_text(
        "\n".join(
            lines[:1]
            + [f'[ "$2" = openrlhf_cfpo.doctor ] && echo "$@" >> {log} && echo "doctor: no GPU driver" >&2 && exit 3']
            + lines[1:]
        )
        + "\n"
    )
    proc = _suite(env, "ck/a", "--reasoning")
    assert proc.returncode == 3 and proc.stderr.strip() == "doctor: no GPU driver"
    assert [c[1] for c in _calls(log)] == ["openrlhf_cfpo.doctor"]


def test_help_lists_each_suites_benchmarks_from_the_registry_and_the_script_names_none(logging_python):
    from openrlhf_cfpo.eval import registry

    env, log = logging_python
    proc = _suite(env, "--help")
    assert proc.returncode == 0 and not _calls(log), proc.stderr
    source = (REPO / "eval/run_suite.sh").read_text()
    for suite, description in registry.SUITES.items():
        names = list(registry.benchmarks(suite))
        assert names and f"  {' ' * 11}{' '.join(names)}\n" in proc.stdout and description in proc.stdout
        assert [name for name in names if name in source] == []  # a renamed benchmark cannot leave it stale
    assert "  reasoning  " in _suite(env).stderr  # the usage shown for a bad call lists them too
