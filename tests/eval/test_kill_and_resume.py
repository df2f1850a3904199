"""Kill at any point, lose nothing: SIGKILLed eval processes resume to the uninterrupted results at no repeated cost.

Most kills come from `killable_eval.py`, which runs the eval CLI with a deterministic stand-in model and kills its
own process at a chosen write (after it, or halfway through its bytes); one test SIGKILLs the real
`openrlhf-cfpo eval` console script while the judge holds a request.
"""

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

KILLABLE = Path(__file__).with_name("killable_eval.py")
JUDGE = "gpt-4"  # MT-Bench's default judge


def _lines(path: Path) -> list[bytes]:
    """Complete lines only: what a kill left on disk before any resume touched it."""
    raw = path.read_bytes() if path.exists() else b""
    return raw[: raw.rfind(b"\n") + 1].split(b"\n")[:-1]


def _records(path: Path) -> dict:
    return {r["id"]: r for r in (json.loads(line) for line in _lines(path))}


def _cached_requests(cache: Path, judge: str) -> set:
    """The judge cache's requests in the form the stand-in server logs them."""
    if not cache.exists():
        return set()
    db = sqlite3.connect(str(cache))
    try:
        rows = db.execute("SELECT judge, request FROM judgments").fetchall()
    finally:
        db.close()
    assert all(j == judge for j, _ in rows)
    return {json.dumps({**json.loads(r), "model": judge}, sort_keys=True) for _, r in rows}


def _without(d: dict, *keys) -> dict:
    return {k: v for k, v in d.items() if k not in keys}


def _comparable(out: Path) -> dict:
    """Answers, judgments and results of a finished run, less the wall-clock stamps."""
    bench = out / "mt_bench"
    results = json.loads((bench / "results.json").read_text(encoding="utf-8"))
    return {
        "answers": {k: _without(r, "generated_at") for k, r in _records(bench / "answers.jsonl").items()},
        "judgments": [json.loads(line) for line in _lines(bench / "judgments.jsonl")],
        "results": {**results, "settings": _without(results["settings"], "finished_at")},
    }


class Runner:
    """Runs killable_eval.py on MT-Bench against one judge server, each run with its own output, cache and log."""

    def __init__(self, server, data: Path, model: str):
        self.server, self.data, self.model = server, data, model

    def __call__(self, out: Path, gen_log: Path, kill_at=None) -> subprocess.CompletedProcess:
        env = {k: v for k, v in os.environ.items() if k not in ("OPENAI_BASE_URL", "KILL_AT")}
        env.update(OPENAI_API_KEY="test-key", OPENRLHF_CFPO_CACHE=str(out / "cache"), GEN_LOG=str(gen_log))
        if kill_at:
            env["KILL_AT"] = kill_at
        # --batch-size 1: one answers.jsonl append per question, so there are several generation kill points.
        argv = [
            "mt_bench",
            "--model",
            self.model,
            "--output",
            out,
            "--data-dir",
            self.data,
            "--judge-base-url",
            self.server.url,
            "--batch-size",
            1,
        ]
        return subprocess.run(
            [sys.executable, str(KILLABLE), *map(str, argv)], env=env, capture_output=True, text=True, timeout=120
        )


@pytest.fixture(scope="module")
def mt_bench_runs(tmp_path_factory, make_judge_server, make_fixture_data, stand_in_model):
    """A runner, the question of each prompt, and what an uninterrupted run produces and asks the judge."""
    root = tmp_path_factory.mktemp("kill")
    data = make_fixture_data(root / "data")
    # by_text: ratings depend on the answers, so a changed answer would change the results.
    with make_judge_server(mt_mode="by_text") as server:
        run = Runner(server, data, stand_in_model)
        done = run(root / "uninterrupted", root / "uninterrupted.log")
        assert done.returncode == 0, done.stderr
        questions = [json.loads(line) for line in (data / "mt_bench/question.jsonl").read_text().split("\n") if line]
        question_of = {t: str(q["question_id"]) for q in questions for t in q["turns"]}
        yield run, question_of, _comparable(root / "uninterrupted"), set(server.bodies)


KILL_POINTS = [
    "answers:1",  # after the first finished answer
    "answers:3:inside",  # halfway through writing the third answer: a torn last line
    "judge:1",  # after the first judgment is cached
    "judge:6",
    "judgments:1:inside",  # halfway through judgments.jsonl
    "results:1:inside",  # halfway through results.json's temporary file
]


@pytest.mark.parametrize("kill_at", KILL_POINTS)
def test_a_run_killed_at_any_write_resumes_to_the_uninterrupted_results_regenerating_and_rejudging_nothing(
    kill_at, mt_bench_runs, tmp_path
):
    run, question_of, uninterrupted, all_requests = mt_bench_runs
    server, out = run.server, tmp_path / "run"
    sent_before = len(server.bodies)

    killed = run(out, tmp_path / "killed.log", kill_at)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    bench = out / "mt_bench"
    assert not (bench / "results.json").exists()
    if kill_at.endswith(":inside") and not kill_at.startswith("results"):
        assert not (bench / f"{kill_at.split(':')[0]}.jsonl").read_bytes().endswith(b"\n")  # the torn line is there
    finished = _records(bench / "answers.jsonl")
    cached = _cached_requests(out / "cache" / "judge_cache.sqlite", JUDGE)
    sent_killed = server.bodies[sent_before:]
    assert cached <= set(sent_killed)  # the cache and the server log name requests alike
    if kill_at.startswith("judge:"):
        assert len(cached) >= int(kill_at.split(":")[1])

    resumed = run(out, tmp_path / "resumed.log", None)
    assert resumed.returncode == 0, resumed.stderr
    sent_resumed = server.bodies[sent_before + len(sent_killed) :]

    generated = [json.loads(line) for line in _lines(tmp_path / "resumed.log")]
    assert {question_of[p] for p in generated} == set(question_of.values()) - set(finished)
    assert len(generated) == len(set(generated))
    after = _records(bench / "answers.jsonl")
    assert all(after[k] == r for k, r in finished.items())  # finished answers untouched, timestamps included

    assert not cached & set(sent_resumed)  # no cached judgment asked again
    assert len(sent_resumed) == len(set(sent_resumed))
    assert cached | set(sent_resumed) == all_requests
    assert _comparable(out) == uninterrupted


def test_sigkilled_openrlhf_cfpo_eval_resumes_without_regenerating_or_asking_an_answered_judgment_again(
    tiny_model, fixture_data, make_judge_server, judge_env, cli, tmp_path
):
    exe = Path(sys.executable).with_name("openrlhf-cfpo")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "openrlhf_cfpo.cli.main"]
    out, cache = tmp_path / "run", tmp_path / "cache"

    # 3 questions: 6 games; the judge finishes the 3 games with the model as A only when asked again (9 requests).
    # Concurrency 1 and the 8th request (the second re-ask) held: exactly 7 judgments are cached when the kill comes.
    def args(out, cache):
        return [
            "arena_hard",
            "--model",
            tiny_model,
            "--output",
            out,
            "--data-dir",
            fixture_data,
            "--limit",
            3,
            "--max-new-tokens",
            4,
            "--batch-size",
            2,
            "--judge-concurrency",
            1,
            "--cache-dir",
            cache,
        ]

    env = {**os.environ, "OPENAI_API_KEY": "test-key"}
    with make_judge_server(arena_mode="label_when_asked_again", hold_at=8) as server:
        argv = [*cmd, "eval", *map(str, args(out, cache)), "--judge-base-url", server.url]
        log = tmp_path / "killed.stderr"
        with open(log, "w") as err:  # a file, not a pipe: a full pipe would stall the process before the kill
            proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=err)
            try:
                held = server.held.wait(120)
            finally:
                proc.kill()  # SIGKILL
                proc.wait(60)
                server.release.set()
        assert held, log.read_text()
        assert proc.returncode == -signal.SIGKILL
        answers = (out / "arena_hard" / "answers.jsonl").read_bytes()
        answered = set(server.bodies[:7])
        assert _cached_requests(cache / "judge_cache.sqlite", "gpt-4.1") == answered

        resumed = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=180)
        assert resumed.returncode == 0, resumed.stderr
        asked_on_resume = server.bodies[8:]
        assert len(asked_on_resume) == 2 and not answered & set(asked_on_resume)
        assert (out / "arena_hard" / "answers.jsonl").read_bytes() == answers  # nothing regenerated

        # The same answers judged in one go, with a fresh cache: the resumed run must match it.
        ref = tmp_path / "ref"
        shutil.copytree(
            out / "arena_hard", ref / "arena_hard", ignore=shutil.ignore_patterns("results.json", "judgments.jsonl")
        )
        assert cli(*args(ref, tmp_path / "ref_cache"), "--judge-base-url", server.url) == 0
    results = [json.loads((d / "arena_hard" / "results.json").read_text()) for d in (out, ref)]
    for r in results:
        r["settings"].pop("finished_at")
    assert results[0] == results[1] and results[0]["n_unparsed_games"] == 0 and results[0]["n_games_asked_again"] == 3
    assert (out / "arena_hard" / "judgments.jsonl").read_bytes() == (
        ref / "arena_hard" / "judgments.jsonl"
    ).read_bytes()
