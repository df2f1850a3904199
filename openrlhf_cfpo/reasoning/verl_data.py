"""MATH as verl 0.9.1 reads RL data: one parquet per split, prepared exactly as the TRL runs' data.

Columns (verl's ``RLHFDataset`` and reward manager): ``data_source`` (the dataset's hub name), ``prompt`` (the chat
list: the paper's system prompt, then the problem), ``ability`` ("math"), ``reward_model`` (``{"style": "rule",
"ground_truth": the MATH solution}``, what :func:`openrlhf_cfpo.reasoning.rewards.compute_score` receives) and
``extra_info`` (``{"split", "index"}``, the row's index in the hub split). Prompts over the token budget are dropped
here, as for TRL (see :mod:`openrlhf_cfpo.reasoning.data`)::

    python -m openrlhf_cfpo.reasoning.verl_data --model Qwen/Qwen2.5-3B --model-size 3B --output-dir DIR
    # -> DIR/train.parquet (MATH train, 7,500 problems before filtering), DIR/test.parquet (MATH test, validation)
    #    DIR/generation_config/generation_config.json (the model's, stopping at the end of a chat turn)

verl 0.9.1's vLLM rollout stops where vLLM's generation config says (the model's ``generation_config.json``, whose
eos ids vLLM adds to every request's ``stop_token_ids``; verl's ``override_generation_config`` sets only sampling
values, vllm_async_server.py:1197-1207), and a Qwen2.5 base model's says ``<|endoftext|>`` while its chat turns end
at ``<|im_end|>``. The recipe points vLLM (``engine_kwargs.vllm.generation_config``) at the copy written here, which
adds the end of a turn (:func:`openrlhf_cfpo.chat.stop_token_ids`).
"""

from __future__ import annotations

import argparse
import os
import sys

from openrlhf_cfpo.reasoning.data import MATH_CONFIG, MATH_DATASET, load_math, prepare_math
from openrlhf_cfpo.recipes import MODEL_SIZES, TABLE_3, check_max_prompt_length

ABILITY = "math"


def to_verl(prepared, split: str, data_source: str = MATH_DATASET):
    """Rows of :func:`~openrlhf_cfpo.reasoning.data.prepare_math` in verl's RL-data columns."""

    def convert(row):
        return {
            "data_source": data_source,
            "prompt": row["prompt"],
            "ability": ABILITY,
            "reward_model": {"style": "rule", "ground_truth": row["answer"]},
            "extra_info": {"split": split, "index": row["index"]},
        }

    return prepared.map(convert, remove_columns=prepared.column_names)


def write_split(
    tokenizer,
    model_size: str,
    split: str,
    output_dir: str,
    dataset: str = MATH_DATASET,
    dataset_config: str | None = MATH_CONFIG,
    max_prompt_length: int = TABLE_3.max_prompt_length,
) -> str:
    """Prepare one split and write it to ``output_dir/<split>.parquet``; returns the path."""
    prepared = prepare_math(load_math(dataset, dataset_config, split), tokenizer, model_size, max_prompt_length)
    path = os.path.join(output_dir, f"{split}.parquet")
    os.makedirs(output_dir, exist_ok=True)
    to_verl(prepared, split, data_source=MATH_DATASET if os.path.exists(dataset) else dataset).to_parquet(path)
    return path


GENERATION_CONFIG_DIR = "generation_config"


def write_generation_config(model: str, tokenizer, output_dir: str) -> str:
    """``model``'s generation config with every end-of-completion id as eos, in ``output_dir/generation_config/``."""
    from transformers import GenerationConfig

    from openrlhf_cfpo.chat import stop_token_ids

    try:
        config = GenerationConfig.from_pretrained(model)
    except OSError:  # a model without generation_config.json: vLLM would fall back to the tokenizer's eos alone
        config = GenerationConfig()
    config.eos_token_id = stop_token_ids(tokenizer, config)
    path = os.path.join(output_dir, GENERATION_CONFIG_DIR)
    config.save_pretrained(path)
    return path


def main(argv: list[str] | None = None) -> list[str]:
    parser = argparse.ArgumentParser(
        prog="python -m openrlhf_cfpo.reasoning.verl_data", description=__doc__.split("\n")[0]
    )
    parser.add_argument(
        "--model", required=True, help="the policy (hub name or folder): its tokenizer counts prompt tokens"
    )
    parser.add_argument("--model-size", required=True, choices=MODEL_SIZES, help="picks the paper's system prompt")
    parser.add_argument("--output-dir", required=True)
    parser.add_argument(
        "--dataset",
        default=MATH_DATASET,
        help="hub name, a local folder of <split>.jsonl/.parquet files, or one local file (every split)",
    )
    parser.add_argument("--dataset-config", default=MATH_CONFIG)
    parser.add_argument("--splits", nargs="+", default=["train", "test"])
    parser.add_argument(
        "--max-prompt-length", type=int, default=TABLE_3.max_prompt_length, help="longer prompts are dropped (Table 3)"
    )
    args = parser.parse_args(argv)
    try:
        check_max_prompt_length(args.max_prompt_length)
    except ValueError as error:
        parser.error(str(error))

    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(args.model)
    paths = [
        write_split(
            tokenizer,
            args.model_size,
            split,
            args.output_dir,
            args.dataset,
            args.dataset_config,
            args.max_prompt_length,
        )
        for split in args.splits
    ]
    paths.append(write_generation_config(args.model, tokenizer, args.output_dir))
    for path in paths:
        print(path)
    return paths


if __name__ == "__main__":
    main(sys.argv[1:])
