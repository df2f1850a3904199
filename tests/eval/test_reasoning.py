"""The reasoning (RLVR) benchmarks: MATH500, GSM8K, AIME24, GPQA-Diamond with the paper's protocol, and Table 5.

Data here is invented, written in each Hugging Face dataset repo's file layout and read through --data-dir.
"""

import csv
import json
import re
import subprocess
from pathlib import Path

import pytest

from openrlhf_cfpo.eval import answer_check, reasoning
from openrlhf_cfpo.eval.answer_check import (
    LETTERS,
    METRICS,
    check_choice,
    check_gsm8k,
    check_math,
    choice_letter,
    pass_at_1,
)
from openrlhf_cfpo.reasoning.verifier import MATH_VERIFY_VERSION

REPO = Path(__file__).resolve().parents[2]
SMOKE = ("--max-new-tokens", 4, "--batch-size", 2)
BENCHES = ("math500", "gsm8k", "aime24", "gpqa_diamond")
PAPER_PROMPT = ("--system-prompt", "paper-1.5b")  # the stand-in model has no config for --system-prompt auto to read


# ---------------------------------------------------------------- invented data in the official layouts

MATH500 = [  # (problem, gold answer as MATH-500 writes it)
    ("What is one divided by two?", r"\frac{1}{2}"),
    ("Give the ordered pair of the origin shifted right by three.", r"\left( 3, 0 \right)"),
    ("How many legs do two cats have in all?", "8"),
]
GSM8K = [
    ("A shop sells 250 pens a day. How many in four days?", "1,000"),
    ("Sam has 3 apples and buys 4 more. How many now?", "7"),
]
AIME = [
    (60, "Find the remainder when 2024 is divided by 1000.", 24),
    (61, "Compute the number of sides of a dodecagon times 17.", 204),
]
GPQA = [  # (record id, question, correct, three incorrect)
    ("recA", "Which gas, with a comma, is noble?\nPick one.", "Argon", "Oxygen", "Nitrogen", "Chlorine"),
    ("recB", "Which particle has no charge?", "Neutron", "Proton", "Electron", "Positron"),
    ("recC", "Which is a prime number?", "Seven", "Nine", "Fifteen", "Twenty-one"),
]


def write_reasoning_data(root: Path) -> Path:
    import pyarrow as pa
    import pyarrow.parquet as pq

    p = root / "HuggingFaceH4/MATH-500/test.jsonl"
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(
        "".join(
            json.dumps(
                {
                    "problem": q,
                    "solution": f"so $\\boxed{{{a}}}$",
                    "answer": a,
                    "subject": "Algebra",
                    "level": 1,
                    "unique_id": f"test/algebra/{i}.json",
                }
            )
            + "\n"
            for i, (q, a) in enumerate(MATH500)
        ),
        encoding="utf-8",
    )
    p = root / "openai/gsm8k/main/test-00000-of-00001.parquet"
    p.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(
        pa.Table.from_pylist([{"question": q, "answer": f"Work it out <<x=y>>.\n#### {a}"} for q, a in GSM8K]), p
    )
    p = root / "HuggingFaceH4/aime_2024/data/train-00000-of-00001.parquet"
    p.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(
        pa.Table.from_pylist(
            [{"id": i, "problem": q, "solution": "...", "answer": a, "url": "u", "year": "2024"} for i, q, a in AIME]
        ),
        p,
    )
    p = root / "Idavidrein/gpqa/gpqa_diamond.csv"
    p.parent.mkdir(parents=True, exist_ok=True)
    with open(p, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(
            [
                "Pre-Revision Question",
                "Question",
                "Correct Answer",
                "Incorrect Answer 1",
                "Incorrect Answer 2",
                "Incorrect Answer 3",
                "Record ID",
                "Subdomain",
            ]
        )
        for rid, q, c, i1, i2, i3 in GPQA:
            w.writerow([q, q, c, i1, i2, i3, rid, "Chemistry"])
    return root


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    return write_reasoning_data(tmp_path_factory.mktemp("reasoning") / "data")


N_PROBLEMS = {"math500": len(MATH500), "gsm8k": len(GSM8K), "aime24": len(AIME), "gpqa_diamond": len(GPQA)}


def _results(out, bench):
    return json.loads((out / bench / "results.json").read_text())


def _answers(out, bench):
    return [json.loads(line) for line in (out / bench / "answers.jsonl").read_text().split("\n") if line]


class Scripted:
    """A stand-in model that answers right (in another but equivalent form) for the first `n_right` problems."""

    name = "scripted"
    gold = {
        **{q: a for q, a in MATH500},
        **{q: a.replace(",", "") for q, a in GSM8K},
        **{q: str(a) for _, q, a in AIME},
    }
    right_form = {
        r"\frac{1}{2}": r"\dfrac{1}{2}",
        r"\left( 3, 0 \right)": "(3,0)",
        "8": r"8 \text{ legs}",
        "1000": "1,000",
    }

    def __init__(self, n_right=99):
        self.calls, self.conversations, self.decodings, self.n_right = 0, [], [], n_right

    def generate(self, conversations, decoding):
        self.calls += 1
        self.decodings.append(decoding)
        out = []
        for conv in conversations:
            self.conversations.append(conv)
            text = "\n".join(m["content"] for m in conv)  # lighteval puts GPQA's question in the system turn
            rank = len({"\n".join(m["content"] for m in c) for c in self.conversations})  # distinct problems so far
            right = rank <= self.n_right
            question = next((q for q in self.gold if q in text), None)
            if question is not None:
                gold = self.gold[question]
                out.append(
                    "Thinking... so the answer is "
                    f"$\\boxed{{{self.right_form.get(gold, gold) if right else '12345'}}}$."
                )
            else:  # GPQA: find the letter of the correct choice in the prompt
                correct = next(r[2] for r in GPQA if r[1] in text)
                letter = re.search(rf"^([ABCD])\) {correct}$", text, re.M).group(1)
                out.append(f"The final answer is \\boxed{{{letter if right else 'Z'}}}")
        return out


@pytest.fixture
def scripted(monkeypatch, tmp_path, make_stand_in_model):
    """Makes the stand-in model answer every generation; `--model stand-in` names its folder in the working dir."""
    made = []
    make_stand_in_model(tmp_path / "stand-in")
    monkeypatch.chdir(tmp_path)

    def make(n_right=99):
        backend = Scripted(n_right)
        made.append(backend)
        monkeypatch.setattr("openrlhf_cfpo.eval.common.make_backend", lambda *a, **k: backend)
        return backend

    return make


# ----------------------------------------------------- scoring (lighteval's; tests/test_scoring_parity.py checks it)

SUM = r"Adding, $7+11=\boxed{18}$."  # MATH-500's gold is read from the solution


@pytest.mark.parametrize(
    "response, extracted, correct",
    [
        (r"... Therefore, the final answer is: $\boxed{18}$. I hope it is correct", "18", True),
        ("... The answer is 18.", "18", True),  # unboxed answers are read, as lighteval reads them
        ("#### 18", "18", True),
        ("Therefore, the final answer is: $18$", "18", True),
        (r"\boxed{\approx 18}", "18", True),
        (r"First I got \boxed{19}, but rechecking gives \boxed{18}.", "18", True),  # the last box
        (r"\boxed{19}", "19", False),
        ("It has 18 apples, then 4 are eaten, leaving 14.", "14", False),  # no anchor: the last number
        (
            r"\boxed{18.0}",
            "18.0000000000000",
            False,
        ),  # lighteval's precision bug: a float needing rounding never matches
        (r"So the answer is \boxed{18", None, False),  # cut off inside the box
        ("", None, False),
    ],
)
def test_math_answers_are_read_and_compared_as_lighteval_does(response, extracted, correct):
    assert check_math(response, SUM) == (extracted, correct)


@pytest.mark.parametrize(
    "response, extracted, correct",
    [
        ("So the total is $1,234$ dollars.", "1234", True),
        ("The answer is 1234.", "1234", True),
        ("#### 1,234", "1234", True),
        (r"\boxed{1234}", "1234", True),
        ("1234.00", "1234.00000000000", True),  # GSM8K's metric rounds floats as it should
        ("The answer is 1243.", "1243", False),
    ],
)
def test_gsm8k_answers_need_no_box_and_the_gold_is_the_solutions_last_number(response, extracted, correct):
    assert check_gsm8k(response, " Step <<2*3=6>>\n#### 1,234") == (extracted, correct)
    assert check_gsm8k("no idea", " #### 1234") == (None, False)


@pytest.mark.parametrize(
    "response, letter",
    [
        ("Step by step... Answer: B", "B"),
        ("**Answer:** B", "B"),
        ("**Final Answer:** B", "B"),
        ("Answer: Option B", "B"),
        ("B", "B"),
        (r"\boxed{D}", "D"),
        ("I first thought A, but the answer is C.", "C"),
        ("The answer is B\n\nAnswer: A", "A"),  # the last "answer:" line
        (r"\boxed{A + B}", "B"),  # no longer read as A: the rightmost capital A-D
        (r"\boxed{a = 2.5\ \text{m/s}}", None),
        ("answer: b", None),  # capitals only
        ("Carbon Dioxide", "D"),  # lighteval's last tier takes any capital A-D, even inside a word
    ],
)
def test_gpqa_reads_the_chosen_letter_as_lighteval_does(response, letter):
    assert choice_letter(response) == letter


def test_gpqa_a_wrong_or_missing_letter_is_not_correct():
    assert check_choice("Answer: B", "B") == ("B", True)
    assert check_choice("Answer: C", "B") == ("C", False)
    assert check_choice("no idea", "B") == (None, False)


def test_pass_at_1_is_the_mean_over_problems_of_each_problems_share_of_correct_samples():
    assert pass_at_1([[True, False], [True, True], [False, False]]) == pytest.approx((0.5 + 1 + 0) / 3)
    assert pass_at_1([[True], [False], [True], [True]]) == pytest.approx(0.75)


def test_a_gsm8k_row_without_its_four_hashes_is_one_clear_error():
    from openrlhf_cfpo.eval.errors import EvalError

    with pytest.raises(EvalError, match="'#### <number>' line"):
        reasoning.BENCHMARKS["gsm8k"].load([{"question": "Q?", "answer": "It is 5."}])


def test_gpqa_puts_the_correct_answer_at_a_fixed_place_per_question_among_the_others_in_file_order():
    positions = {rid: reasoning.gold_position(rid) for rid in [f"rec{i}" for i in range(40)]}
    assert positions == {rid: reasoning.gold_position(rid) for rid in positions}  # deterministic
    assert set(positions.values()) == {0, 1, 2, 3}  # the correct answer is not always in one place
    row = {
        "Question": "Q?",
        "Correct Answer": "right",
        "Incorrect Answer 1": "w1",
        "Incorrect Answer 2": "w2",
        "Incorrect Answer 3": "w3",
        "Record ID": "recX",
    }
    p = reasoning.gpqa_problem(row)
    choices = [line.split(") ", 1)[1] for line in p.prompt.split("\n")[-4:]]
    assert choices[LETTERS.index(p.gold)] == "right" and [c for c in choices if c != "right"] == ["w1", "w2", "w3"]
    assert p.prompt.startswith("Answer the following multiple choice question.") and "\n\nQ?\n\nA) " in p.prompt


def test_with_a_system_prompt_gpqa_is_asked_in_the_system_turn_as_lighteval_does():
    row = {
        "Question": "Q?",
        "Correct Answer": "r",
        "Incorrect Answer 1": "w1",
        "Incorrect Answer 2": "w2",
        "Incorrect Answer 3": "w3",
        "Record ID": "recX",
    }
    gpqa, math = reasoning.BENCHMARKS["gpqa_diamond"], reasoning.BENCHMARKS["math500"]
    p = reasoning.gpqa_problem(row)
    assert reasoning.conversation(gpqa, p, "SYS.") == ("SYS." + p.prompt, [""])
    assert reasoning.conversation(gpqa, p, None) == (None, [p.prompt])
    [m] = math.load([{"problem": "What is 1+1?", "solution": r"$\boxed{2}$", "unique_id": "u"}])
    assert reasoning.conversation(math, m, "SYS.") == ("SYS.", [m.prompt]) and m.prompt.endswith("\n\nWhat is 1+1?")


# ---------------------------------------------------------------- the paper's system prompt


def _config_dir(tmp_path, model_type, hidden, layers):
    d = tmp_path / f"{model_type}-{hidden}-{layers}"
    d.mkdir()
    (d / "config.json").write_text(
        json.dumps(
            {
                "model_type": model_type,
                "hidden_size": hidden,
                "num_hidden_layers": layers,
                "num_attention_heads": 2,
                "intermediate_size": 8,
                "vocab_size": 10,
            }
        )
    )
    return str(d)


@pytest.mark.parametrize(
    "hidden, layers, preset", [(1536, 28, "paper-1.5b"), (2048, 36, "paper-3b"), (3584, 28, "paper-7b")]
)
def test_auto_system_prompt_is_the_papers_training_prompt_for_the_checkpoints_qwen25_size(
    tmp_path, hidden, layers, preset
):
    prompt, how = reasoning.resolve_system_prompt("auto", _config_dir(tmp_path, "qwen2", hidden, layers))
    assert prompt == reasoning.SYSTEM_PROMPTS[preset] and how.endswith(preset)


def test_other_models_get_the_first_papers_prompt_and_explicit_choices_are_taken_as_given(tmp_path):
    prompt, how = reasoning.resolve_system_prompt("auto", _config_dir(tmp_path, "llama", 16, 1))
    assert prompt == reasoning.SYSTEM_PROMPTS["paper-1.5b"] and "not one of the paper's" in how
    assert reasoning.resolve_system_prompt("none", "unused") == (None, "none")
    assert reasoning.resolve_system_prompt("Be brief.", "unused") == ("Be brief.", "custom")


def test_system_prompts_are_the_papers_appendix_b1_text():
    p = reasoning.SYSTEM_PROMPTS
    assert p["paper-1.5b"].startswith("You are a helpful AI Assistant, designed to provided well-reasoned")
    assert p["paper-1.5b"].endswith("Please enclose your final answer in the box: \\boxed{Your Answer}.")
    assert p["paper-3b"] == p["paper-1.5b"] + " Please stop generation immediately after outputting the box."
    assert p["paper-7b"].endswith("Please provide a step-by-step solution to the following problem.")


# ---------------------------------------------------------------- end to end


@pytest.mark.parametrize("bench", BENCHES)
def test_each_benchmark_runs_end_to_end_on_a_tiny_model_and_writes_results_with_the_fixed_keys(
    bench, cli, tiny_model, data, tmp_path
):
    out = tmp_path / "run"
    assert cli(bench, "--model", tiny_model, "--output", out, "--data-dir", data, *SMOKE) == 0
    r = _results(out, bench)
    assert set(r) >= {"pass_at_1", "n_problems", "samples", "n_correct", "n_unparsed", "settings"}
    assert r["n_problems"] == N_PROBLEMS[bench] and r["samples"] == 1 and 0.0 <= r["pass_at_1"] <= 1.0
    s = r["settings"]
    assert s["implementation"].startswith("openrlhf_cfpo") and s["decoding"] == {
        "max_new_tokens": 4,
        "temperature": 0.6,
        "top_p": 0.95,
    }
    assert s["system_prompt"] == reasoning.SYSTEM_PROMPTS["paper-1.5b"]  # the tiny Llama is no Qwen2.5 size
    assert s["data_file"] == reasoning.BENCHMARKS[bench].data and s["math-verify"] == MATH_VERIFY_VERSION
    protocol = s["protocol"]
    assert (
        protocol["reference"].startswith("lighteval 0.9.2")
        and protocol["task"] == reasoning.BENCHMARKS[bench].lighteval
    )
    assert protocol["metric"] == METRICS[reasoning.BENCHMARKS[bench].kind].name and protocol["answer_extraction"]
    assert len(_answers(out, bench)) == N_PROBLEMS[bench]


@pytest.mark.parametrize("bench", BENCHES)
def test_pass_at_1_counts_the_right_answers_of_the_whole_pipeline(bench, cli, data, scripted, tmp_path):
    backend = scripted(n_right=1)
    out = tmp_path / "run"
    assert cli(bench, "--model", "stand-in", "--output", out, "--data-dir", data, "--system-prompt", "paper-3b") == 0
    r = _results(out, bench)
    assert r["n_correct"] == 1 and r["pass_at_1"] == pytest.approx(1 / N_PROBLEMS[bench])
    assert r["n_unparsed"] == (N_PROBLEMS[bench] - 1 if bench == "gpqa_diamond" else 0)  # 'Z' is no letter
    conv = backend.conversations[0]
    assert conv[0]["role"] == "system" and conv[0]["content"].startswith(reasoning.SYSTEM_PROMPTS["paper-3b"])
    assert [m["role"] for m in conv] == ["system", "user"]
    assert backend.decodings[0].max_new_tokens == 3072 and backend.decodings[0].temperature == 0.6
    scored = [json.loads(line) for line in (out / bench / "scored.jsonl").read_text().split("\n") if line]
    assert sum(s["correct"] for s in scored) == 1


def test_the_math_user_turn_is_lightevals_prompt_around_the_problem_text(cli, data, scripted, tmp_path):
    backend = scripted()
    assert cli("math500", "--model", "stand-in", "--output", tmp_path / "run", "--data-dir", data, *PAPER_PROMPT) == 0
    assert sorted(c[-1]["content"] for c in backend.conversations) == sorted(
        reasoning.MATH_PROMPT.format(problem=q) for q, _ in MATH500
    )


def test_samples_are_generated_with_distinct_seeds_and_averaged(cli, data, scripted, tmp_path):
    backend = scripted()
    out = tmp_path / "run"
    assert (
        cli(
            "aime24",
            "--model",
            "stand-in",
            "--output",
            out,
            "--data-dir",
            data,
            "--samples",
            3,
            "--seed",
            10,
            *PAPER_PROMPT,
        )
        == 0
    )
    r = _results(out, "aime24")
    assert r["samples"] == 3 and r["n_correct"] == 6 and r["pass_at_1"] == 1.0
    assert r["accuracy_by_sample"] == {"0": 1.0, "1": 1.0, "2": 1.0}
    seeds = {(a["problem_id"], a["decoding"]["seed"]) for a in _answers(out, "aime24")}
    assert seeds == {(str(i), s) for i, _, _ in AIME for s in (10, 11, 12)}
    assert {d.seed for d in backend.decodings} == {10, 11, 12}


def test_two_samples_of_a_problem_from_the_tiny_model_differ_and_a_rerun_elsewhere_reproduces_them(
    cli, tiny_model, data, tmp_path
):
    runs = []
    for name in ("a", "b"):
        out = tmp_path / name
        assert (
            cli(
                "math500",
                "--model",
                tiny_model,
                "--output",
                out,
                "--data-dir",
                data,
                "--samples",
                2,
                "--max-new-tokens",
                12,
                "--batch-size",
                3,
            )
            == 0
        )
        runs.append({a["id"]: a["turns"][0] for a in _answers(out, "math500")})
    first = runs[0]
    assert any(
        first[f"{pid}#0"] != first[f"{pid}#1"] for pid in (f"test/algebra/{i}.json" for i in range(len(MATH500)))
    )
    assert runs[0] == runs[1]


def test_a_rerun_reuses_every_answer_and_more_samples_generate_only_the_new_ones(cli, data, scripted, tmp_path):
    out = tmp_path / "run"
    args = ("gsm8k", "--model", "stand-in", "--output", out, "--data-dir", data, *PAPER_PROMPT)
    first = scripted()
    assert cli(*args) == 0 and first.calls > 0
    before = _results(out, "gsm8k")

    again = scripted()
    assert cli(*args) == 0
    assert again.calls == 0  # nothing generated again
    after = _results(out, "gsm8k")
    assert {k: v for k, v in after.items() if k != "settings"} == {k: v for k, v in before.items() if k != "settings"}

    more = scripted()
    assert cli(*args, "--samples", 2) == 0
    assert len(more.conversations) == len(GSM8K)  # only sample 1 of each problem
    assert len(_answers(out, "gsm8k")) == 2 * len(GSM8K)


def test_a_rerun_with_every_answer_on_disk_never_loads_the_model(cli, tiny_model, data, tmp_path, monkeypatch):
    out = tmp_path / "run"
    args = ("gpqa_diamond", "--model", tiny_model, "--output", out, "--data-dir", data, *SMOKE)
    assert cli(*args) == 0

    def no_model(*a, **k):
        raise AssertionError("the model was loaded although every answer was on disk")

    monkeypatch.setattr("openrlhf_cfpo.eval.common.make_backend", no_model)
    assert cli(*args) == 0


def test_answers_made_under_another_protocol_are_refused_with_one_error_line(cli, data, scripted, tmp_path, capsys):
    out = tmp_path / "run"
    scripted()
    assert cli("math500", "--model", "stand-in", "--output", out, "--data-dir", data, *PAPER_PROMPT) == 0
    capsys.readouterr()
    assert (
        cli("math500", "--model", "stand-in", "--output", out, "--data-dir", data, "--system-prompt", "paper-7b") == 2
    )
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "another system_prompt" in err

    (out / "math500" / "answers.jsonl").unlink()  # a run that stopped before its first answer binds nothing
    assert (
        cli("math500", "--model", "stand-in", "--output", out, "--data-dir", data, "--system-prompt", "paper-7b") == 0
    )
    assert _results(out, "math500")["settings"]["system_prompt"] == reasoning.SYSTEM_PROMPTS["paper-7b"]


def test_limit_takes_the_first_n_problems(cli, data, scripted, tmp_path):
    scripted()
    out = tmp_path / "run"
    assert (
        cli("gpqa_diamond", "--model", "stand-in", "--output", out, "--data-dir", data, "--limit", 2, *PAPER_PROMPT)
        == 0
    )
    assert _results(out, "gpqa_diamond")["n_problems"] == 2
    assert sorted(a["problem_id"] for a in _answers(out, "gpqa_diamond")) == ["recA", "recB"]


def test_gated_gpqa_without_a_token_or_network_is_one_error_line_saying_what_to_do(
    cli, stand_in_model, tmp_path, monkeypatch, capsys
):
    import huggingface_hub.constants

    monkeypatch.setattr(
        huggingface_hub.constants, "HF_HUB_OFFLINE", True
    )  # no network, as without a token: nothing comes
    monkeypatch.delenv("HF_TOKEN", raising=False)
    assert (
        cli("gpqa_diamond", "--model", stand_in_model, "--output", tmp_path / "run", "--cache-dir", tmp_path / "cache")
        == 2
    )
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "Idavidrein/gpqa" in err and "HF_TOKEN" in err and "--data-dir" in err
    assert not (tmp_path / "run").exists()  # nothing started


def test_a_missing_official_file_in_data_dir_names_the_path_to_put_it(cli, stand_in_model, tmp_path, capsys):
    assert cli("aime24", "--model", stand_in_model, "--output", tmp_path / "run", "--data-dir", tmp_path) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "HuggingFaceH4/aime_2024/data/train-00000-of-00001.parquet" in err


# ---------------------------------------------------------------- Table 5 and the suite script


def _reasoning_run(root, name, values):
    d = root / name
    for bench, v in zip(("math500", "gsm8k", "gpqa_diamond", "aime24"), values):
        if v is not None:
            (d / bench).mkdir(parents=True)
            (d / bench / "results.json").write_text(
                json.dumps(
                    {
                        "pass_at_1": v,
                        "n_problems": 1,
                        "samples": 1,
                        "n_correct": 0,
                        "n_unparsed": 0,
                        "settings": {"model": f"ckpt/{name}"},
                    }
                )
            )
    return d


def test_report_prints_table5_with_one_row_per_checkpoint_and_writes_its_csv(cli, tmp_path, capsys):
    base = _reasoning_run(tmp_path, "Qwen2.5-3B-Instruct", (0.645, 0.764, 0.328, 0.03))
    it2 = _reasoning_run(tmp_path, "cfpo-iter2", (0.658, 0.762, 0.333, 0.0333))
    it4 = _reasoning_run(tmp_path, "cfpo-iter4", (0.674, None, 0.288, 0.067))  # GSM8K not run yet
    assert cli("report", it2, it4, "--baseline", base, "--output", tmp_path / "tables") == 0
    md = capsys.readouterr().out
    assert "Table 5" in md and "Table 1" not in md  # reasoning runs only: no empty RLHF tables
    assert "| cfpo-iter2 | 0.658 (n=1) | 0.762 (n=1) | 0.333 (n=1) | 0.033 (n=1) |" in md
    t5 = list(csv.reader(open(tmp_path / "tables" / "table5_reasoning.csv")))
    assert t5[0] == ["Model", "MATH500", "GSM8K", "GPQA-Diamond", "AIME24"]
    assert [r[0] for r in t5[1:]] == ["Qwen2.5-3B-Instruct (baseline)", "cfpo-iter2", "cfpo-iter4"]
    assert t5[3][2] == "" and float(t5[1][1]) == 0.645
    assert not (tmp_path / "tables" / "table1_instruction_following.csv").exists()


def test_report_prints_all_three_tables_for_runs_holding_both_kinds(cli, tmp_path, capsys):
    d = _reasoning_run(tmp_path, "both", (0.5, 0.5, 0.5, 0.5))
    (d / "ifeval").mkdir()
    (d / "ifeval" / "results.json").write_text(json.dumps({"prompt_strict": 40.0, "settings": {"model": "ckpt/both"}}))
    assert cli("report", d, "--output", tmp_path / "tables") == 0
    md = capsys.readouterr().out
    assert "Table 1" in md and "Table 2" in md and "Table 5" in md
    assert sorted(p.name for p in (tmp_path / "tables").iterdir()) == [
        "table1_instruction_following.csv",
        "table2_capabilities.csv",
        "table5_reasoning.csv",
    ]


def test_run_suite_reasoning_runs_the_four_benchmarks_for_every_checkpoint_then_table5(logging_python):
    env, log = logging_python
    proc = subprocess.run(
        [
            "bash",
            str(REPO / "eval/run_suite.sh"),
            "ck/a",
            "ck/b/",
            "--baseline",
            "Qwen/base",
            "--reasoning",
            "--output",
            "O",
            "--",
            "--samples",
            "2",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    calls = [line.split() for line in log.read_text().splitlines() if "openrlhf_cfpo.cli.main" in line]  # eval calls
    runs = [(c[3], c[5], c[7]) for c in calls if c[3] != "report"]  # (benchmark, --model, --output)
    expected = [
        (b, m, f"O/{d}")
        for m, d in (("ck/a", "a"), ("ck/b/", "b"), ("Qwen/base", "base"))
        for b in ("math500", "gsm8k", "gpqa_diamond", "aime24")
    ]
    assert runs == expected
    assert all(c[-2:] == ["--samples", "2"] for c in calls if c[3] != "report")
    assert calls[-1][3:] == ["report", "O/a", "O/b", "--baseline", "O/base", "--output", "O"]


def test_run_suite_without_reasoning_still_runs_the_rlhf_benchmarks(logging_python):
    env, log = logging_python
    proc = subprocess.run(
        ["bash", str(REPO / "eval/run_suite.sh"), "ck/a"], env=env, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    calls = [line.split() for line in log.read_text().splitlines() if "openrlhf_cfpo.cli.main" in line]  # eval calls
    assert [c[3] for c in calls[:-1]] == ["arena_hard", "alpaca_eval", "mt_bench", "ifeval", "openllm"]
    assert calls[-1][3:] == ["report", "eval_results/a", "--output", "eval_results"]


def test_math_verify_is_reported_missing_as_one_install_line(monkeypatch):
    import builtins
    import sys

    real_import = builtins.__import__

    def no_math_verify(name, *a, **k):
        if name == "math_verify":
            raise ImportError("no math_verify")
        return real_import(name, *a, **k)

    monkeypatch.setattr(builtins, "__import__", no_math_verify)
    import openrlhf_cfpo.reasoning

    monkeypatch.delitem(sys.modules, "openrlhf_cfpo.reasoning.verifier", raising=False)  # import it afresh
    monkeypatch.delattr(openrlhf_cfpo.reasoning, "verifier", raising=False)
    from openrlhf_cfpo.eval.errors import EvalError

    with pytest.raises(EvalError, match=rf"pip install math-verify=={MATH_VERIFY_VERSION}"):
        answer_check.check_math(r"\boxed{1}", "1")
