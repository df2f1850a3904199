"""Scorers on hand-computed cases: Arena-Hard verdicts, MT-Bench means, IFEval strict vs loose, the report's tax."""

import json
import math
import os
import subprocess
import sys

import pytest

from openrlhf_cfpo.eval import arena_hard, mt_bench, report
from openrlhf_cfpo.eval.openllm import TASKS, metric_value, summarize

PATTERN = r"\[\[([AB<>=]+)\]\]"


def test_verdicts_that_always_favour_the_model_give_the_top_arena_score():
    # Game 1 has the model as B, game 2 as A: B>>A then A>>B both mean the model is much better.
    s = arena_hard.score([("B>>A", "A>>B")] * 10)
    assert s["score"] == 100.0 and s["ci_low"] == 100.0 and s["ci_high"] == 100.0


def test_all_b_much_better_verdicts_cancel_out_to_a_half_score_because_positions_are_swapped():
    assert arena_hard.score([("B>>A", "B>>A")] * 10)["score"] == pytest.approx(50.0)


def test_strong_verdicts_weigh_three_battles_and_ties_half_a_win():
    # model wins strongly (3 x 1.0), ties (1 x 0.5), loses slightly (1 x 0.0) -> 3.5 / 5
    s = arena_hard.score([("B>>A", "A=B"), ("A>B", None)])
    assert s["score"] == pytest.approx(100 * 3.5 / 5)
    assert s["n_battles"] == 5
    assert s["ci_low"] <= s["score"] <= s["ci_high"]


def test_bootstrap_interval_narrows_with_more_questions():
    few = arena_hard.score([("B>A", "B>A")] * 5 + [("A>B", "A>B")] * 5)
    many = arena_hard.score([("B>A", "B>A")] * 200 + [("A>B", "A>B")] * 200)
    assert (many["ci_high"] - many["ci_low"]) < (few["ci_high"] - few["ci_low"])


@pytest.mark.parametrize(
    "text, verdict",
    [
        ("My final verdict is [[A>B]].", "A>B"),
        ("[[B>>A]] ... again [[B>>A]]", "B>>A"),
        ("first [[A>B]] then [[B>A]]", None),
        ("no label here", None),
        ("split over\nlines [[A=\nB]]", "A=B"),
    ],
)
def test_arena_verdict_parsing_takes_one_consistent_label(text, verdict):
    assert arena_hard.parse_verdict(text, PATTERN) == verdict


def test_unparsed_games_are_left_out_of_the_arena_score():
    assert arena_hard.score([("B>A", None), (None, "A>B")])["score"] == 100.0


@pytest.mark.parametrize(
    "text, rating", [("Rating: [[7]]", 7.0), ("[[8.5]] overall", 8.5), ("score [6]", 6.0), ("none", None)]
)
def test_mt_bench_rating_parsing(text, rating):
    assert mt_bench.parse_rating(text) == rating


def test_mt_bench_score_is_the_mean_over_turns_and_per_turn_means():
    s = mt_bench.score([(1, 8.0), (2, 6.0), (1, 4.0), (2, 2.0), (2, None)])
    assert s["score"] == pytest.approx(5.0)
    assert s["turn1"] == pytest.approx(6.0) and s["turn2"] == pytest.approx(4.0)
    assert s["n_unparsed_turns"] == 1


def test_mt_bench_uses_reference_guided_prompts_for_math_reasoning_and_coding_only():
    assert mt_bench.prompt_name("math", 1) == "single-math-v1"
    assert mt_bench.prompt_name("coding", 2) == "single-math-v1-multi-turn"
    assert mt_bench.prompt_name("writing", 2) == "single-v1-multi-turn"


def test_mt_bench_second_turn_request_shows_both_turns_and_the_references():
    prompt = {
        "system_prompt": "s",
        "prompt_template": "{question_1}|{answer_1}|{question_2}|{answer_2}|{ref_answer_1}|{ref_answer_2}",
    }
    req = mt_bench.judge_request(prompt, {"turns": ["q1", "q2"]}, ["a1", "a2"], 2, ["r1", "r2"])
    assert req["messages"][-1]["content"] == "q1|a1|q2|a2|r1|r2"
    assert req["messages"][0] == {"role": "system", "content": "s"} and req["temperature"] == 0.0


def test_ifeval_loose_accepts_a_preamble_line_that_strict_rejects():
    from openrlhf_cfpo.eval import ifeval

    doc = {"key": 1, "prompt": "p", "instruction_id_list": ["change_case:english_lowercase"], "kwargs": [{}]}
    s = ifeval.score([doc, doc], ["Sure! Here it is:\nall lowercase text here", "ALL CAPS ONLY"])
    assert s["prompt_strict"] == 0.0
    assert s["prompt_loose"] == 50.0


def test_ifeval_instruction_level_counts_each_instruction():
    from openrlhf_cfpo.eval import ifeval

    doc = {
        "key": 1,
        "prompt": "p",
        "instruction_id_list": ["punctuation:no_comma", "change_case:english_lowercase"],
        "kwargs": [{}, {}],
    }
    s = ifeval.score([doc], ["no commas but Capitals"])
    assert s["inst_strict"] == 50.0 and s["prompt_strict"] == 0.0


# lm-eval checks a random letter for a letter_frequency instruction whose letter is not in a-z (official keys 1122 and
# 1129): here half the letters fill the response and half are absent, so each prompt's verdict is a coin flip unless
# the scorer fixes the draw.
IFEVAL_PER_PROMPT_VERDICTS = """
import json, sys
from openrlhf_cfpo.eval import ifeval
kwargs = {"letter": "#", "let_frequency": 5, "let_relation": "at least"}
docs = [{"key": k, "prompt": "p", "instruction_id_list": ["keywords:letter_frequency"], "kwargs": [kwargs]}
        for k in range(1100, 1124)]
response = " ".join(letter * 9 for letter in "abcdefghijklm")
print(json.dumps([ifeval.score([d], [response])["prompt_strict"] for d in docs]))
"""


def test_ifeval_gives_the_same_responses_the_same_score_in_every_process(tmp_path):
    (tmp_path / "tokenizers" / "punkt_tab").mkdir(parents=True)  # see conftest.offline_nltk
    runs = []
    for hash_seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": hash_seed, "NLTK_DATA": str(tmp_path)}
        proc = subprocess.run(
            [sys.executable, "-c", IFEVAL_PER_PROMPT_VERDICTS], env=env, capture_output=True, text=True, timeout=300
        )
        assert proc.returncode == 0, proc.stderr[-2000:]
        runs.append(json.loads(proc.stdout.splitlines()[-1]))
    assert runs[0] == runs[1]
    assert {0.0, 100.0} <= set(runs[0])  # the letters checked differ between prompts: the draw is real, and fixed


def test_alignment_tax_is_the_relative_drop_of_the_openllm_average():
    assert report.alignment_tax(45.0, 50.0) == pytest.approx(10.0)
    assert report.alignment_tax(55.0, 50.0) == pytest.approx(-10.0)
    assert report.alignment_tax(None, 50.0) is None


def test_openllm_reads_each_leaderboard_metric_and_averages_them():
    fake = {"results": {s.task: {s.metric: 0.1 * (i + 1), "other,none": 9.0} for i, s in enumerate(TASKS)}}
    values = {s.key: metric_value(fake, s) for s in TASKS}
    out = summarize(values)
    assert out["arc"] == pytest.approx(10.0) and out["winogrande"] == pytest.approx(60.0)
    assert out["average"] == pytest.approx(35.0)
    assert set(out) == {"arc", "gsm8k", "hellaswag", "mmlu", "truthfulqa", "winogrande", "average"}


def test_openllm_uses_the_open_llm_leaderboard_shots():
    shots = {s.key: s.shots for s in TASKS}
    assert shots == {"arc": 25, "gsm8k": 5, "hellaswag": 10, "mmlu": 5, "truthfulqa": 0, "winogrande": 5}


def test_nan_scores_show_as_missing_in_the_report(tmp_path):
    import json

    (tmp_path / "m" / "mt_bench").mkdir(parents=True)
    (tmp_path / "m" / "mt_bench" / "results.json").write_text(
        json.dumps({"score": math.nan, "settings": {"model": "x/m1"}})
    )
    t1, _ = report.build_tables([tmp_path / "m"])
    assert t1[1][0] == "m1" and t1[1][4] is None


def test_arena_judge_is_asked_again_only_when_a_judgment_has_no_label_and_at_most_once_more():
    first = {"q0": "so [[A>B]]", "q1": "thinking, no verdict", "q2": "[[A>B]] or maybe [[B>A]]", "q3": "still thinking"}

    class Judge:
        def __init__(self):
            self.calls = []

        def complete_many(self, requests, desc=""):
            self.calls.append(requests)
            out = []
            for r in requests:
                q = r["messages"][0]["content"]
                text = first[q] if len(r["messages"]) == 1 else ("then [[B>A]]" if q == "q1" else "no idea")
                out.append({"choices": [{"message": {"content": text}}]})
            return out

    judge = Judge()
    requests = [{"messages": [{"role": "user", "content": q}], "temperature": 0.0} for q in first]
    texts, used = arena_hard.judge_games(judge, requests, PATTERN, attempts=2)
    assert used == [1, 2, 1, 2] and len(judge.calls) == 2  # disagreeing labels (q2) are final, not asked again
    again = judge.calls[1][0]["messages"]
    assert [m["role"] for m in again] == ["user", "assistant", "user"] and again[1]["content"] == first["q1"]
    assert [arena_hard.parse_verdict(t, PATTERN) for t in texts] == ["A>B", "B>A", None, None]
    assert texts[1] == "thinking, no verdict\nthen [[B>A]]"
