"""The paper's training recipes in one place: Tables 3 and 4, the system prompts, and each run's derived sizes.

Every number a train script uses comes from here, with its source. arXiv 2601.22801 (CFPO): section 4.1 and
appendix B.1 (Table 3, the Qwen2.5 reasoning runs, and the system prompts), section 4.2 and appendix B.2 (Table 4,
the Llama-3-8B RLHF runs).

The scripts in ``train_scripts/`` are ``python -m openrlhf_cfpo.recipes RECIPE --prog NAME FLAGS...``: their flags,
the framework commands built from these settings and the launch are :mod:`openrlhf_cfpo.recipe_commands`'s. Standard
library only, so that reading the tables costs milliseconds and works before any extra is installed.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass


@dataclass(frozen=True)
class ReasoningTable:
    """Table 3: "Training hyperparameters for Qwen2.5 reasoning experiments", the same for base and Instruct."""

    learning_rate: dict  # by model size
    batch_size: int  # problems per update; section 4.1: "Each training update processes 128 problems"
    group_size: int  # completions per problem; section 4.1: "we generate 3 candidate solutions per problem"
    kl_beta: float  # section 4.1: "we use a KL penalty coefficient of beta = 0.0"
    max_prompt_length: int
    max_completion_length: int
    temperature: float
    clip_ratio: float  # PPO's eps; CFPO's trust-region width
    lr_scheduler: str
    warmup_ratio: float
    adam_betas: tuple
    adam_epsilon: float


TABLE_3 = ReasoningTable(
    learning_rate={"1.5B": 3e-6, "3B": 3e-6, "7B": 1e-6},
    batch_size=128,
    group_size=3,
    kl_beta=0.0,
    max_prompt_length=512,
    max_completion_length=3072,
    temperature=0.9,
    clip_ratio=0.2,
    lr_scheduler="cosine",
    warmup_ratio=0.1,
    adam_betas=(0.9, 0.999),
    adam_epsilon=1e-8,
)


@dataclass(frozen=True)
class RlhfTable:
    """Table 4: "RLHF training hyperparameters for Llama-3-8B experiments" (everything else OpenRLHF's defaults)."""

    actor_learning_rate: float
    train_batch_size: int  # samples per optimizer step
    rollout_batch_size: int  # prompts per rollout
    samples_per_prompt: int  # section 4.2: "k = 2 rollouts per prompt"
    max_prompt_length: int
    max_generation_length: int
    kl_coef: float  # "1e-4 / 0e-4": the KL run and, with --kl0, the KL-free run
    advantage_estimator: str
    clip_ratio: float  # not in Table 4: OpenRLHF's default eps_clip, which CFPO reads as its eps


TABLE_4 = RlhfTable(
    actor_learning_rate=5e-7,
    train_batch_size=64,
    rollout_batch_size=512,
    samples_per_prompt=2,
    max_prompt_length=1024,
    max_generation_length=1024,
    kl_coef=1e-4,
    advantage_estimator="rloo",
    clip_ratio=0.2,
)

# Appendix B.1, verbatim, one per Qwen2.5 size, "the same prompts are used for both base and instruct model
# variants". The extracted text shows `\boxed{Your Answer}` in backquotes: the paper's code font, not characters of
# the prompt. "to provided" is the paper's wording; the reference recipe's 3B prompt (Zhao et al.'s open-r1 fork,
# recipes/Qwen2.5-3B/grpo/config_demo.yaml) spells "outputing" where the paper prints "outputting": the paper's
# text is kept. The 7B prompt does not ask for a box.
SYSTEM_PROMPTS = {
    "1.5B": (
        "You are a helpful AI Assistant, designed to provided well-reasoned and detailed responses. You FIRST think "
        "about the reasoning process step by step and then provide the user with the answer. Please enclose your "
        "final answer in the box: \\boxed{Your Answer}."
    ),
    "3B": (
        "You are a helpful AI Assistant, designed to provided well-reasoned and detailed responses. You FIRST think "
        "about the reasoning process step by step and then provide the user with the answer. Please enclose your "
        "final answer in the box: \\boxed{Your Answer}. Please stop generation immediately after outputting the box."
    ),
    "7B": (
        "You are a helpful AI Assistant, designed to provided well-reasoned and detailed responses. Please provide a "
        "step-by-step solution to the following problem."
    ),
}
MODEL_SIZES = tuple(SYSTEM_PROMPTS)  # section 4.1: Qwen2.5-1.5B, -3B and -7B


@dataclass(frozen=True)
class Filled:
    """A setting Table 3 does not give, the value the recipes use, and where that value comes from."""

    value: object
    source: str


# Where Table 3 is silent ("unspecified fields inherit the TRL defaults"), the recipes follow the reference recipe:
# section 4.1 "follow[s] the training setup of Zhao et al. (2025)", whose open-r1 fork (sunblaze-ucb/Intuitor,
# open-r1-intuitor/recipes/Qwen2.5-{3B,7B}/grpo/config_demo.yaml) pins TRL at commit 1bca495 (0.17.0 + 5 commits),
# and whose verl script (verl-intuitor/math_grpo.sh) runs verl 0.4.1.
_INTUITOR = "the reference recipe (Zhao et al.'s open-r1 fork, recipes/Qwen2.5-{3B,7B}/grpo/config_demo.yaml)"
FILLED = {
    "epochs": Filled(
        1,
        f"{_INTUITOR}: num_train_epochs 1, and its verl script trainer.total_epochs=1 (TRL's own "
        "default, 3, would triple the optimizer steps)",
    ),
    # The reference sets no loss_type, so its runs aggregated with TRL's default at its pinned commit: bnpo, a token
    # mean over each micro-batch (grpo_config.py there). Eq. 8 writes the per-completion mean (TRL's grpo); Table 3
    # says unspecified fields are TRL's defaults, and the runs behind the paper's numbers are what a comparison needs.
    "trl_loss_type": Filled(
        "bnpo",
        f"TRL's default at the commit {_INTUITOR} pins (it sets no loss_type); eq. 8's "
        "per-completion mean is --loss-type grpo",
    ),
    "verl_loss_agg_mode": Filled(
        "token-mean",
        "verl's default (0.4.1, the reference's verl script sets none), the "
        "token mean TRL's bnpo takes; eq. 8 is --loss-agg-mode "
        "seq-mean-token-mean",
    ),
    # TRL 0.17 cut prompts over max_prompt_length from the left (grpo_trainer.py at the pinned commit:
    # prompt_ids[:, -max_prompt_length:]), which drops the system prompt and the start of the problem: the policy
    # would be trained on prompts that no longer say what to do. TRL 1.16 has no prompt budget at all; the reference's
    # verl script drops them (data.filter_overlong_prompts=True, truncation=error). Dropped here in both frameworks.
    "prompts_over_max_prompt_length": Filled(
        "dropped",
        "the reference's verl script (filter_overlong_prompts); its TRL cut them from the left, losing the "
        "system prompt",
    ),
}

# The frameworks' names of the aggregations the recipes accept. TRL_AGGREGATIONS: the TRL loss_types that only
# aggregate the per-token surrogate, the vocabulary of our TRL adapter (openrlhf_cfpo.trl.config.AGGREGATIONS is this
# tuple; it lives here because importing openrlhf_cfpo.trl imports TRL). VERL_LOSS_AGG_MODES: verl's loss_agg_mode.
TRL_AGGREGATIONS = ("grpo", "bnpo", "dr_grpo", "dapo")
VERL_LOSS_AGG_MODES = ("token-mean", "seq-mean-token-mean", "seq-mean-token-sum", "seq-mean-token-sum-norm")


# --- what a run keeps on disk ----------------------------------------------------------------------------------------

# Parameters of the policies the recipes train (their model cards), for the disk plan.
PARAMETERS = {"Qwen2.5-1.5B": 1.54e9, "Qwen2.5-3B": 3.09e9, "Qwen2.5-7B": 7.62e9, "Llama-3-8B": 8.03e9}
# Bytes per parameter of what a checkpoint holds, in bf16 mixed precision with AdamW.
BF16_WEIGHTS = 2
ZERO_STATE = 2 + 4 + 8  # DeepSpeed: the bf16 module weights, the fp32 master weights, Adam's two fp32 moments
FSDP_STATE = 4 + 8  # verl's FSDP: fp32 parameters and Adam's two fp32 moments
KEEP_CHECKPOINTS = 2  # the newest two: a resume point even while the next one is being written
_GIB = 2**30


@dataclass(frozen=True)
class DiskPlan:
    """The most a run keeps: ``keep`` checkpoints of ``per_checkpoint`` bytes per parameter, plus a final model."""

    parameters: float
    keep: int
    per_checkpoint: int
    final: int
    what: str  # what one checkpoint holds, in words

    @property
    def gib(self) -> float:
        return self.parameters * (self.keep * self.per_checkpoint + self.final) / _GIB

    def describe(self) -> str:
        final = f" + final model {self.final} B" if self.final else ""
        return (
            f"about {self.gib:.0f} GiB kept = {self.parameters / 1e9:.2f}e9 parameters x ({self.keep} checkpoints "
            f"x {self.per_checkpoint} B ({self.what}){final}); --keep-checkpoints changes the count"
        )


# --- what the preflight (openrlhf-cfpo doctor) checks before a run starts ------------------------------------------

# Memory each GPU needs: the recipes are sized for 80 GB GPUs (A100/H100 80GB; NVML reports 79.1-79.6 GiB of
# them): the vLLM memory fractions they give (OpenRLHF 0.5 of the GPU, verl 0.6, TRL's default 0.3) and their
# micro-batches assume it, with Llama-3-8B's policy, reference and reward model colocated under ZeRO-3 and
# Qwen2.5-7B's ZeRO-2 states (a full bf16 copy of the weights per GPU, 15 GiB, plus its share of 14 B per parameter)
# beside vLLM's share. Not a measured peak: a smaller GPU may run the small models with other fractions.
GPU_MEMORY_GIB = 79.0


@dataclass(frozen=True)
class NodeNeeds:
    """What a job needs on the node, the facts ``openrlhf-cfpo doctor --recipe NAME`` checks (the flags override)."""

    packages: tuple[str, ...]  # what it imports, in the doctor's names (openrlhf_cfpo.doctor.PACKAGES)
    extras: tuple[str, ...]  # the extras of ours its environment installs: whose pins apply
    gpus_per_node: int = 8
    gpu_memory_gib: float | None = GPU_MEMORY_GIB  # per GPU, total memory
    memory_reason: str = "the recipe's micro-batches and vLLM share are sized for 80 GB GPUs"


NODE_NEEDS = {
    "llama3-rlhf": NodeNeeds(
        ("flash_attn", "vllm", "deepspeed", "ray", "nccl"),
        ("openrlhf",),
        memory_reason="the Llama-3-8B placement colocates four models per GPU and is sized for 80 GB GPUs",
    ),
    "qwen25-math-trl": NodeNeeds(("vllm", "deepspeed", "nccl", "trl", "math_verify"), ("openrlhf", "trl", "reasoning")),
    # verl's environment is its own (verl's tested GPU stack): its Ray and vLLM are verl's, not our openrlhf extra's
    "qwen25-math-verl": NodeNeeds(("vllm", "ray", "nccl", "verl", "math_verify"), ("verl-gpu", "reasoning")),
    # `openrlhf-cfpo eval` and eval/run_suite.sh: no GPU needed (a judge or the API may do the work)
    "eval": NodeNeeds(("math_verify",), ("eval", "reasoning", "openrlhf"), 0, None, ""),
}


def check_model_size(model_size: str) -> str:
    """``model_size`` if the paper has a system prompt for it; else one line naming the sizes it has."""
    if model_size not in SYSTEM_PROMPTS:
        raise ValueError(f"model size {model_size!r} is not one of the paper's Qwen2.5 sizes: {', '.join(MODEL_SIZES)}")
    return model_size


def check_max_prompt_length(max_prompt_length: int) -> int:
    """The prompt budget in tokens, if it is one (at least 1)."""
    if max_prompt_length < 1:
        raise ValueError(f"max_prompt_length must be at least 1 (got {max_prompt_length})")
    return max_prompt_length


def qwen_model(model_size: str, instruct: bool) -> str:
    """Hub name of the policy: Qwen/Qwen2.5-3B, Qwen/Qwen2.5-7B-Instruct, ..."""
    return f"Qwen/Qwen2.5-{check_model_size(model_size)}{'-Instruct' if instruct else ''}"


def qwen_tag(model_size: str, instruct: bool) -> str:
    """Lower-case tag of a Qwen2.5 policy for run names: qwen2.5-3b, qwen2.5-7b-instruct."""
    return f"qwen2.5-{model_size.lower()}{'-instruct' if instruct else ''}"


# --- the train scripts' interface -----------------------------------------------------------------------------------


class BadFlag(ValueError):
    """A train-script flag with a value the recipe cannot run: the message is the one line the user sees."""


def _positive_int(flag: str, value: str) -> int:
    if not value.isdigit() or int(value) < 1:
        raise BadFlag(f"{flag} must be a positive integer (got '{value}')")
    return int(value)


def _model_size(value: str) -> str:
    if value not in MODEL_SIZES:
        raise BadFlag(f"--model-size must be {', '.join(MODEL_SIZES[:-1])} or {MODEL_SIZES[-1]} (got '{value}')")
    return value


def number(x: float) -> str:
    """``x`` as the tables write it: 3e-6, 1e-8, 0.2, 0."""
    if x and abs(x) < 1e-2:
        mantissa, exponent = f"{x:.6e}".split("e")
        return f"{mantissa.rstrip('0').rstrip('.')}e{int(exponent)}"
    return f"{x:g}"


def _loss(value: str, labels: dict, scripts: str) -> str:
    if value not in labels:
        raise BadFlag(f"--loss must be {' or '.join(labels)} (got '{value}'); use {scripts}")
    return value


def _trl_flags(argv: list) -> dict:
    """TRL flags given after ``--`` as {name: value}, the last one winning as in TRL's parser; dashes read as
    underscores (HfArgumentParser takes both spellings)."""
    flags, i = {}, 0
    while i < len(argv):
        token = argv[i]
        if token.startswith("--"):
            name, eq, value = token[2:].partition("=")
            if not eq and i + 1 < len(argv) and not argv[i + 1].startswith("--"):
                value, i = argv[i + 1], i + 1
            flags[name.replace("-", "_")] = value
        i += 1
    return flags


def _hydra_overrides(argv: list) -> dict:
    """Hydra overrides given after ``--`` (``key=value``, ``+key=value``, ``++key=value``) as {key: value}."""
    return {k.lstrip("+"): v for k, eq, v in (item.partition("=") for item in argv) if eq and not k.startswith("~")}


def _one_of(flag: str, value: str, choices: tuple, default: str) -> str:
    if value not in choices:
        listed = sorted(choices, key=lambda choice: choice != default)  # the default first, as --help lists them
        raise BadFlag(f"{flag} must be one of {', '.join(listed)} (got '{value}')")
    return value


def _keep(args) -> int:
    return _positive_int("--keep-checkpoints", args.keep_checkpoints)


def _disk(plan: dict, disk: DiskPlan) -> dict:
    plan["keep_checkpoints"] = disk.keep
    plan["disk_gib"] = f"{disk.gib:.0f}"
    plan["disk_estimate"] = disk.describe()
    return plan


LLAMA3_MICRO_BATCH_SIZE = 4  # samples per GPU per forward pass in training: memory only, not in Table 4


def llama3_rlhf(args) -> dict:
    """Table 4 on ``nodes`` x ``gpus`` GPUs with one hybrid engine (actor, reference, reward and vLLM colocated)."""
    labels = {"cfpo": "cfpo", "ppo": "rloo"}  # ppo: RLOO advantages with PPO's clipped surrogate, the baseline
    _loss(args.loss, labels, "cfpo_llama3.sh or rloo_llama3.sh")
    nodes = _positive_int("--nodes", args.nodes)
    gpus = _positive_int("--gpus-per-node", args.gpus_per_node)
    vllm_tp = _positive_int("VLLM_TP", args.vllm_tp)
    if (nodes * gpus) % vllm_tp:
        raise BadFlag(f"VLLM_TP={vllm_tp} must divide the {nodes * gpus} GPUs")
    table = TABLE_4
    # DeepSpeed splits each optimizer step's samples into micro-batches on every GPU: they must divide evenly
    micro_batch = LLAMA3_MICRO_BATCH_SIZE
    if table.train_batch_size % (nodes * gpus * micro_batch):
        raise BadFlag(
            f"--nodes {nodes} x --gpus-per-node {gpus} x micro-batch {micro_batch} must divide Table 4's "
            f"train batch of {table.train_batch_size} samples (e.g. 1, 2, 4, 8 or 16 GPUs in all)"
        )
    kl_coef = number(0.0 if args.kl0 else table.kl_coef)
    plan = {
        "run_name": f"{labels[args.loss]}_llama3-8b_kl{kl_coef}",
        "kl_coef": kl_coef,
        "actor_lr": number(table.actor_learning_rate),
        "train_batch_size": table.train_batch_size,
        "rollout_batch_size": table.rollout_batch_size,
        "samples_per_prompt": table.samples_per_prompt,
        # OpenRLHF 0.11.2 bounds prompt + generation together (--data.max_len), not the prompt alone
        "max_len": table.max_prompt_length + table.max_generation_length,
        "max_new_tokens": table.max_generation_length,
        "advantage_estimator": table.advantage_estimator,
        "eps_clip": number(table.clip_ratio),
        "vllm_engines": nodes * gpus // vllm_tp,
        "train_micro_batch_size": micro_batch,
    }
    # OpenRLHF rotates its DeepSpeed checkpoints (--ckpt.max_num) and writes the final HF model once
    return _disk(
        plan,
        DiskPlan(
            PARAMETERS["Llama-3-8B"],
            _keep(args),
            ZERO_STATE,
            BF16_WEIGHTS,
            "ZeRO-3: bf16 weights 2 + fp32 master 4 + Adam moments 8",
        ),
    )


def _reasoning_common(args, labels: dict, scripts: str) -> dict:
    _loss(args.loss, labels, scripts)
    size = _model_size(args.model_size)
    iterations = _positive_int("--iterations", args.iterations)
    table = TABLE_3
    return {
        "label": labels[args.loss],
        "model": qwen_model(size, args.instruct),
        "parameters": PARAMETERS[f"Qwen2.5-{size}"],
        "tag": qwen_tag(size, args.instruct),
        "iterations": iterations,
        "learning_rate": number(table.learning_rate[size]),
        "batch_size": table.batch_size,
        "group_size": table.group_size,
        "kl_beta": number(table.kl_beta),
        "max_prompt_length": table.max_prompt_length,
        "max_completion_length": table.max_completion_length,
        "temperature": number(table.temperature),
        "clip_ratio": number(table.clip_ratio),
        "lr_scheduler": table.lr_scheduler,
        "warmup_ratio": number(table.warmup_ratio),
        "adam_beta1": number(table.adam_betas[0]),
        "adam_beta2": number(table.adam_betas[1]),
        "adam_epsilon": number(table.adam_epsilon),
    }


def qwen25_math_trl(args) -> dict:
    """Table 3 in TRL on one node: one update = batch_size x group_size completions in one optimizer step."""
    plan = _reasoning_common(
        args, {"cfpo": "cfpo", "ppo": "grpo"}, "cfpo_qwen25_math_trl.sh or grpo_qwen25_math_trl.sh"
    )
    gpus = _positive_int("--gpus-per-node", args.gpus_per_node)
    micro_batch = _positive_int("--micro-batch-size", args.micro_batch_size)
    completions = plan["batch_size"] * plan["group_size"]
    if completions % (gpus * micro_batch):
        raise BadFlag(
            f"--gpus-per-node {gpus} x --micro-batch-size {micro_batch} must divide the {completions} "
            "completions of an update"
        )
    plan["accumulation"] = completions // (gpus * micro_batch)
    plan["nodes"] = 1  # accelerate starts the processes on this node
    plan["run_name"] = f"{plan['label']}_{plan['tag']}_trl_it{plan['iterations']}"
    default = FILLED["trl_loss_type"].value
    plan["loss_type"] = _one_of("--loss-type", args.loss_type or default, TRL_AGGREGATIONS, default)
    plan["epochs"] = FILLED["epochs"].value

    # TRL flags after `--` win over the recipe's: those that size an update must keep Table 3's.
    passed = _trl_flags(args.passthrough)
    per_device = _positive_int(
        "--per_device_train_batch_size", passed.get("per_device_train_batch_size", str(micro_batch))
    )
    accumulation = _positive_int(
        "--gradient_accumulation_steps", passed.get("gradient_accumulation_steps", str(plan["accumulation"]))
    )
    group = _positive_int("--num_generations", passed.get("num_generations", str(plan["group_size"])))
    if "generation_batch_size" in passed:
        generated = _positive_int("--generation_batch_size", passed["generation_batch_size"])
    else:
        generated = (
            per_device
            * gpus
            * _positive_int("--steps_per_generation", passed.get("steps_per_generation", str(accumulation)))
        )
    if (group, per_device * gpus * accumulation, generated) != (plan["group_size"], completions, completions):
        sizing = [
            f"--{name} {passed[name]}"
            for name in (
                "per_device_train_batch_size",
                "gradient_accumulation_steps",
                "num_generations",
                "generation_batch_size",
                "steps_per_generation",
            )
            if name in passed
        ]
        raise BadFlag(
            f"{' '.join(sizing)} after -- would make an update {per_device * gpus * accumulation} "
            f"completions in groups of {group}, generated {generated} at a time, not Table 3's "
            f"{plan['batch_size']} problems x {plan['group_size']} = {completions} in one optimizer step: "
            "size the micro-batch with --micro-batch-size (the gradient accumulation follows)"
        )
    plan["loss_type"] = passed.get("loss_type", plan["loss_type"])
    plan["epochs"] = passed.get("num_train_epochs", plan["epochs"])
    # each TRL checkpoint holds the model's weights and DeepSpeed's states (save_total_limit rotates them); the
    # final model is saved once more at the end
    return _disk(
        plan,
        DiskPlan(
            plan.pop("parameters"),
            _keep(args),
            BF16_WEIGHTS + ZERO_STATE,
            BF16_WEIGHTS,
            "bf16 weights 2 + ZeRO-2: bf16 weights 2 + fp32 master 4 + Adam moments 8",
        ),
    )


def qwen25_math_verl(args) -> dict:
    """Table 3 in verl: each update split into ``batch_ratio`` mini-batches, each passed over ``iterations`` times."""
    plan = _reasoning_common(
        args, {"cfpo": "cfpo", "vanilla": "grpo"}, "cfpo_qwen25_math_verl.sh or grpo_qwen25_math_verl.sh"
    )
    batch_ratio = _positive_int("--batch-ratio", args.batch_ratio)
    nodes = _positive_int("--nodes", args.nodes)
    gpus = _positive_int("--gpus-per-node", args.gpus_per_node)
    if plan["batch_size"] % batch_ratio:
        raise BadFlag(
            f"--batch-ratio {batch_ratio} must divide the {plan['batch_size']} problems of an update (1, 2, 4, 8, ...)"
        )
    mini_batch = plan["batch_size"] // batch_ratio
    if (mini_batch * plan["group_size"]) % (nodes * gpus):
        raise BadFlag(
            f"--batch-ratio {batch_ratio} gives mini-batches of {mini_batch * plan['group_size']} rollouts, "
            f"not divisible by the {nodes * gpus} GPUs"
        )
    plan["mini_batch_size"] = mini_batch
    plan["run_name"] = f"{plan['label']}_{plan['tag']}_verl_it{plan['iterations']}_br{batch_ratio}"
    default = FILLED["verl_loss_agg_mode"].value
    plan["loss_agg_mode"] = _one_of("--loss-agg-mode", args.loss_agg_mode or default, VERL_LOSS_AGG_MODES, default)
    plan["epochs"] = FILLED["epochs"].value

    # Hydra overrides after `--` win over the recipe's: those that size an update must keep Table 3's.
    passed = _hydra_overrides(args.passthrough)
    update = f"Table 3's update is {plan['batch_size']} problems x {plan['group_size']} rollouts"
    sizes = {
        "data.train_batch_size": (plan["batch_size"], update),
        "actor_rollout_ref.rollout.n": (plan["group_size"], update),
        "actor_rollout_ref.actor.ppo_mini_batch_size": (mini_batch, "the mini-batch is set by --batch-ratio"),
    }
    for key, (value, fix) in sizes.items():
        if key in passed and passed[key] != str(value):
            raise BadFlag(f"{key}={passed[key]} after -- would change the update size ({value} here): {fix}")
    plan["loss_agg_mode"] = passed.get("actor_rollout_ref.actor.loss_agg_mode", plan["loss_agg_mode"])
    plan["epochs"] = passed.get("trainer.total_epochs", plan["epochs"])
    # verl's actor checkpoints (model, optimizer, extra; trainer.max_actor_ckpt_to_keep rotates them) are the run's
    # only copies of the weights
    return _disk(
        plan, DiskPlan(plan.pop("parameters"), _keep(args), FSDP_STATE, 0, "FSDP: fp32 parameters 4 + Adam moments 8")
    )


RECIPES = {"llama3-rlhf": llama3_rlhf, "qwen25-math-trl": qwen25_math_trl, "qwen25-math-verl": qwen25_math_verl}


def main(argv: list | None = None) -> int:
    """A train script's command line (see :mod:`openrlhf_cfpo.recipe_commands`), imported only when one runs."""
    from openrlhf_cfpo.recipe_commands import main as run_script

    return run_script(argv)


if __name__ == "__main__":
    sys.exit(main())
