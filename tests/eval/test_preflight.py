"""Every input checked before anything loads: all problems in one run, one line each, cheap ones first, no retries."""

import socket
import time

import pytest


def _errors(capsys):
    return capsys.readouterr().err.strip().splitlines()


def _closed_port_url():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now: a connection is refused at once
    return f"http://127.0.0.1:{port}"


@pytest.fixture
def nothing_loads(monkeypatch):
    def no_model(*a, **k):
        raise AssertionError("a model was loaded although the run could not start")

    monkeypatch.setattr("openrlhf_cfpo.eval.common.make_backend", no_model)


def test_a_missing_model_key_and_data_are_all_listed_in_one_run(cli, tmp_path, monkeypatch, capsys, nothing_loads):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    (tmp_path / "empty").mkdir()
    start = time.monotonic()
    rc = cli(
        "mt_bench",
        "--model",
        tmp_path / "nonexistent",
        "--output",
        tmp_path / "run",
        "--data-dir",
        tmp_path / "empty",
        "--judge-base-url",
        "http://127.0.0.1:9/v1",
    )
    err = _errors(capsys)
    assert rc == 2 and time.monotonic() - start < 5
    assert all(line.startswith("openrlhf-cfpo eval mt_bench: error: ") for line in err)
    assert len(err) == 5
    assert "nonexistent: no such folder" in err[0]
    assert sum("OPENAI_API_KEY" in line for line in err) == 1
    assert sum("--data-dir" in line and "has no" in line for line in err) == 3
    assert not (tmp_path / "run").exists()


def test_a_missing_model_is_named_as_such_not_as_a_system_prompt_problem(cli, tmp_path, capsys, nothing_loads):
    (tmp_path / "empty").mkdir()
    assert cli("gsm8k", "--model", "/nonexistent", "--output", tmp_path / "run", "--data-dir", tmp_path / "empty") == 2
    err = _errors(capsys)
    assert len(err) == 2 and "--model /nonexistent: no such folder" in err[0] and "gsm8k" in err[1]
    assert not any("system-prompt" in line for line in err)


def test_an_unreachable_hub_costs_one_probe_and_every_problem_is_listed(
    cli, tmp_path, monkeypatch, capsys, nothing_loads
):
    import huggingface_hub.constants

    endpoint = _closed_port_url()
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(huggingface_hub.constants, "ENDPOINT", endpoint)
    start = time.monotonic()
    rc = cli("gsm8k", "--model", "org/absent-model", "--output", tmp_path / "run", "--cache-dir", tmp_path / "cache")
    err = _errors(capsys)
    assert rc == 2 and time.monotonic() - start < 5  # a hub retry loop takes ~24 s
    assert len(err) == 2
    assert "could not download openai/gsm8k" in err[0] and endpoint in err[0] and "--data-dir" in err[0]
    assert "--model org/absent-model" in err[1] and "does not answer" in err[1] and "HF_HUB_OFFLINE" in err[1]


def test_an_output_that_is_a_file_is_refused_with_the_other_problems(
    cli, stand_in_model, tmp_path, capsys, nothing_loads
):
    (tmp_path / "out").write_text("")
    (tmp_path / "empty").mkdir()
    assert cli("aime24", "--model", stand_in_model, "--output", tmp_path / "out", "--data-dir", tmp_path / "empty") == 2
    err = _errors(capsys)
    assert len(err) == 2 and "is a file" in err[0] and "aime_2024" in err[1]
