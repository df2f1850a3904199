"""The boxed-answer reward: right, wrong and unparseable answers, in TRL's and in verl's calling convention."""
from concurrent.futures import ThreadPoolExecutor

import pytest

from openrlhf_cfpo.reasoning.rewards import boxed_answer_reward, compute_score, score

RIGHT = [
    ("We get $x = \\boxed{4}$.", "4"),
    ("So the probability is \\boxed{0.5}.", "\\frac{1}{2}"),  # equal values, different notation
    ("Hence \\boxed{\\frac12}", "\\frac{1}{2}"),  # TeX shorthand
    ("The width is \\boxed{3\\text{ cm}}.", "3"),  # units dropped
    ("The set is \\boxed{x \\in [0,1]}", "[0,1]"),
    ("Option \\boxed{C}", "\\text{(C)}"),
    ("First I thought \\boxed{3}, but rechecking gives \\boxed{4}.", "4"),  # only the final box counts
]
WRONG = [
    ("We get $x = \\boxed{5}$.", "4"),
    ("First I thought \\boxed{4}, but rechecking gives \\boxed{3}.", "4"),
    ("\\boxed{\\frac{1}{3}}", "0.33"),
]
UNPARSEABLE = [
    ("The answer is 4.", "4"),  # no box: the reward asks for the final \boxed{} answer
    ("so the answer is \\boxed{4", "4"),  # cut off inside the box
    ("\\boxed{}", "4"),
    ("\\boxed{?!?}", "4"),
]


@pytest.mark.parametrize("completion,answer", RIGHT)
def test_a_right_final_boxed_answer_scores_one(completion, answer):
    assert score(completion, answer) == 1.0


@pytest.mark.parametrize("completion,answer", WRONG)
def test_a_wrong_final_boxed_answer_scores_zero(completion, answer):
    assert score(completion, answer) == 0.0


@pytest.mark.parametrize("completion,answer", UNPARSEABLE)
def test_an_unparseable_answer_scores_zero(completion, answer):
    assert score(completion, answer) == 0.0


def test_trl_reward_reads_conversational_completions_and_the_answer_column():
    completions = [[{"role": "assistant", "content": c}] for c, _ in RIGHT[:2] + WRONG[:1] + UNPARSEABLE[:1]]
    answers = [a for _, a in RIGHT[:2] + WRONG[:1] + UNPARSEABLE[:1]]
    rewards = boxed_answer_reward(completions=completions, answer=answers, prompts=[None] * 4, trainer_state=None)
    assert rewards == [1.0, 1.0, 0.0, 0.0]
    assert boxed_answer_reward(completions=["\\boxed{4}"], answer=["4"]) == [1.0]  # plain-text prompts


def test_a_label_math_verify_cannot_parse_is_left_out_in_trl_and_zero_in_verl():
    assert boxed_answer_reward(completions=["\\boxed{4}"], answer=[""]) == [None]  # TRL drops None from the mean
    assert compute_score("DigitalLearningGmbH/MATH-lighteval", "\\boxed{4}", "") == 0.0


def test_verl_compute_score_gives_the_same_scores_from_its_worker_threads():
    # verl's reward manager calls compute_score through run_in_executor: signal-based timeouts are unavailable there
    cases = RIGHT + WRONG + UNPARSEABLE
    with ThreadPoolExecutor(max_workers=2) as pool:
        threaded = list(pool.map(lambda case: compute_score("DigitalLearningGmbH/MATH-lighteval", case[0], case[1],
                                                            extra_info={"split": "train", "index": 0}), cases))
    assert threaded == [1.0] * len(RIGHT) + [0.0] * (len(WRONG) + len(UNPARSEABLE))
