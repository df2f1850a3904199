"""`eval report` never passes a smoke run off as a full one: n beside every score, departures from the protocol
marked, and a column that mixes them refused unless asked for."""

import csv
import json

from openrlhf_cfpo.eval import registry


def _run(root, name, bench="gsm8k", **settings):
    d = root / name / bench
    d.mkdir(parents=True)
    result = {"pass_at_1": 0.5, "n_problems": settings.pop("n", 1319), "samples": settings.pop("samples", 1)}
    result.update(n_correct=0, n_unparsed=0, settings={"model": f"ckpt/{name}", "limit": None, **settings})
    (d / "results.json").write_text(json.dumps(result))
    return root / name


def _stderr_lines(capsys):
    return capsys.readouterr().err.strip().splitlines()


def test_a_limited_run_beside_a_full_one_in_a_column_is_refused_in_one_line_and_nothing_is_written(
    cli, tmp_path, capsys
):
    full, smoke = _run(tmp_path, "ev3"), _run(tmp_path, "ev1", limit=2, n=2)
    assert cli("report", smoke, full, "--output", tmp_path / "tables") == 2
    err = _stderr_lines(capsys)
    assert len(err) == 1 and "GSM8K" in err[0] and "ev1: --limit 2" in err[0] and "ev3: the full protocol" in err[0]
    assert "--allow-mixed" in err[0] and not (tmp_path / "tables").exists()


def test_allow_mixed_prints_the_column_with_n_beside_every_score_and_the_limit_marked(cli, tmp_path, capsys):
    full, smoke = _run(tmp_path, "ev3"), _run(tmp_path, "ev1", limit=2, n=2)
    assert cli("report", smoke, full, "--allow-mixed", "--output", tmp_path / "tables") == 0
    md = capsys.readouterr().out
    assert "| ev1 | – | 0.500 (n=2; --limit 2) |" in md and "| ev3 | – | 0.500 (n=1319) |" in md
    rows = list(csv.reader(open(tmp_path / "tables" / "table5_reasoning.csv")))
    assert rows[0][-1] == "Notes" and rows[1][2] == "0.5"  # the values stay numbers; the marks go to Notes
    assert rows[1][-1] == "GSM8K: n=2; --limit 2" and rows[2][-1] == ""


def test_runs_limited_alike_share_a_column_each_marked(cli, tmp_path, capsys):
    a, b = _run(tmp_path, "a", limit=5, n=5), _run(tmp_path, "b", limit=5, n=5)
    assert cli("report", a, b) == 0
    assert capsys.readouterr().out.count("0.500 (n=5; --limit 5)") == 2


def test_other_departures_from_the_protocol_are_marked_and_not_mixed_with_the_protocol(cli, tmp_path, capsys):
    protocol_length = registry.get("gsm8k").decoding.max_new_tokens
    same = _run(tmp_path, "same", max_new_tokens_override=protocol_length)  # the protocol's own length: no mark
    short = _run(tmp_path, "short", max_new_tokens_override=64)
    mine = _run(tmp_path, "mine", system_prompt_choice="custom")
    k4 = _run(tmp_path, "k4", samples=4)
    assert cli("report", same, short, mine, k4) == 2
    err = _stderr_lines(capsys)
    assert len(err) == 1 and "short: --max-new-tokens 64" in err[0] and "mine: system prompt: custom" in err[0]
    assert "k4: --samples 4" in err[0] and "same: the full protocol" in err[0]


def test_a_results_json_holding_a_list_is_one_error_naming_the_file(cli, tmp_path, capsys):
    (tmp_path / "run" / "ifeval").mkdir(parents=True)
    (tmp_path / "run" / "ifeval" / "results.json").write_text("[1, 2]")
    assert cli("report", tmp_path / "run") == 2
    err = _stderr_lines(capsys)
    assert len(err) == 1 and "ifeval/results.json" in err[0] and "JSON list" in err[0]
