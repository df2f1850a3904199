"""Resumable generation, the judge client's guards and cache, data errors and alpaca-eval's length control."""

import json
import sys
import types

import numpy as np
import pandas as pd
import pytest

from openrlhf_cfpo.eval import generation
from openrlhf_cfpo.eval.generation import HFBackend, Item, generate_resumable
from openrlhf_cfpo.eval.judge import Judge, JudgeConfig
from openrlhf_cfpo.eval.registry import decoding_for
from openrlhf_cfpo.eval.store import JsonlStore


class Killed(Exception):
    pass


class CountingBackend:
    name = "fake"

    def __init__(self, kill_after_calls=None):
        self.prompts = []
        self.kill_after_calls = kill_after_calls

    def generate(self, convs, decoding):
        if self.kill_after_calls is not None and len(self.prompts) >= self.kill_after_calls:
            raise Killed()
        self.prompts.append([c[-1]["content"] for c in convs])
        return [f"answer to {c[-1]['content']} after {len(c) // 2} earlier turns" for c in convs]


def _items(n, turns=1):
    return [Item(f"q{i}", [f"ask {i} t{t}" for t in range(turns)], decoding_for("ifeval")) for i in range(n)]


def test_a_killed_run_resumes_without_regenerating_finished_items(tmp_path):
    store = JsonlStore(tmp_path / "answers.jsonl")
    dying = CountingBackend(kill_after_calls=2)
    with pytest.raises(Killed):
        generate_resumable(_items(7), store, lambda: dying, chunk_size=2, log=lambda m: None)
    before = store.load()
    assert sorted(before) == ["q0", "q1", "q2", "q3"]

    fresh = CountingBackend()
    out = generate_resumable(_items(7), store, lambda: fresh, chunk_size=2, log=lambda m: None)
    asked = sorted(p for call in fresh.prompts for p in call)
    assert asked == ["ask 4 t0", "ask 5 t0", "ask 6 t0"]
    assert all(out[k] == before[k] for k in before)  # finished records untouched, timestamps included
    assert len((tmp_path / "answers.jsonl").read_text().splitlines()) == 7


def test_the_model_is_not_loaded_when_every_answer_is_on_disk(tmp_path):
    store = JsonlStore(tmp_path / "answers.jsonl")
    generate_resumable(_items(3), store, CountingBackend, log=lambda m: None)

    def factory():
        raise AssertionError("loaded")

    assert len(generate_resumable(_items(3), store, factory, log=lambda m: None)) == 3


def test_a_half_written_last_line_is_dropped_and_regenerated(tmp_path):
    path = tmp_path / "answers.jsonl"
    store = JsonlStore(path)
    generate_resumable(_items(2), store, CountingBackend, log=lambda m: None)
    with open(path, "a") as f:
        f.write('{"id": "q2", "tur')
    fresh = CountingBackend()
    out = generate_resumable(_items(3), store, lambda: fresh, log=lambda m: None)
    assert fresh.prompts == [["ask 2 t0"]] and out["q2"]["turns"]
    assert all(json.loads(line) for line in path.read_text().splitlines())


# Every character str.splitlines() breaks at besides "\n"; json.dumps(ensure_ascii=False) writes the first three raw.
LINE_BREAKERS = ["\u2028", "\u2029", "\x85", "\x1c", "\x1d", "\x1e", "\x0b", "\x0c", "\r", "\r\n"]


def test_answers_holding_any_character_that_splitlines_breaks_at_are_all_resumed_without_regeneration(tmp_path):
    class Breaking(CountingBackend):
        def generate(self, convs, decoding):
            return [f"before{LINE_BREAKERS[int(c[-1]['content'].split()[1])]}after" for c in convs]

    items = _items(len(LINE_BREAKERS))
    first = generate_resumable(
        items, JsonlStore(tmp_path / "answers.jsonl"), Breaking, chunk_size=3, log=lambda m: None
    )

    def no_model():
        raise AssertionError("an answer on disk was generated again")

    again = generate_resumable(items, JsonlStore(tmp_path / "answers.jsonl"), no_model, log=lambda m: None)
    assert again == first
    assert [again[f"q{i}"]["turns"][0] for i in range(len(LINE_BREAKERS))] == [f"before{c}after" for c in LINE_BREAKERS]


def test_a_damaged_record_inside_an_answers_file_is_one_error_naming_the_file_and_line(tmp_path):
    from openrlhf_cfpo.eval.errors import EvalError

    path = tmp_path / "answers.jsonl"
    path.write_text('{"id": "q0", "turns": ["a"]}\n{"id": "q1", "tu\n{"id": "q2", "turns": ["c"]}\n', encoding="utf-8")
    with pytest.raises(EvalError, match=r"answers.jsonl line 2 is not a JSON record .*; delete that line") as e:
        JsonlStore(path).load()
    assert "\n" not in str(e.value)


def test_the_second_turn_sees_the_first_question_and_answer(tmp_path):
    seen = []

    class Recorder(CountingBackend):
        def generate(self, convs, decoding):
            seen.extend(convs)
            return super().generate(convs, decoding)

    out = generate_resumable(_items(1, turns=2), JsonlStore(tmp_path / "a.jsonl"), Recorder, log=lambda m: None)
    assert [m["role"] for m in seen[1]] == ["user", "assistant", "user"]
    assert seen[1][1]["content"] == out["q0"]["turns"][0]


def test_vllm_is_not_used_without_a_gpu_even_when_importable(monkeypatch):
    monkeypatch.setitem(sys.modules, "vllm", types.ModuleType("vllm"))
    monkeypatch.setattr(generation.importlib.util, "find_spec", lambda name: object())
    import torch

    monkeypatch.setattr(torch.cuda, "device_count", lambda: 0)
    assert generation.vllm_usable() is False


def test_hf_backend_prompts_with_the_models_chat_template(tiny_model):
    backend = HFBackend(tiny_model, batch_size=2)
    text = backend.render([{"role": "user", "content": "hello world"}])
    assert text == "<|user|> hello world </s> <|assistant|>"
    outs = backend.generate(
        [[{"role": "user", "content": "hello"}], [{"role": "user", "content": "the cat sat"}]],
        decoding_for("ifeval", max_new_tokens=3),
    )
    assert len(outs) == 2 and all(isinstance(o, str) for o in outs)


def test_missing_judge_key_is_one_error_before_any_generation(
    cli, tiny_model, fixture_data, monkeypatch, tmp_path, capsys
):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    rc = cli(
        "arena_hard",
        "--model",
        tiny_model,
        "--output",
        tmp_path / "run",
        "--data-dir",
        fixture_data,
        "--judge-base-url",
        "http://127.0.0.1:9/v1",
        "--cache-dir",
        tmp_path / "c",
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and "OPENAI_API_KEY" in err[0]
    assert not (tmp_path / "run" / "arena_hard" / "answers.jsonl").exists()


def test_unreachable_judge_endpoint_is_one_error_naming_the_url(
    cli, tiny_model, fixture_data, judge_env, tmp_path, capsys
):
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens on this port now
    url = f"http://127.0.0.1:{port}/v1"
    rc = cli(
        "mt_bench",
        "--model",
        tiny_model,
        "--output",
        tmp_path / "run",
        "--data-dir",
        fixture_data,
        "--judge-base-url",
        url,
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and url in err[0]
    assert not (tmp_path / "run" / "mt_bench" / "answers.jsonl").exists()


def test_a_judge_endpoint_that_answers_with_no_json_is_one_error_before_any_generation(
    cli, tiny_model, fixture_data, judge_env, tmp_path, capsys, make_judge_server
):
    with make_judge_server(body_not_json=True) as server:
        rc = cli(
            "mt_bench",
            "--model",
            tiny_model,
            "--output",
            tmp_path / "run",
            "--data-dir",
            fixture_data,
            "--judge-base-url",
            server.url,
        )
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and server.url in err[0] and "not JSON" in err[0], err
    assert not (tmp_path / "run" / "mt_bench" / "answers.jsonl").exists()


def test_judge_completions_with_no_json_fail_in_one_eval_error_naming_the_endpoint(make_judge_server, tmp_path):
    from openrlhf_cfpo.eval.errors import EvalError

    with make_judge_server(body_not_json=True) as server:
        judge = Judge(JudgeConfig("j", server.url, "k", max_retries=0, cache_path=tmp_path / "c.sqlite"))
        with pytest.raises(EvalError) as caught:
            judge.complete_many([{"messages": [{"role": "user", "content": "q"}]}] * 2)
    message = str(caught.value)
    assert "\n" not in message and server.url in message and "not JSON" in message
    assert message.startswith("1 of 2 requests")  # identical requests went once, and failed once


def test_judge_cache_is_keyed_by_judge_model_and_request(judge_server, tmp_path):
    req = [
        {"messages": [{"role": "user", "content": "Q=x\nFIRST=BASELINE\nSECOND=y"}], "temperature": 0, "max_tokens": 8}
    ]
    cache = tmp_path / "cache.sqlite"
    for model in ("judge-a", "judge-a", "judge-b"):
        Judge(JudgeConfig(model, judge_server.url, "k", cache_path=cache)).complete_many(req)
    assert judge_server.requests == 2


def test_judge_keeps_at_most_the_configured_number_of_requests_in_flight(make_judge_server, tmp_path):
    with make_judge_server() as server:
        inflight, peak = [0], [0]
        answer = server.answer

        def slow(req):
            import time

            with server.lock:
                inflight[0] += 1
                peak[0] = max(peak[0], inflight[0])
            time.sleep(0.05)
            with server.lock:
                inflight[0] -= 1
            return answer(req)

        server.answer = slow
        reqs = [
            {"messages": [{"role": "user", "content": f"Q={i}\nFIRST=a\nSECOND=b"}], "max_tokens": 4} for i in range(24)
        ]
        Judge(JudgeConfig("j", server.url, "k", concurrency=4)).complete_many(reqs)
    assert 1 < peak[0] <= 4


def test_judge_progress_bar_reaches_exactly_its_total_when_identical_requests_are_sent_once(judge_server, monkeypatch):
    import tqdm.auto

    bars = []

    class Bar:
        def __init__(self, total, **kwargs):
            self.total, self.n = total, 0
            bars.append(self)

        def update(self, k=1):
            self.n += k

        def close(self):
            pass

    monkeypatch.setattr(tqdm.auto, "tqdm", Bar)
    a, b = ({"messages": [{"role": "user", "content": f"Q={i}\nFIRST=a\nSECOND=b"}], "max_tokens": 4} for i in range(2))
    out = Judge(JudgeConfig("j", judge_server.url, "k")).complete_many([a, a, b, a])
    assert judge_server.requests == 2 and out[0] == out[1] == out[3]
    assert [(bar.n, bar.total) for bar in bars] == [(2, 2)]


def test_results_without_a_required_key_are_refused_with_the_eval_error_and_not_written(tmp_path):
    from openrlhf_cfpo.eval import common
    from openrlhf_cfpo.eval.errors import EvalError

    with pytest.raises(EvalError, match="ci_low, ci_high") as e:
        common.write_results(tmp_path, "arena_hard", {"score": 50.0}, {})
    assert "\n" not in str(e.value) and not (tmp_path / "results.json").exists()


def test_the_required_results_keys_are_still_checked_under_python_dash_O(tmp_path):
    import subprocess

    code = (
        "import sys; from openrlhf_cfpo.eval import common; from openrlhf_cfpo.eval.errors import EvalError\n"
        "try:\n    common.write_results(__import__('pathlib').Path(sys.argv[1]), 'mt_bench', {'score': 5.0}, {})\n"
        "except EvalError as e:\n    print(e); sys.exit(3)"
    )
    r = subprocess.run([sys.executable, "-O", "-c", code, str(tmp_path)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 3, r.stdout + r.stderr
    assert "turn1, turn2" in r.stdout and not (tmp_path / "results.json").exists()


def test_a_missing_data_file_names_the_file_and_the_fix(cli, tiny_model, tmp_path, judge_env, capsys):
    (tmp_path / "empty").mkdir()
    rc = cli("ifeval", "--model", tiny_model, "--output", tmp_path / "run", "--data-dir", tmp_path / "empty")
    err = capsys.readouterr().err
    assert rc == 2 and "ifeval/input_data.jsonl" in err and "--data-dir" in err


def test_length_controlled_win_rate_discounts_wins_that_come_from_longer_answers(tmp_path, gamed_csv):
    from openrlhf_cfpo.eval.alpacaeval import win_rates

    n = 16
    longer = np.arange(n) % 4 != 0  # 12 of 16 answers longer than the reference, and exactly those win
    df = pd.DataFrame(
        {
            "instruction": [f"i{k}" for k in range(n)],
            "output_1": ["r" * 100] * n,
            "output_2": ["m" * (400 if lo else 20) for lo in longer],
            "preference": np.where(longer, 1.95, 1.05),
            "generator_1": "ref",
            "generator_2": "ours",
            "index": range(n),
            "annotator": "a",
        }
    )
    m = win_rates(df, gamed_csv(tmp_path / "df_gamed.csv", n))
    assert m["win_rate"] == pytest.approx(100 * (12 * 0.95 + 4 * 0.05) / 16)
    assert m["lc_win_rate"] < m["win_rate"] - 5
    assert m["avg_length"] == pytest.approx((12 * 400 + 4 * 20) / 16)


def test_alpaca_eval_swap_is_undone_so_preferences_refer_to_our_model():
    from openrlhf_cfpo.eval.alpacaeval import annotator_config, build_requests, parse_preferences

    config, template = annotator_config()
    df = pd.DataFrame({"instruction": [f"task {k}" for k in range(12)], "output_1": "REF", "output_2": "OURS"})
    swapped, requests = build_requests(df, config, template)
    assert 0 < swapped["is_switched_outputs"].sum() < 12  # alpaca-eval swaps some positions
    responses = []
    for req in requests:
        text = req["messages"][-1]["content"]
        ours_first = text.index("OURS") < text.index("REF")
        tok = "m" if ours_first else "M"  # always name our model's output as the better one
        top = [{"token": tok, "logprob": 0.0}]
        responses.append(
            {"choices": [{"logprobs": {"content": [{"token": tok, "logprob": 0.0, "top_logprobs": top}]}}]}
        )
    prefs = parse_preferences(swapped, responses, config)["preference"]
    assert np.allclose(prefs, 2.0)
