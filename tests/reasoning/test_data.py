"""MATH -> chat prompts and labels: the paper's system prompt per size, the solution as label, the 512-token budget."""

import pytest

from openrlhf_cfpo.reasoning.data import SYSTEM_PROMPTS, chat_prompt, load_math, prepare_math, prompt_length

ROWS = [
    ("What is $2+2$?", "We add: $2+2=\\boxed{4}$."),
    ("Simplify $\\frac{2}{4}$.", "Divide by 2: $\\boxed{\\frac{1}{2}}$."),
    ("Which option?", "First we rule out (A) since \\boxed{A} fails. The answer is $\\boxed{\\text{(C)}}$."),
    ("A problem whose solution never boxes its answer.", "The answer is 7."),
    ("A problem whose solution states no answer.", "See the figure."),
    ("Width of the box?", "It is $\\fbox{3 cm}$ wide."),
]


@pytest.fixture
def math_file(tmp_path, helpers):
    return helpers.write_jsonl(tmp_path / "math_train.jsonl", [helpers.math_row(p, s) for p, s in ROWS])


def test_each_model_size_gets_its_own_system_prompt_from_appendix_b1():
    assert set(SYSTEM_PROMPTS) == {"1.5B", "3B", "7B"}
    for size in ("1.5B", "3B"):
        assert SYSTEM_PROMPTS[size].startswith("You are a helpful AI Assistant, designed to provided well-reasoned")
        assert "Please enclose your final answer in the box: \\boxed{Your Answer}." in SYSTEM_PROMPTS[size]
        assert "`" not in SYSTEM_PROMPTS[size]  # the paper's code font, not part of the prompt
    assert (
        SYSTEM_PROMPTS["3B"] == SYSTEM_PROMPTS["1.5B"] + " Please stop generation immediately after outputting the box."
    )
    assert SYSTEM_PROMPTS["7B"].endswith("Please provide a step-by-step solution to the following problem.")
    assert "boxed" not in SYSTEM_PROMPTS["7B"]


def test_prepare_turns_math_rows_into_chat_prompts_with_the_solution_as_label(math_file, chat_tokenizer):
    prepared = prepare_math(load_math(math_file, split="train"), chat_tokenizer, "3B", max_prompt_length=512)
    assert prepared.column_names == ["prompt", "answer", "index"]
    # the reward reads the gold from the solution; the row it reads none from is dropped: nothing to check against
    assert [row["index"] for row in prepared] == [0, 1, 2, 3, 5]
    assert [row["answer"] for row in prepared] == [ROWS[i][1] for i in (0, 1, 2, 3, 5)]
    first = prepared[0]["prompt"]
    assert first == [
        {"role": "system", "content": SYSTEM_PROMPTS["3B"]},
        {"role": "user", "content": "What is $2+2$?"},
    ]
    seven_b = prepare_math(load_math(math_file, split="train"), chat_tokenizer, "7B")
    assert seven_b[0]["prompt"][0]["content"] == SYSTEM_PROMPTS["7B"]


def test_prompts_over_the_token_budget_are_dropped_and_the_budget_itself_is_kept(tmp_path, helpers, chat_tokenizer):
    budget = 512
    # every word is one token with this tokenizer: the chat template and system prompt take `overhead` tokens
    overhead = prompt_length(chat_tokenizer, chat_prompt("", "1.5B"))
    at_budget = " ".join(["x"] * (budget - overhead))
    rows = [
        helpers.math_row("short one", "\\boxed{1}"),
        helpers.math_row(at_budget, "\\boxed{2}"),
        helpers.math_row(at_budget + " x", "\\boxed{3}"),
        helpers.math_row(" ".join(["x"] * 2000), "\\boxed{4}"),
    ]
    assert prompt_length(chat_tokenizer, chat_prompt(at_budget, "1.5B")) == budget
    path = helpers.write_jsonl(tmp_path / "lengths.jsonl", rows)
    prepared = prepare_math(load_math(path, split="train"), chat_tokenizer, "1.5B", max_prompt_length=budget)
    assert [row["answer"] for row in prepared] == ["\\boxed{1}", "\\boxed{2}"]
    assert all(prompt_length(chat_tokenizer, row["prompt"]) <= budget for row in prepared)


def test_the_hub_dataset_is_the_math_training_split_open_r1_uses(monkeypatch):
    calls = []
    monkeypatch.setattr("datasets.load_dataset", lambda *a, **k: calls.append((a, k)))
    load_math()
    assert calls == [(("DigitalLearningGmbH/MATH-lighteval", "default"), {"split": "train"})]


@pytest.mark.parametrize("size", ["2B", "3b", ""])
def test_an_unknown_model_size_is_one_clear_error(size, math_file, chat_tokenizer):
    with pytest.raises(ValueError, match="1.5B, 3B, 7B"):
        prepare_math(load_math(math_file, split="train"), chat_tokenizer, size)


def test_the_eval_suite_offers_each_training_system_prompt_under_its_paper_size_name():
    # section 4.1: "We adopt the same chat-style prompting format used during training for evaluation"
    from openrlhf_cfpo.eval import reasoning

    assert reasoning.SYSTEM_PROMPTS == {
        "paper-1.5b": SYSTEM_PROMPTS["1.5B"],
        "paper-3b": SYSTEM_PROMPTS["3B"],
        "paper-7b": SYSTEM_PROMPTS["7B"],
    }
