"""Verifiable reward of the embedded arithmetic default, in OpenRLHF's ``reward_func`` interface.

Standalone (torch only), so this file works unchanged as ``--reward.remote_url`` for OpenRLHF on a
cluster and for ``openrlhf-cfpo local`` on a laptop. A query is the prompt and the response decoded
together, special tokens kept, e.g. ``"<s> 4 7 + 3 8 = 8 5 </s>"``; the label is the sum as a string,
``"85"``. The answer is what follows the last ``=`` up to the first end-of-sequence token: digits only,
whitespace-separated digits joined (the embedded tokenizer writes one token per digit, separated by spaces;
Qwen's writes ``85``).

- ``rewards``: 1.0 when the answer equals the label, else 0.0 (what training uses);
- ``scores``: the same (OpenRLHF's dynamic filtering reads it);
- ``extra_logs``: ``answer_well_formed``, 1.0 when the response is digits followed by an end-of-sequence token.
"""

import torch

# End-of-sequence markers: the embedded tokenizer's, and the common ones of Qwen, Llama 3 and GPT-2 style vocabularies.
EOS = ("</s>", "<|im_end|>", "<|endoftext|>", "<|eot_id|>", "<|end_of_text|>")


def parse_answer(query: str):
    """The digits after the last ``=``, or None when the response is not digits ended by EOS."""
    if "=" not in query:
        return None
    response = query.rsplit("=", 1)[1]
    ends = [response.find(e) for e in EOS if e in response]
    if not ends:
        return None  # truncated: no answer was given
    words = response[: min(ends)].split()
    if not words or not all(w.isdigit() for w in words):
        return None
    return "".join(words)


def reward_func(queries, prompts, labels):
    answers = [parse_answer(q) for q in queries]
    correct = torch.tensor([float(a is not None and a == str(y).strip()) for a, y in zip(answers, labels)])
    return {
        "rewards": correct,
        "scores": correct,
        "extra_logs": {"answer_well_formed": torch.tensor([float(a is not None) for a in answers])},
    }
