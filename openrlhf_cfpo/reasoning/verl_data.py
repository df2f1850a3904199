"""MATH as verl 0.9.1 reads RL data: one parquet per split, prepared exactly as the TRL runs' data.

Columns (verl's ``RLHFDataset`` and reward manager): ``data_source`` (the dataset's hub name), ``prompt`` (the chat
list: the paper's system prompt, then the problem), ``ability`` ("math"), ``reward_model`` (``{"style": "rule",
"ground_truth": the MATH solution}``, what :func:`openrlhf_cfpo.reasoning.rewards.compute_score` receives) and
``extra_info`` (``{"split", "index"}``, the row's index in the hub split). Prompts over the token budget are dropped
here, as for TRL (see :mod:`openrlhf_cfpo.reasoning.data`)::

    python -m openrlhf_cfpo.reasoning.verl_data --model Qwen/Qwen2.5-3B --model-size 3B --output-dir DIR
    # -> DIR/train.parquet (MATH train, 7,500 problems before filtering), DIR/test.parquet (MATH test, validation)
"""
from __future__ import annotations

import argparse
import os
import sys
from typing import Optional

from openrlhf_cfpo.reasoning.data import MATH_CONFIG, MATH_DATASET, MODEL_SIZES, load_math, prepare_math

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


def write_split(tokenizer, model_size: str, split: str, output_dir: str, dataset: str = MATH_DATASET,
                dataset_config: Optional[str] = MATH_CONFIG, max_prompt_length: int = 512) -> str:
    """Prepare one split and write it to ``output_dir/<split>.parquet``; returns the path."""
    prepared = prepare_math(load_math(dataset, dataset_config, split), tokenizer, model_size, max_prompt_length)
    path = os.path.join(output_dir, f"{split}.parquet")
    os.makedirs(output_dir, exist_ok=True)
    to_verl(prepared, split, data_source=MATH_DATASET if os.path.exists(dataset) else dataset).to_parquet(path)
    return path


def main(argv: Optional[list[str]] = None) -> list[str]:
    parser = argparse.ArgumentParser(prog="python -m openrlhf_cfpo.reasoning.verl_data", description=__doc__.split("\n")[0])
    parser.add_argument("--model", required=True, help="the policy (hub name or folder): its tokenizer counts prompt tokens")
    parser.add_argument("--model-size", required=True, choices=MODEL_SIZES, help="picks the paper's system prompt")
    parser.add_argument("--output-dir", required=True)
    parser.add_argument("--dataset", default=MATH_DATASET,
                        help="hub name, a local folder of <split>.jsonl/.parquet files, or one local file (every split)")
    parser.add_argument("--dataset-config", default=MATH_CONFIG)
    parser.add_argument("--splits", nargs="+", default=["train", "test"])
    parser.add_argument("--max-prompt-length", type=int, default=512, help="longer prompts are dropped (Table 3: 512)")
    args = parser.parse_args(argv)
    if args.max_prompt_length < 1:
        parser.error(f"--max-prompt-length must be at least 1 (got {args.max_prompt_length})")

    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(args.model)
    paths = [
        write_split(tokenizer, args.model_size, split, args.output_dir, args.dataset, args.dataset_config,
                    args.max_prompt_length)
        for split in args.splits
    ]
    for path in paths:
        print(path)
    return paths


if __name__ == "__main__":
    main(sys.argv[1:])
