"""The reasoning reward as an OpenRLHF ``reward_func`` file: ``--reward.remote_url <this file>``.

The same rule as TRL's and verl's reward (:func:`openrlhf_cfpo.reasoning.rewards.score`: the reference recipe's
accuracy reward), in OpenRLHF 0.11.2's calling convention, which :mod:`openrlhf_cfpo.local` shares:
``reward_func(queries, prompts, labels)``, one sample per call, where a query is the prompt and the response decoded
together with special tokens kept. OpenRLHF tokenizes the prompt and, when it is longer than the prompt budget, keeps
its end (``utils/agent.py``), so a query may start with only a tail of its prompt: the response is what follows the
longest tail of the prompt that the query starts with. It is cut at the first end-of-turn or end-of-text token (the
policy's turn ends there; what a sampler left after it is not the answer).

- ``rewards`` / ``scores``: :func:`~openrlhf_cfpo.reasoning.rewards.score`, 1.0 when the response's answer equals the
  label's, else 0.0 (also when the label has no
  readable answer: OpenRLHF needs a number, as verl does);
- ``extra_logs``: ``answer_parsed``, 1.0 when the response holds an answer math-verify reads, right or wrong.
"""

import torch

from openrlhf_cfpo.reasoning.rewards import read_answer, score_answer

# Where a chat turn or a text ends: ChatML (Qwen2.5, SmolLM2), Llama 3, GPT-2 style vocabularies and SentencePiece.
END_OF_TURN = ("<|im_end|>", "<|endoftext|>", "<|eot_id|>", "<|end_of_text|>", "</s>")


def response_of(query: str, prompt: str) -> str:
    """The response in ``query``: after the longest tail of ``prompt`` that ``query`` starts with, up to its first
    end-of-turn token ("" when the query does not start with any of the prompt)."""
    for start in range(len(prompt) or 1):  # (an empty prompt: the query is all response)
        if query.startswith(prompt[start:]):
            response = query[len(prompt) - start :]
            break
    else:
        return ""
    ends = [response.find(mark) for mark in END_OF_TURN if mark in response]
    return response[: min(ends)] if ends else response


def reward_func(queries, prompts, labels):
    answers = [read_answer(response_of(q, p)) for q, p in zip(queries, prompts)]
    values = [score_answer(answer, str(y)) for answer, y in zip(answers, labels)]
    rewards = torch.tensor([0.0 if v is None else v for v in values])
    return {
        "rewards": rewards,
        "scores": rewards,
        "extra_logs": {"answer_parsed": torch.tensor([float(bool(answer)) for answer in answers])},
    }
