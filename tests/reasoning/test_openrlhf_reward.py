"""The reasoning reward as an OpenRLHF reward_func file: the response is found in the query as OpenRLHF builds it."""

import pytest

from openrlhf_cfpo.local.rewards import RewardFunction
from openrlhf_cfpo.reasoning import openrlhf_reward, rewards

# A ChatML prompt with a worked example whose own answer is boxed: that box is the prompt's, never the response's.
PROMPT = (
    "<|im_start|>user\nWhat is 3 + 4?<|im_end|>\n"
    "<|im_start|>assistant\n3 + 4 = 7. The answer is \\boxed{7}.<|im_end|>\n"
    "<|im_start|>user\nWhat is 5 + 2?<|im_end|>\n<|im_start|>assistant\n"
)


@pytest.fixture(scope="module")
def reward():
    return RewardFunction(openrlhf_reward.__file__)  # loaded from its path, as OpenRLHF's --reward.remote_url loads it


@pytest.mark.parametrize(
    "response, label, expected, parsed",
    [
        ("5 + 2 = 7. The answer is \\boxed{7}.<|im_end|>", "7", 1.0, 1.0),
        ("The answer is $7$.<|im_end|>", "7", 1.0, 1.0),
        ("5 + 2 = 8. The answer is \\boxed{8}.<|im_end|>", "7", 0.0, 1.0),
        ("It is 7.<|im_end|>", "7", 0.0, 0.0),  # plain text: the reference's reward reads LaTeX only
        (
            "I do not know.<|im_end|>",
            "7",
            0.0,
            0.0,
        ),  # the worked example's \boxed{7} is in the prompt, not the response
        (
            "\\boxed{8}<|im_end|>\n<|im_start|>user\n\\boxed{7}",
            "7",
            0.0,
            1.0,
        ),  # an invented turn after the end is not read
        ("5 + 2 = \\boxed{7}<|endoftext|>", "7", 1.0, 1.0),
        ("5 + 2 = \\boxed{7", "7", 0.0, 0.0),  # cut by the token budget inside the box
    ],
)
def test_the_reward_reads_only_the_response_up_to_the_end_of_its_turn(reward, response, label, expected, parsed):
    values, scores, extra = reward([PROMPT + response], [PROMPT], [label])
    assert values.tolist() == [expected] and scores.tolist() == [expected]
    assert extra["answer_parsed"].tolist() == [parsed]


@pytest.mark.parametrize("kept", [40, 17, 1])
def test_a_query_whose_prompt_was_left_truncated_is_scored_on_its_response(reward, kept):
    # OpenRLHF keeps the end of a prompt over its budget: the query starts with a tail of the prompt
    response = "The answer is \\boxed{7}.<|im_end|>"
    assert openrlhf_reward.response_of(PROMPT[-kept:] + response, PROMPT) == "The answer is \\boxed{7}."
    assert reward([PROMPT[-kept:] + response], [PROMPT], ["7"])[0].tolist() == [1.0]


def test_a_query_that_does_not_start_with_its_prompt_gets_no_reward_from_the_prompts_example(reward):
    assert openrlhf_reward.response_of("something else \\boxed{7}", "<|im_start|>user\n") == ""
    assert reward(["something else \\boxed{7}"], ["<|im_start|>user\n"], ["7"])[0].tolist() == [0.0]


@pytest.mark.parametrize(
    "response, solution",
    [
        ("so $x = \\boxed{\\approx 3.14}$", "$\\boxed{3.14}$"),
        ("Therefore, the final answer is: $18$", "The sum is $\\boxed{18}$."),
        ("The answer is 18.", "$\\boxed{18}$"),
        ("\\boxed{3} then \\boxed{4}", "\\boxed{4}"),
        ("\\boxed{\\frac{1}{2}}", "The answer is $0.5$."),
    ],
)
def test_openrlhf_trl_and_verl_rewards_are_the_same_number(reward, response, solution):
    prompt = "<|im_start|>user\nQ<|im_end|>\n<|im_start|>assistant\n"
    openrlhf = reward([prompt + response + "<|im_end|>"], [prompt], [solution])[0].item()
    trl = rewards.boxed_answer_reward([[{"role": "assistant", "content": response}]], [solution])[0]
    verl = rewards.compute_score("math", response, solution)
    assert openrlhf == verl == (0.0 if trl is None else trl)


@pytest.mark.parametrize("solution", ["See the figure.", "", "The answer is given in the text."])
def test_a_gold_answer_that_does_not_parse_gives_no_reward_in_any_framework_whatever_the_response(reward, solution):
    # The right answer, a wrong one and none: with no gold to compare, none is rewarded. TRL's reward_funcs may return
    # None, which TRL leaves out of the reward; OpenRLHF and verl need a number and get 0.0.
    prompt = "<|im_start|>user\nQ<|im_end|>\n<|im_start|>assistant\n"
    responses = ["\\boxed{4}", "\\boxed{5}", "I do not know."]
    openrlhf = reward([prompt + r + "<|im_end|>" for r in responses], [prompt] * 3, [solution] * 3)[0].tolist()
    trl = rewards.boxed_answer_reward(responses, [solution] * 3)
    verl = [rewards.compute_score("math", r, solution) for r in responses]
    assert rewards.read_gold(solution) == []
    assert openrlhf == verl == [0.0, 0.0, 0.0] and trl == [None, None, None]
