"""TRL 1.16 entry point of the reasoning runs: GRPO or CFPO on MATH with the boxed-answer reward.

Run by ``train_scripts/cfpo_qwen25_math_trl.sh`` / ``grpo_qwen25_math_trl.sh`` under ``accelerate launch``; any
field of :class:`MathScriptArguments` or of :class:`openrlhf_cfpo.trl.GRPOConfig` (TRL's, plus ``policy_loss_type``)
is a ``--flag`` (or a key of ``--config file.yaml``), parsed by TRL's ``TrlParser``::

    python -m openrlhf_cfpo.reasoning.trl_grpo --model_name_or_path Qwen/Qwen2.5-3B --model_size 3B \\
        --policy_loss_type cfpo --loss_type grpo --num_generations 3 --output_dir runs/x ...

The arguments are parsed and checked (unknown flags, an unknown model size, settings the CFPO trainer does not
implement) before the tokenizer, the data or the model load.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field

from trl import TrlParser

from openrlhf_cfpo.chat import stop_token_ids
from openrlhf_cfpo.reasoning.data import MATH_CONFIG, MATH_DATASET, load_math, prepare_math
from openrlhf_cfpo.reasoning.rewards import boxed_answer_reward
from openrlhf_cfpo.recipes import MODEL_SIZES, TABLE_3, check_max_prompt_length, check_model_size
from openrlhf_cfpo.trl import GRPOConfig, GRPOTrainer


@dataclass
class MathScriptArguments:
    """The policy, and what it trains on: the MATH split, the system prompt (by model size), the prompt budget."""

    model_name_or_path: str | None = field(
        default=None, metadata={"help": "The policy to train (hub name or folder), e.g. Qwen/Qwen2.5-3B. Required."}
    )
    dtype: str = field(
        default="bfloat16",
        metadata={
            "help": "dtype the policy is loaded in (as open-r1's recipes load it).",
            "choices": ["auto", "bfloat16", "float16", "float32"],
        },
    )
    attn_implementation: str | None = field(
        default=None, metadata={"help": "transformers attention implementation, e.g. sdpa or flash_attention_2."}
    )
    model_size: str = field(
        default="3B",
        metadata={
            "help": f"Qwen2.5 size of the policy, one of {', '.join(MODEL_SIZES)}: picks the paper's system "
            "prompt (arXiv 2601.22801, appendix B.1; the same for base and Instruct)."
        },
    )
    dataset_name: str = field(
        default=MATH_DATASET,
        metadata={"help": "Hub name of MATH, or a local .json/.jsonl/.parquet/.csv with its columns."},
    )
    dataset_config: str | None = field(default=MATH_CONFIG, metadata={"help": "Hub configuration of the dataset."})
    dataset_split: str = field(default="train", metadata={"help": "Split to train on (MATH train: 7,500 problems)."})
    max_prompt_length: int = field(
        default=TABLE_3.max_prompt_length,
        metadata={
            "help": "Prompts with more tokens (system prompt and chat template included) are dropped before "
            "training (Table 3); TRL 1.16 has no max_prompt_length of its own."
        },
    )

    def __post_init__(self):
        if not self.model_name_or_path:
            raise ValueError("--model_name_or_path is required (e.g. Qwen/Qwen2.5-3B)")
        check_model_size(self.model_size)
        check_max_prompt_length(self.max_prompt_length)


def parse_args(argv: list[str] | None = None) -> tuple[MathScriptArguments, GRPOConfig]:
    """Both argument groups, as TRL's own scripts parse them; raises on an unknown flag or a bad value."""
    parser = TrlParser((MathScriptArguments, GRPOConfig))
    return parser.parse_args_and_config(args=argv)


def check_flags(argv: list[str]) -> int:
    """Parse ``argv`` as :func:`main` would and stop there: 0, or one line on stderr and 2 (a train script's
    --dry-run runs this on the command it prints)."""
    import torch

    if not torch.cuda.is_available():
        # The command is for a GPU node: here transformers would refuse its bf16 for the machine, not for the flags.
        argv = [*argv, "--use_cpu", "true"]
    try:
        parse_args(argv)
    except ValueError as err:  # our checks and TRL's own, in the dataclasses' __post_init__
        print(f"openrlhf_cfpo.reasoning.trl_grpo: error: {' '.join(str(err).split())}", file=sys.stderr)
        return 2
    return 0  # argparse's own errors (an unknown flag) exit 2 with their one error line last


def stop_at_the_end_of_a_turn(model, tokenizer, training_args: GRPOConfig) -> list[int]:
    """Make TRL end every completion where the chat turn ends, on both of its generation paths; returns the ids.

    TRL 1.16 stops only at the model's ``generation_config.eos_token_id`` and the tokenizer's eos
    (grpo_trainer.py:409-416, which also masks everything after the first of them), and its vLLM gets no stop ids of
    its own (vllm_generation.py:662-683: only ``generation_kwargs`` reach ``SamplingParams``). A Qwen2.5 base
    model's eos is ``<|endoftext|>``, while its chat turns end at ``<|im_end|>``: the turn's end goes into the
    model's generation config (so also into the saved checkpoint) and, for vLLM, into ``stop_token_ids``.
    """
    ids = stop_token_ids(tokenizer, model.generation_config)
    model.generation_config.eos_token_id = ids
    if training_args.use_vllm:
        kwargs = dict(training_args.generation_kwargs or {})
        kwargs["stop_token_ids"] = list(dict.fromkeys([*kwargs.get("stop_token_ids", []), *ids]))
        training_args.generation_kwargs = kwargs
    return ids


def build_trainer(script_args: MathScriptArguments, training_args: GRPOConfig) -> GRPOTrainer:
    """Tokenizer, prepared MATH split, the policy (loaded as TRL loads it) and the CFPO-capable GRPOTrainer."""
    from transformers import AutoTokenizer
    from trl.trainer.utils import create_model_from_path

    init_kwargs = {"dtype": script_args.dtype, "attn_implementation": script_args.attn_implementation}
    init_kwargs = {**{k: v for k, v in init_kwargs.items() if v is not None}, **(training_args.model_init_kwargs or {})}
    tokenizer = AutoTokenizer.from_pretrained(
        script_args.model_name_or_path,
        revision=init_kwargs.get("revision"),
        trust_remote_code=training_args.trust_remote_code,
    )
    # under accelerate every process prepares the data: the main one first, the others then read datasets' cache
    with training_args.main_process_first(desc="MATH preparation"):
        dataset = prepare_math(
            load_math(script_args.dataset_name, script_args.dataset_config, script_args.dataset_split),
            tokenizer,
            script_args.model_size,
            script_args.max_prompt_length,
        )
    # Loaded here rather than by name inside GRPOTrainer, so that its generation config says where a turn ends
    # before TRL reads it. The Trainer places the model (TRL passes device_map=None under accelerate too).
    init_kwargs.setdefault("device_map", None)
    init_kwargs.setdefault("trust_remote_code", training_args.trust_remote_code)
    model = create_model_from_path(script_args.model_name_or_path, **init_kwargs)
    training_args.model_init_kwargs = None  # used above; TRL would warn that a loaded model ignores them
    stop_at_the_end_of_a_turn(model, tokenizer, training_args)
    return GRPOTrainer(
        model=model,
        reward_funcs=[boxed_answer_reward],
        args=training_args,
        train_dataset=dataset,
        processing_class=tokenizer,
    )


def main(argv: list[str] | None = None) -> GRPOTrainer:
    script_args, training_args = parse_args(argv)
    trainer = build_trainer(script_args, training_args)
    trainer.train(resume_from_checkpoint=training_args.resume_from_checkpoint)
    trainer.save_model(training_args.output_dir)
    return trainer


if __name__ == "__main__":
    main(sys.argv[1:])
