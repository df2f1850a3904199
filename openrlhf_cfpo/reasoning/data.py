"""MATH problems as the paper trains on them: chat prompts with a per-model system prompt, the solution as label.

arXiv 2601.22801, section 4.1: "the training split of the MATH dataset (Hendrycks et al., 2021), which contains
7,500 problems", "a chat-style prompting format", no separate reasoning/answer tags; appendix B.1 (Table 3): prompts
of at most 512 tokens, and one system prompt per model size, the same for the base and the Instruct model.

TRL 1.16 has no ``max_prompt_length``: prompts longer than the budget are dropped here, counted with the policy's
own chat template exactly as TRL tokenizes a conversational prompt (``apply_chat_template`` with the generation
prompt), so no prompt is truncated at training time. verl's ``data.filter_overlong_prompts`` counts the same way.
"""

from __future__ import annotations

import logging
import os

from openrlhf_cfpo.recipes import SYSTEM_PROMPTS, TABLE_3, check_max_prompt_length, check_model_size

logger = logging.getLogger(__name__)

# The hub copy of Hendrycks et al.'s MATH that open-r1 (the paper's framework, section 4.1) trains on: splits
# train (7,500 problems) and test (5,000); columns problem, level, type, solution.
MATH_DATASET = "DigitalLearningGmbH/MATH-lighteval"
MATH_CONFIG = "default"


def chat_prompt(problem: str, model_size: str) -> list[dict]:
    """The conversation a policy of ``model_size`` is asked: the paper's system prompt, then the problem."""
    return [
        {"role": "system", "content": SYSTEM_PROMPTS[check_model_size(model_size)]},
        {"role": "user", "content": problem},
    ]


def prompt_length(tokenizer, messages: list[dict]) -> int:
    """Tokens of ``messages`` under ``tokenizer``'s chat template with the generation prompt, as TRL tokenizes them."""
    encoded = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=True, return_dict=True)
    return len(encoded["input_ids"])


def load_math(name: str = MATH_DATASET, config: str | None = MATH_CONFIG, split: str = "train"):
    """One split of MATH from the Hugging Face hub, or a local copy with the same columns.

    A local ``.json``/``.jsonl``/``.parquet``/``.csv`` file is read as that split; a local folder as a dataset.
    """
    from datasets import load_dataset

    if os.path.isfile(name):
        suffix = name.rsplit(".", 1)[-1].lower()
        builder = {"jsonl": "json", "json": "json", "parquet": "parquet", "csv": "csv"}.get(suffix)
        if builder is None:
            raise ValueError(f"{name}: a local MATH file must be .json, .jsonl, .parquet or .csv")
        return load_dataset(builder, data_files={split: name}, split=split)
    return load_dataset(name, config, split=split)


def prepare_math(dataset, tokenizer, model_size: str, max_prompt_length: int = TABLE_3.max_prompt_length):
    """MATH rows -> ``prompt`` (chat list), ``answer`` (the solution: the reward reads the gold from it), ``index``.

    ``index`` is the row's position in ``dataset``. The reward reads the gold answer from the whole solution, as the
    reference recipe's reward does (:mod:`openrlhf_cfpo.reasoning.rewards`). Rows from whose solution it reads none
    (every completion would get no reward) and rows whose prompt has more than ``max_prompt_length`` tokens are
    dropped; how many of each is logged.
    """
    from .rewards import read_gold  # math-verify: the reasoning extra

    check_model_size(model_size)
    check_max_prompt_length(max_prompt_length)

    def convert(row, index):
        prompt = chat_prompt(row["problem"], model_size)
        return {
            "prompt": prompt,
            "answer": row["solution"],
            "index": index,
            "_keep_answer": bool(read_gold(row["solution"])),
            "_prompt_length": prompt_length(tokenizer, prompt),
        }

    converted = dataset.map(convert, with_indices=True, remove_columns=dataset.column_names)
    with_answer = converted.filter(lambda row: row["_keep_answer"])
    kept = with_answer.filter(lambda row: row["_prompt_length"] <= max_prompt_length)
    logger.warning(
        "MATH: %d problems, %d whose solution gives no answer to check and %d with a prompt over %d tokens dropped, "
        "%d kept",
        len(dataset),
        len(converted) - len(with_answer),
        len(with_answer) - len(kept),
        max_prompt_length,
        len(kept),
    )
    return kept.remove_columns(["_keep_answer", "_prompt_length"])
