"""Each benchmark end to end: tiny model on CPU, invented data in the official layout, a real local judge."""

import json

import pytest

SMOKE = ("--max-new-tokens", 4, "--batch-size", 2)


def _results(out, bench):
    return json.loads((out / bench / "results.json").read_text())


def test_mt_bench_scores_match_the_judges_ratings(cli, tiny_model, fixture_data, judge_env, judge_server, tmp_path):
    out = tmp_path / "run"
    rc = cli(
        "mt_bench",
        "--model",
        tiny_model,
        "--output",
        out,
        "--data-dir",
        fixture_data,
        "--judge-base-url",
        judge_server.url,
        *SMOKE,
    )
    assert rc == 0
    r = _results(out, "mt_bench")
    # fixture: writing/roleplay graded 8 then 6, math/reasoning (reference-guided) 4 then 2
    assert r["turn1"] == pytest.approx(6.0) and r["turn2"] == pytest.approx(4.0) and r["score"] == pytest.approx(5.0)
    assert r["settings"]["judge_model"] == "gpt-4"
    answers = [json.loads(line) for line in (out / "mt_bench" / "answers.jsonl").read_text().splitlines()]
    assert len(answers) == 4 and all(len(a["turns"]) == 2 for a in answers)
    assert judge_server.requests == 8


def test_arena_hard_gives_the_top_score_when_the_judge_always_prefers_the_model(
    cli, tiny_model, fixture_data, judge_env, judge_server, tmp_path
):
    out = tmp_path / "run"
    assert (
        cli(
            "arena_hard",
            "--model",
            tiny_model,
            "--output",
            out,
            "--data-dir",
            fixture_data,
            "--judge-base-url",
            judge_server.url,
            "--limit",
            3,
            *SMOKE,
        )
        == 0
    )
    r = _results(out, "arena_hard")
    assert (r["score"], r["ci_low"], r["ci_high"]) == (100.0, 100.0, 100.0)
    assert r["settings"]["n_questions"] == 3 and judge_server.requests == 6  # two games per question


def test_arena_hard_asks_the_judge_again_for_a_missing_verdict_and_a_rerun_asks_neither_attempt_again(
    cli, tiny_model, fixture_data, judge_env, make_judge_server, tmp_path
):
    out = tmp_path / "run"
    # The judge stops before its verdict in each game with the model as assistant A, until asked again.
    with make_judge_server(arena_mode="label_when_asked_again") as server:
        args = (
            "arena_hard",
            "--model",
            tiny_model,
            "--output",
            out,
            "--data-dir",
            fixture_data,
            "--judge-base-url",
            server.url,
            "--limit",
            3,
            *SMOKE,
        )
        assert cli(*args) == 0
        first = _results(out, "arena_hard")
        assert server.requests == 6 + 3 and len(set(server.bodies)) == 9
        for body in map(json.loads, server.bodies[6:]):  # each re-ask continues its game, so it is a new request
            assert [m["role"] for m in body["messages"]] == ["system", "user", "assistant", "user"]
            assert body["messages"][2]["content"] == "Assistant A is clearly more complete, so"
        assert first["n_unparsed_games"] == 0 and first["n_games_asked_again"] == 3 and first["score"] == 100.0
        assert first["settings"]["judgment_attempts"] == 2
        games = [
            g
            for line in (out / "arena_hard" / "judgments.jsonl").read_text().split("\n")
            if line
            for g in json.loads(line)["games"]
        ]
        assert (
            sorted((g["model_position"], g["attempts"], g["verdict"]) for g in games)
            == [("A", 2, "A>>B")] * 3 + [("B", 1, "B>>A")] * 3
        )
        assert cli(*args) == 0
        assert server.requests == 9  # both attempts of every game came from the judge cache
    again = _results(out, "arena_hard")
    assert {k: v for k, v in again.items() if k != "settings"} == {k: v for k, v in first.items() if k != "settings"}


def test_arena_hard_without_a_single_verdict_after_the_second_attempt_writes_no_score_and_keeps_the_judgments(
    cli, tiny_model, fixture_data, judge_env, make_judge_server, tmp_path, capsys
):
    out = tmp_path / "run"
    args = ("arena_hard", "--model", tiny_model, "--output", out, "--data-dir", fixture_data, "--limit", 3, *SMOKE)
    with make_judge_server(arena_mode="never_a_label") as server:
        assert cli(*args, "--judge-base-url", server.url) == 2
        assert server.requests == 2 * 6  # two attempts per game, never a third
    err = [line for line in capsys.readouterr().err.splitlines() if "error:" in line]  # progress bars aside
    assert len(err) == 1 and "none of the 6 games got a verdict" in err[0] and "--judge-model" in err[0]
    assert not (out / "arena_hard" / "results.json").exists()
    games = [
        g
        for line in (out / "arena_hard" / "judgments.jsonl").read_text().splitlines()
        for g in json.loads(line)["games"]
    ]
    assert len(games) == 6 and all(g["verdict"] is None and g["attempts"] == 2 for g in games)
    with make_judge_server(arena_mode="never_a_label") as server:  # a rerun asks the judge nothing again
        assert cli(*args, "--judge-base-url", server.url) == 2 and server.requests == 0


def test_mt_bench_without_a_single_rating_writes_no_score_and_keeps_the_judgments(
    cli, tiny_model, fixture_data, judge_env, make_judge_server, tmp_path, capsys
):
    out = tmp_path / "run"
    args = ("mt_bench", "--model", tiny_model, "--output", out, "--data-dir", fixture_data, *SMOKE)
    with make_judge_server(mt_mode="unrated") as server:
        assert cli(*args, "--judge-base-url", server.url) == 2
        assert server.requests == 8
    err = [line for line in capsys.readouterr().err.splitlines() if "error:" in line]  # progress bars aside
    assert len(err) == 1 and "none of the 8 judgments holds a rating" in err[0] and "--judge-model" in err[0]
    assert not (out / "mt_bench" / "results.json").exists()
    judgments = [json.loads(line) for line in (out / "mt_bench" / "judgments.jsonl").read_text().splitlines()]
    assert len(judgments) == 8 and all(j["rating"] is None and j["judgment"] for j in judgments)
    with make_judge_server(mt_mode="unrated") as server:  # cached: a rerun asks the judge nothing again
        assert cli(*args, "--judge-base-url", server.url) == 2 and server.requests == 0


def test_alpaca_eval_reports_raw_and_length_controlled_win_rates(
    cli, tiny_model, fixture_data, judge_env, judge_server, tmp_path
):
    out = tmp_path / "run"
    assert (
        cli(
            "alpaca_eval",
            "--model",
            tiny_model,
            "--output",
            out,
            "--data-dir",
            fixture_data,
            "--judge-base-url",
            judge_server.url,
            *SMOKE,
        )
        == 0
    )
    r = _results(out, "alpaca_eval")
    # the judge gives the model's output probability 0.9 wherever alpaca-eval's swap put it
    assert r["win_rate"] == pytest.approx(90.0, abs=1e-6)
    assert 0.0 < r["lc_win_rate"] <= 100.0
    outputs = json.loads((out / "alpaca_eval" / "model_outputs.json").read_text())
    assert r["avg_length"] == pytest.approx(sum(len(o["output"]) for o in outputs) / len(outputs))


def test_judge_faults_429_and_500_leave_the_scores_unchanged(
    cli, tiny_model, fixture_data, judge_env, tmp_path, make_judge_server
):
    scores = []
    for fail_every in (0, 2):
        with make_judge_server(fail_every=fail_every) as server:
            out = tmp_path / f"run{fail_every}"
            assert (
                cli(
                    "mt_bench",
                    "--model",
                    tiny_model,
                    "--output",
                    out,
                    "--data-dir",
                    fixture_data,
                    "--cache-dir",
                    tmp_path / f"cache{fail_every}",
                    "--judge-base-url",
                    server.url,
                    *SMOKE,
                )
                == 0
            )
            scores.append({k: _results(out, "mt_bench")[k] for k in ("score", "turn1", "turn2")})
            if fail_every:
                assert server.faults == 4 and server.requests == 8 + 4  # each faulty request retried once
    assert scores[0] == scores[1]


def test_rerun_costs_no_judge_calls_and_no_generation(
    cli, tiny_model, fixture_data, judge_env, judge_server, tmp_path, monkeypatch
):
    out = tmp_path / "run"
    args = (
        "arena_hard",
        "--model",
        tiny_model,
        "--output",
        out,
        "--data-dir",
        fixture_data,
        "--judge-base-url",
        judge_server.url,
        *SMOKE,
    )
    assert cli(*args) == 0
    first = _results(out, "arena_hard")
    calls = judge_server.requests

    from openrlhf_cfpo.eval import generation

    def no_model(*a, **k):
        raise AssertionError("the model was loaded although every answer was on disk")

    monkeypatch.setattr(generation, "make_backend", no_model)
    monkeypatch.setattr("openrlhf_cfpo.eval.common.make_backend", no_model)
    assert cli(*args) == 0
    assert judge_server.requests == calls
    assert _results(out, "arena_hard")["score"] == first["score"]


def test_ifeval_scores_the_generated_answers_with_lm_evals_checkers(cli, tiny_model, fixture_data, tmp_path):
    out = tmp_path / "run"
    assert cli("ifeval", "--model", tiny_model, "--output", out, "--data-dir", fixture_data, *SMOKE) == 0
    r = _results(out, "ifeval")
    answers = [json.loads(line)["turns"][0] for line in (out / "ifeval" / "answers.jsonl").read_text().splitlines()]
    # fixture: every prompt asks for no commas and all lowercase; the tiny vocabulary has neither commas nor capitals
    expected = 100.0 * sum(bool(a.strip()) for a in answers) / len(answers)
    assert r["prompt_strict"] == pytest.approx(expected) and r["settings"]["chat_template_applied"] is True
    assert set(r) >= {"prompt_strict", "prompt_loose", "inst_strict", "inst_loose"}


def test_report_prints_both_tables_and_writes_csvs_with_the_alignment_tax(cli, tmp_path, capsys):
    def run_dir(name, avg, arena):
        d = tmp_path / name
        (d / "openllm").mkdir(parents=True)
        (d / "arena_hard").mkdir(parents=True)
        keys = ["arc", "gsm8k", "hellaswag", "mmlu", "truthfulqa", "winogrande"]
        (d / "openllm" / "results.json").write_text(
            json.dumps({**{k: avg for k in keys}, "average": avg, "settings": {"model": f"ckpt/{name}"}})
        )
        (d / "arena_hard" / "results.json").write_text(
            json.dumps({"score": arena, "ci_low": 1, "ci_high": 2, "settings": {"model": f"ckpt/{name}"}})
        )
        return d

    sft, cfpo = run_dir("sft", 50.0, 10.0), run_dir("cfpo", 48.0, 20.0)
    assert cli("report", cfpo, "--baseline", sft, "--output", tmp_path / "tables") == 0
    md = capsys.readouterr().out
    assert "| sft (baseline) |" in md and "| cfpo |" in md
    import csv

    t2 = list(csv.reader(open(tmp_path / "tables" / "table2_capabilities.csv")))
    assert t2[0] == [
        "Model",
        "ARC",
        "GSM8K",
        "HellaSwag",
        "MMLU",
        "TruthfulQA",
        "Winogrande",
        "Avg",
        "Alignment tax (%)",
    ]
    assert float(t2[2][-1]) == pytest.approx(4.0) and t2[1][-1] == ""
    t1 = list(csv.reader(open(tmp_path / "tables" / "table1_instruction_following.csv")))
    assert t1[0][1:] == ["Arena-Hard", "AlpacaEval-LC", "AlpacaEval-WR", "MT-Bench", "IFEval"]
    assert float(t1[2][1]) == 20.0
