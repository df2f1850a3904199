"""A train script's --dry-run passes the command it prints through that framework's own parser: a flag the framework
would refuse fails the dry run in one line, and a framework that is not installed here is said, not guessed."""

import importlib.util
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def dry_run(script: str, *args: str) -> tuple[int, list[str]]:
    env = {k: v for k, v in os.environ.items() if k != "OPENRLHF_CFPO_SKIP_COMMAND_CHECK"}
    env["PYTHON"] = sys.executable
    proc = subprocess.run(
        ["bash", os.path.join(ROOT, "train_scripts", script), "--dry-run", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    return proc.returncode, proc.stderr.strip().splitlines()


@pytest.mark.skipif(importlib.util.find_spec("openrlhf") is None, reason="needs the openrlhf extra")
def test_the_llama3_dry_run_passes_openrlhfs_parser_and_fails_on_a_flag_it_refuses():
    status, err = dry_run("cfpo_llama3.sh")
    assert status == 0 and err[-1] == "llama3_rlhf.sh: the command passed OpenRLHF's own parser and checks", err
    status, err = dry_run("cfpo_llama3.sh", "--no_such_flag", "3")
    assert status == 2 and "OpenRLHF's own parser" in err[-1] and "unrecognized arguments: --no_such_flag 3" in err[-1]
    status, err = dry_run("cfpo_llama3.sh", "--actor.adam.lr", "-1")  # a later value wins: this one is checked
    assert status == 2 and "--actor.adam.lr must be more than 0 (got -1.0)" in err[-1], err


@pytest.mark.skipif(importlib.util.find_spec("trl") is None, reason="needs the trl extra")
def test_the_trl_dry_run_fails_on_a_flag_trls_parser_does_not_know():
    status, err = dry_run("cfpo_qwen25_math_trl.sh", "--", "--no_such_flag", "3")
    assert status == 2 and "TRL's own parser" in err[-1] and "--no_such_flag" in err[-1], err


@pytest.mark.skipif(importlib.util.find_spec("verl") is not None, reason="verl is installed: tests/verl check it")
def test_the_verl_dry_run_says_the_command_was_not_checked_where_verl_is_not_installed():
    status, err = dry_run("cfpo_qwen25_math_verl.sh", "--", "data.no_such_key=3")
    assert status == 0 and "not checked: verl is not installed here" in err[-1], err
