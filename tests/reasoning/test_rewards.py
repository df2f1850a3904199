"""The reference recipe's accuracy reward: what it reads from solution and completion, in TRL's and verl's convention.

tests/test_scoring_parity.py checks every reward against the reference's own function on a fixed set of responses;
these cases spell out its semantics.
"""

from concurrent.futures import ThreadPoolExecutor

import pytest

from openrlhf_cfpo.reasoning.rewards import boxed_answer_reward, compute_score, read_gold, score

FOUR = "Adding gives $2+2=\\boxed{4}$."  # labels are MATH solutions: the reward reads the gold from them
HALF = "So the probability is $\\boxed{\\frac{1}{2}}$."

RIGHT = [
    ("We get $x = \\boxed{4}$.", FOUR),
    ("So the probability is \\boxed{0.5}.", HALF),  # equal values, different notation
    ("The width is \\boxed{4\\text{ cm}}.", FOUR),  # units dropped
    ("First I thought \\boxed{3}, but rechecking gives \\boxed{4}.", FOUR),  # of several boxes, the last
    ("Therefore, the final answer is: $4$. I hope it is correct", FOUR),  # no box: LaTeX after an answer phrase
    ("So the answer is $4$.", FOUR),  # what a 7B model answers to the 7B system prompt, which asks for no box
]
WRONG = [
    ("We get $x = \\boxed{5}$.", FOUR),
    ("First I thought \\boxed{4}, but rechecking gives \\boxed{3}.", FOUR),
    ("\\boxed{\\frac{1}{3}}", HALF),
]
NO_ANSWER = [
    ("The answer is 4.", FOUR),  # plain text is no answer: the reference reads LaTeX only
    ("#### 4", FOUR),
    ("We have $x = 4$ in the end.", FOUR),  # LaTeX with no answer phrase before it
    ("so the answer is \\boxed{4", FOUR),  # cut off inside the box
    ("\\boxed{}", FOUR),
    ("\\boxed{?!?}", FOUR),
    ("\\boxed{\\dfrac12}", HALF),  # malformed operators are not repaired
]


@pytest.mark.parametrize("completion,solution", RIGHT)
def test_a_right_latex_answer_scores_one(completion, solution):
    assert score(completion, solution) == 1.0


@pytest.mark.parametrize("completion,solution", WRONG)
def test_a_wrong_answer_scores_zero(completion, solution):
    assert score(completion, solution) == 0.0


@pytest.mark.parametrize("completion,solution", NO_ANSWER)
def test_a_completion_without_an_answer_the_reference_reads_scores_zero(completion, solution):
    assert score(completion, solution) == 0.0


def test_the_gold_is_read_from_the_whole_solution_as_the_reference_reads_it():
    assert [str(g) for g in read_gold(FOUR)] == ["4", "4"]  # the box, then the text it came from
    assert str(read_gold("The answer is 7.")[0]) == "7"  # no box: an anchored number
    assert read_gold("See the figure.") == []


def test_trl_reward_reads_conversational_completions_and_the_answer_column():
    cases = RIGHT[:2] + WRONG[:1] + NO_ANSWER[:1]
    completions = [[{"role": "assistant", "content": c}] for c, _ in cases]
    rewards = boxed_answer_reward(
        completions=completions, answer=[s for _, s in cases], prompts=[None] * 4, trainer_state=None
    )
    assert rewards == [1.0, 1.0, 0.0, 0.0]
    assert boxed_answer_reward(completions=["\\boxed{4}"], answer=[FOUR]) == [1.0]  # plain-text prompts


def test_a_solution_without_a_readable_answer_is_left_out_in_trl_and_zero_in_verl():
    assert boxed_answer_reward(completions=["\\boxed{4}"], answer=["See the figure."]) == [None]  # TRL drops None
    assert compute_score("DigitalLearningGmbH/MATH-lighteval", "\\boxed{4}", "See the figure.") == 0.0


def test_verl_compute_score_gives_the_same_scores_from_its_worker_threads():
    # verl's reward manager calls compute_score through run_in_executor: signal-based timeouts are unavailable there
    cases = RIGHT + WRONG + NO_ANSWER
    with ThreadPoolExecutor(max_workers=2) as pool:
        threaded = list(
            pool.map(
                lambda case: compute_score(
                    "DigitalLearningGmbH/MATH-lighteval", case[0], case[1], extra_info={"split": "train", "index": 0}
                ),
                cases,
            )
        )
    assert threaded == [1.0] * len(RIGHT) + [0.0] * (len(WRONG) + len(NO_ANSWER))
