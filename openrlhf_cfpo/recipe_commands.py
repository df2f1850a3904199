"""The train scripts' command line: their flags, the framework command each recipe builds, and the launch.

``train_scripts/<recipe>.sh`` is ``python -m openrlhf_cfpo.recipes RECIPE --prog SCRIPT ARGS...``, which lands in
:func:`main`: it reads the script's flags (a bad one is one line on stderr and exit status 2, before anything starts),
takes the run's settings from :mod:`openrlhf_cfpo.recipes` (the paper's tables), builds the framework command, prints
the disk estimate (stderr) and the command (stdout, shell-quoted on one line), runs the preflight
(``python -m openrlhf_cfpo.doctor``) unless ``--dry-run``, ``--skip-doctor`` or ``OPENRLHF_CFPO_SKIP_DOCTOR=1``,
writes ``recipe.json`` into the run folder (the reasoning recipes) and replaces itself with the command.

The settings the tables give come from ``plan`` (the recipe's derived settings); the ones written here are the
frameworks' plumbing, each with the reason beside it. Standard library only, as :mod:`openrlhf_cfpo.recipes`.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from types import SimpleNamespace

from openrlhf_cfpo import recipes
from openrlhf_cfpo.openrlhf.train_ppo_ray import CHECK_ONLY_ENV  # (a light import: nothing of OpenRLHF's loads)
from openrlhf_cfpo.reasoning.data import MATH_CONFIG, MATH_DATASET
from openrlhf_cfpo.recipes import FILLED, GPU_MEMORY_GIB, KEEP_CHECKPOINTS, NODE_NEEDS, BadFlag, number

# The checkout this module is imported from: the train scripts put it first on PYTHONPATH for this process only.
CHECKOUT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# --- the commands -----------------------------------------------------------------------------------------------------


@dataclass
class Launch:
    """What a run starts: ``commands`` in order, the last one replacing this process."""

    run_dir: str
    commands: list[list[str]]
    env: dict[str, str] = field(default_factory=dict)  # set for the preflight and the commands
    record: bool = True  # write recipe.json into run_dir


def _run_dir(args, plan: dict) -> str:
    return f"{args.output_dir.removesuffix('/')}/{plan['run_name']}"


def llama3_rlhf_launch(args, plan: dict, python: str) -> Launch:
    """Table 4 in OpenRLHF 0.11.2: one hybrid engine over all GPUs."""
    run_dir = _run_dir(args, plan)
    nodes, gpus = args.nodes, args.gpus_per_node
    cmd = [
        python, "-m", "openrlhf_cfpo.cli.train_ppo_ray",
        # models (OpenRLHF's released SFT policy and 700k-pair reward model)
        "--actor.model_name_or_path", "OpenRLHF/Llama-3-8b-sft-mixture",
        "--reward.model_name_or_path", "OpenRLHF/Llama-3-8b-rm-700k",
        # prompts
        "--data.prompt_dataset", "OpenRLHF/prompt-collection-v0.1",
        "--data.input_key", "context_messages",
        "--data.apply_chat_template",
        # lengths (Table 4): prompt + generated tokens (0.11.2 bounds the total, not the prompt alone), generated tokens
        "--data.max_len", plan["max_len"],
        "--rollout.max_new_tokens", plan["max_new_tokens"],
        # Table 4
        "--actor.policy_loss_type", args.loss,
        "--actor.eps_clip", plan["eps_clip"],
        "--algo.advantage.estimator", plan["advantage_estimator"],
        "--algo.kl.init_coef", plan["kl_coef"],
        "--actor.adam.lr", plan["actor_lr"],
        "--train.batch_size", plan["train_batch_size"],
        "--rollout.batch_size", plan["rollout_batch_size"],
        "--rollout.n_samples_per_prompt", plan["samples_per_prompt"],
        # placement: one hybrid engine over all GPUs (actor, ref, reward and vLLM colocated)
        "--actor.num_nodes", nodes, "--actor.num_gpus_per_node", gpus,
        "--ref.num_nodes", nodes, "--ref.num_gpus_per_node", gpus,
        "--reward.num_nodes", nodes, "--reward.num_gpus_per_node", gpus,
        "--vllm.num_engines", plan["vllm_engines"], "--vllm.tensor_parallel_size", args.vllm_tp,
        *LLAMA3_SWITCHES, "--vllm.gpu_memory_utilization", "0.5",
        "--ds.zero_stage", "3", "--ds.param_dtype", "bf16", "--ds.attn_implementation", "flash_attention_2",
        "--train.micro_batch_size", plan["train_micro_batch_size"], "--rollout.micro_batch_size", "8",
        # outputs
        "--train.seed", "42",
        # the final model in Hugging Face format (OpenRLHF writes it at the end whatever --ckpt.save_hf says; with it,
        # every checkpoint would also keep an HF copy that nothing rotates); the newest --keep-checkpoints DeepSpeed
        # states
        "--ckpt.output_dir", f"{run_dir}/final",
        "--ckpt.path", f"{run_dir}/checkpoints", "--ckpt.save_steps", "20", "--ckpt.max_num", plan["keep_checkpoints"],
        "--logger.tensorboard_dir", args.tensorboard_dir or f"{run_dir}/tensorboard",
    ]  # fmt: skip
    if args.wandb_key:
        cmd += ["--logger.wandb.key", args.wandb_key, "--logger.wandb.project", "openrlhf_cfpo"]
        cmd += ["--logger.wandb.run_name", plan["run_name"]]
    cmd = [arg for arg in cmd if arg not in args.left_out]
    return Launch(run_dir, [cmd + args.passthrough], record=False)


# OpenRLHF's on/off switches the Llama-3 recipe turns on; argparse cannot turn one off again, so --leave-out drops it
LLAMA3_SWITCHES = (
    "--train.colocate_all",
    "--vllm.enable_sleep",
    "--ds.enable_sleep",
    "--ds.packing_samples",
    "--actor.gradient_checkpointing_enable",
)


def qwen25_math_trl_launch(args, plan: dict, python: str) -> Launch:
    """Table 3 in TRL 1.16 under accelerate, one process per GPU of this node."""
    run_dir = _run_dir(args, plan)
    env, report_to = {}, "tensorboard"
    if args.wandb_key:
        env = {"WANDB_API_KEY": args.wandb_key, "WANDB_PROJECT": os.environ.get("WANDB_PROJECT") or "openrlhf_cfpo"}
        report_to = "wandb"
    cmd = [
        # not from the paper (it names no hardware): one process per GPU, DeepSpeed ZeRO-2 so that 7B fits
        python, "-m", "accelerate.commands.launch",
        "--num_processes", args.gpus_per_node, "--num_machines", "1", "--mixed_precision", "bf16",
        "--use_deepspeed", "--zero_stage", "2",
        "-m", "openrlhf_cfpo.reasoning.trl_grpo",
        # policy and data (section 4.1): Qwen2.5 base or Instruct; MATH train split, 7,500 problems, on the hub copy
        # open-r1 uses; chat prompts with the size's system prompt (appendix B.1); the solution is the label
        "--model_name_or_path", plan["model"], "--model_size", args.model_size, "--dtype", "bfloat16",
        "--dataset_name", MATH_DATASET, "--dataset_config", MATH_CONFIG, "--dataset_split", "train",
        "--max_prompt_length", plan["max_prompt_length"],  # Table 3 "Max Prompt Length": longer prompts are dropped
        # the objective: the policy loss is the one difference between the CFPO and the GRPO run
        "--policy_loss_type", args.loss,     # cfpo: eq. 7; ppo: the clipped surrogate, eq. 6
        "--epsilon", plan["clip_ratio"],     # Table 3 "Clip Ratio": PPO's eps, and CFPO's trust-region width
        "--loss_type", plan["loss_type"],    # the aggregation: Table 3 is silent, see recipes.FILLED
        "--scale_rewards", "group",          # eq. 9: (R - group mean) / group std
        "--beta", plan["kl_beta"],           # Table 3 "KL Penalty" 0 (section 4.1: beta = 0.0)
        "--num_iterations", plan["iterations"],  # section 4.1: reuse of each batch ("iterations")
        # an update: Table 3 "Batch Size" problems x "Group Size" completions in one optimizer step
        "--num_generations", plan["group_size"],
        "--per_device_train_batch_size", args.micro_batch_size,
        "--gradient_accumulation_steps", plan["accumulation"],
        # generation (Table 3)
        "--max_completion_length", plan["max_completion_length"], "--temperature", plan["temperature"],
        "--use_vllm", "true", "--vllm_mode", "colocate",
        # open-r1, the paper's framework, pins TRL 0.18, which has no vLLM importance-sampling correction; TRL 1.16
        # turns it on by default and it would reweight eq. 8: off.
        "--vllm_importance_sampling_correction", "false",
        # optimizer (Table 3): AdamW with its betas and eps, the learning rate of the model size, cosine schedule
        # with warm-up (transformers 5 reads warmup_steps < 1 as a ratio of the run)
        "--learning_rate", plan["learning_rate"], "--lr_scheduler_type", plan["lr_scheduler"],
        "--warmup_steps", plan["warmup_ratio"],
        "--adam_beta1", plan["adam_beta1"], "--adam_beta2", plan["adam_beta2"], "--adam_epsilon", plan["adam_epsilon"],
        # Not in Table 3: the reference recipe's (recipes.FILLED)
        "--num_train_epochs", plan["epochs"],
        # outputs
        "--seed", "42", "--output_dir", run_dir, "--run_name", plan["run_name"], "--logging_steps", "1",
        "--report_to", report_to,
        "--save_total_limit", plan["keep_checkpoints"],  # the newest checkpoints only (TRL keeps every one by default)
    ]  # fmt: skip
    return Launch(run_dir, [cmd + args.passthrough], env)


def qwen25_math_verl_launch(args, plan: dict, python: str) -> Launch:
    """Table 3 in verl 0.9.1: our data preparation, then verl's main_ppo with Hydra overrides."""
    run_dir = _run_dir(args, plan)
    data_dir = args.data_dir or f"{args.output_dir.removesuffix('/')}/data/math_{plan['tag']}"
    env, loggers = {}, "[console,tensorboard]"
    if args.wandb_key:
        env, loggers = {"WANDB_API_KEY": args.wandb_key}, "[console,tensorboard,wandb]"
    actor = "actor_rollout_ref.actor."
    prepare = [
        python, "-m", "openrlhf_cfpo.reasoning.verl_data", "--model", plan["model"], "--model-size", args.model_size,
        "--output-dir", data_dir, "--max-prompt-length", plan["max_prompt_length"],
    ]  # fmt: skip
    settings = {
        # data: MATH train (7,500 problems), the test split for validation curves (its first 500 problems)
        "data.train_files": f"{data_dir}/train.parquet",
        "data.val_files": f"{data_dir}/test.parquet",
        "data.val_max_samples": 500,
        "data.train_batch_size": plan["batch_size"],  # Table 3 "Batch Size"
        # Table 3 "Max Prompt Length": longer prompts are dropped (recipes.FILLED)
        "data.max_prompt_length": plan["max_prompt_length"],
        "data.filter_overlong_prompts": "true",
        "data.truncation": "error",
        "data.max_response_length": plan["max_completion_length"],  # Table 3 "Max Completion Length"
        "actor_rollout_ref.model.path": plan["model"],
        # verl 0.9.1 defaults to flash_attention_2 (verl/workers/config/model.py:185), which the verl-gpu extra
        # (verl's tested vllm stack) does not install; transformers' sdpa also runs verl's padding-free packed
        # micro-batches
        "+actor_rollout_ref.model.override_config.attn_implementation": "sdpa",
        # the objective: the policy loss is the one difference between the CFPO and the GRPO run
        # cfpo: eq. 7 (registered by our verl.plugins entry point); vanilla: eq. 6, with verl's dual clip
        # (clip_ratio_c 3)
        actor + "policy_loss.loss_mode": args.loss,
        actor + "clip_ratio_low": plan["clip_ratio"],  # Table 3 "Clip Ratio"
        actor + "clip_ratio_high": plan["clip_ratio"],
        actor + "loss_agg_mode": plan["loss_agg_mode"],  # Table 3 is silent: see recipes.FILLED
        "algorithm.adv_estimator": "grpo",  # eq. 9
        "algorithm.norm_adv_by_std_in_grpo": "true",
        # Table 3 "KL Penalty" 0: no KL in the reward, no KL loss (and so no reference model)
        "algorithm.use_kl_in_reward": "false",
        actor + "use_kl_loss": "false",
        actor + "kl_loss_coef": plan["kl_beta"],
        actor + "entropy_coeff": 0,
        # off-policy pressure (section 4.1): batch ratio = train_batch_size / ppo_mini_batch_size, iterations =
        # ppo_epochs
        actor + "ppo_mini_batch_size": plan["mini_batch_size"],
        actor + "ppo_epochs": plan["iterations"],
        # memory and throughput only (micro-batches packed to 16k tokens per GPU): no effect on the objective
        actor + "use_dynamic_bsz": "true",
        actor + "ppo_max_token_len_per_gpu": 16384,
        # optimizer (Table 3): AdamW with its betas and eps, the learning rate of the model size, cosine with
        # warm-up; weight decay 0 as TRL's default (verl's own default is 0.01), so both frameworks train the same
        # objective
        actor + "optim.lr": plan["learning_rate"],
        actor + "optim.lr_scheduler_type": plan["lr_scheduler"],
        actor + "optim.lr_warmup_steps_ratio": plan["warmup_ratio"],
        actor + "optim.betas": f"[{plan['adam_beta1']},{plan['adam_beta2']}]",
        actor + "optim.override_optimizer_config": f"{{eps:{plan['adam_epsilon']}}}",
        actor + "optim.weight_decay": "0.0",
        # rollouts (Table 3): "Group Size" per problem, "Temperature", vLLM
        "actor_rollout_ref.rollout.name": "vllm",
        "actor_rollout_ref.rollout.n": plan["group_size"],
        "actor_rollout_ref.rollout.temperature": plan["temperature"],
        "actor_rollout_ref.rollout.tensor_model_parallel_size": 1,  # ours, as the memory fraction
        "actor_rollout_ref.rollout.gpu_memory_utilization": "0.6",
        # completions end where the chat turn ends (<|im_end|>), not only at a base model's eos: vLLM reads its stop
        # ids from the generation config the data preparation writes (openrlhf_cfpo/reasoning/verl_data.py)
        "+actor_rollout_ref.rollout.engine_kwargs.vllm.generation_config": f"{data_dir}/generation_config",
        # reward: the reference recipe's accuracy reward (math-verify; the gold read from the solution)
        "reward.custom_reward_function.path": "pkg://openrlhf_cfpo.reasoning.rewards",
        "reward.custom_reward_function.name": "compute_score",
        # Not in Table 3: epochs as the reference recipe (recipes.FILLED); checkpoints, validation and logging are ours
        "trainer.total_epochs": plan["epochs"],
        "trainer.nnodes": args.nodes,
        "trainer.n_gpus_per_node": args.gpus_per_node,
        "trainer.project_name": "openrlhf_cfpo",
        "trainer.experiment_name": plan["run_name"],
        "trainer.logger": loggers,
        "trainer.default_local_dir": f"{run_dir}/checkpoints",
        "trainer.save_freq": 50,
        "trainer.test_freq": 10,
        "trainer.max_actor_ckpt_to_keep": plan["keep_checkpoints"],  # the newest only (verl keeps every one)
    }
    train = ["env", f"TENSORBOARD_DIR={run_dir}/tensorboard", python, "-m", "verl.trainer.main_ppo"]
    train += [f"{key}={value}" for key, value in settings.items()]
    return Launch(run_dir, [prepare, train + args.passthrough], env)


# --- the scripts' flags -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Script:
    """One train script's interface: its usage, its flags, where each default comes from, and its command."""

    usage: str
    values: dict[str, str]  # flag that takes a value: the setting it sets
    switches: dict[str, str]  # on/off flag: the setting it turns on
    defaults: dict[str, tuple[str | None, str]]  # setting: (environment variable or None, default)
    launch: Callable[..., Launch]
    # what an unknown flag's error adds ("TRL flags go after --"); None: unknown arguments go to the framework
    after_double_dash: str | None


COMMON_VALUES = {
    "--loss": "loss",  # set by cfpo_*.sh and its baseline, not by the user
    "--gpus-per-node": "gpus_per_node",
    "--output-dir": "output_dir",
    "--wandb-key": "wandb_key",
    "--keep-checkpoints": "keep_checkpoints",
}
COMMON_SWITCHES = {"--dry-run": "dry_run", "--skip-doctor": "skip_doctor"}
COMMON_DEFAULTS = {
    "loss": (None, ""),
    "output_dir": ("OUTPUT_DIR", "./runs"),
    "wandb_key": ("WANDB_API_KEY", ""),
    "keep_checkpoints": (None, str(KEEP_CHECKPOINTS)),
    "gpus_per_node": ("GPUS_PER_NODE", "8"),
    "nodes": ("NUM_NODES", "1"),
}
QWEN_DEFAULTS = {
    **COMMON_DEFAULTS,
    "model_size": (None, "3B"),  # section 4.1: "For some ablations, we also use the verl framework with Qwen2.5-3B"
    "iterations": (None, "1"),
    "loss_type": (None, ""),
    "loss_agg_mode": (None, ""),
}

LLAMA3_USAGE = """\
Llama-3-8B RLHF with OpenRLHF 0.11.2, paper Table 4 (arXiv 2601.22801, appendix B.2).
Called by cfpo_llama3.sh (--loss cfpo) and rloo_llama3.sh (--loss ppo): the two runs differ in
the policy loss only.

Usage: bash train_scripts/cfpo_llama3.sh [options] [ANY OPENRLHF FLAG ...]   (or rloo_llama3.sh)
  --kl0                  the KL-free variant (Table 4's KL coefficient 0 instead of 1e-4)
  --nodes N              nodes of the Ray cluster (default 1; NUM_NODES)
  --gpus-per-node N      GPUs per node (default 8; GPUS_PER_NODE); with the nodes, must divide the train batch
  --output-dir DIR       where the run folder goes (default ./runs; OUTPUT_DIR)
  --tensorboard-dir DIR  TensorBoard folder (default <run>/tensorboard; TENSORBOARD_DIR)
  --wandb-key KEY        log to Weights & Biases too (WANDB_API_KEY)
  --keep-checkpoints N   DeepSpeed checkpoints kept, the newest (default 2)
  --skip-doctor          start without the preflight (openrlhf-cfpo doctor; or OPENRLHF_CFPO_SKIP_DOCTOR=1)
  --leave-out FLAG       leave one of this script's on/off switches out of the command (repeatable): a later
                         argument cannot turn a switch off. The switches: --train.colocate_all --vllm.enable_sleep
                         --ds.enable_sleep --ds.packing_samples --actor.gradient_checkpointing_enable. E.g. on a
                         machine whose vLLM has no sleep mode (vLLM's CPU build): --leave-out --vllm.enable_sleep
  --dry-run              print the disk estimate and the OpenRLHF command, check it with OpenRLHF's
                         own parser, start nothing
  -h, --help             this text

Off-policy on purpose: each rollout is 512 prompts x 2 samples = 1024 samples, trained in
batches of 64, so every rollout gets 1024 / 64 = 16 optimizer steps. Only with several steps
per rollout do CFPO and clipping differ (with one step both are the plain policy gradient).

Flags after ours go to OpenRLHF unchanged and, coming last, override the recipe's settings
(argparse keeps the last value), e.g. --train.batch_size 128 or --vllm.gpu_memory_utilization 0.5.
Environment variables give the same settings: NUM_NODES, GPUS_PER_NODE, OUTPUT_DIR,
TENSORBOARD_DIR, WANDB_API_KEY, VLLM_TP (vLLM tensor parallel size), PYTHON.
"""

TRL_USAGE = """\
Qwen2.5 on MATH with TRL 1.16: the paper's TRL reasoning runs (arXiv 2601.22801, section 4.1; appendix B.1,
Table 3). Called by cfpo_qwen25_math_trl.sh (--loss cfpo) and grpo_qwen25_math_trl.sh (--loss ppo): the two runs
differ in the policy loss only.

Usage: bash train_scripts/cfpo_qwen25_math_trl.sh [options] [-- TRL FLAGS ...]   (or grpo_qwen25_math_trl.sh)
  --model-size 1.5B|3B|7B   Qwen2.5 size (default 3B): the model, its system prompt, its learning rate
  --instruct                the Instruct model instead of the base model
  --iterations N            optimizer steps per batch of completions (TRL's num_iterations; default 1)
  --gpus-per-node N         GPUs of this node, one process each (default 8; GPUS_PER_NODE)
  --micro-batch-size N      completions per GPU per forward pass (default 4); gradient accumulation makes up the rest
  --loss-type T             TRL's aggregation: bnpo (default, the reference recipe's), grpo (eq. 8), dr_grpo, dapo
  --output-dir DIR          where the run folder goes (default ./runs; OUTPUT_DIR)
  --wandb-key KEY           log to Weights & Biases instead of TensorBoard (WANDB_API_KEY)
  --keep-checkpoints N      checkpoints kept, the newest (default 2)
  --skip-doctor             start without the preflight (openrlhf-cfpo doctor; or OPENRLHF_CFPO_SKIP_DOCTOR=1)
  --dry-run                 print the disk estimate and the command, check it with TRL's own parser,
                            start nothing
  -h, --help                this text

One node; accelerate starts one process per GPU (DeepSpeed ZeRO-2), each with a colocated vLLM engine for the
rollouts. Every update is 128 MATH problems x 3 completions = 384 completions in one optimizer step
(--micro-batch-size per GPU, gradient accumulation making up the rest); --iterations N reuses each batch of
completions for N optimizer steps (TRL's num_iterations, the paper's "iterations": 1, 2, 4, 8, 16). With N = 1
CFPO and GRPO are the same (r = 1 at every step); the paper sees GRPO collapse from about N = 8 (section 5.1).

Flags after `--` go to the TRL entry point (openrlhf_cfpo.reasoning.trl_grpo: TRL's GRPOConfig plus
policy_loss_type, and its MathScriptArguments) unchanged and, coming last, override the recipe's settings; any
other unknown flag is an error. Environment: GPUS_PER_NODE, OUTPUT_DIR, WANDB_API_KEY, PYTHON.
"""

VERL_USAGE = """\
Qwen2.5 on MATH with verl 0.9.1: the paper's verl ablation (arXiv 2601.22801, section 4.1 "Off-Policy Mechanisms",
section 5.1, appendix D: cold-start Qwen2.5-3B, iterations up to 8 x batch ratios 1, 2, 4, 8). Called by
cfpo_qwen25_math_verl.sh (--loss cfpo) and grpo_qwen25_math_verl.sh (--loss vanilla, verl's clipped PPO loss):
the two runs differ in the policy loss only.

Usage: bash train_scripts/cfpo_qwen25_math_verl.sh [options] [-- HYDRA OVERRIDES ...]   (or grpo_qwen25_math_verl.sh)
  --iterations N            passes over each rollout batch (verl's ppo_epochs; default 1)
  --batch-ratio R           mini-batches per rollout batch: train_batch_size / ppo_mini_batch_size (default 1)
  --model-size 1.5B|3B|7B   Qwen2.5 size (default 3B, the paper's verl ablation)
  --instruct                the Instruct model instead of the base model
  --loss-agg-mode M         verl's aggregation: token-mean (default, the reference's), seq-mean-token-mean (eq. 8)
  --nodes N                 nodes of the Ray cluster (default 1; NUM_NODES)
  --gpus-per-node N         GPUs per node (default 8; GPUS_PER_NODE)
  --output-dir DIR          where the run folder goes (default ./runs; OUTPUT_DIR)
  --data-dir DIR            the prepared parquet files (default <output-dir>/data/math_<model>)
  --wandb-key KEY           log to Weights & Biases too (WANDB_API_KEY)
  --keep-checkpoints N      checkpoints kept, the newest (default 2)
  --skip-doctor             start without the preflight (openrlhf-cfpo doctor; or OPENRLHF_CFPO_SKIP_DOCTOR=1)
  --dry-run                 print the disk estimate and both commands, check verl's with verl's own
                            config (where verl is installed), start nothing
  -h, --help                this text

Two commands, both printed: our data preparation (MATH -> verl parquet with the paper's system prompt, prompts
over 512 tokens dropped; the model's generation config, stopping at the end of a chat turn), then verl's
main_ppo. Each update takes 128 problems x 3 rollouts; --batch-ratio R splits them into R mini-batches
(ppo_mini_batch_size = 128 / R problems), --iterations N passes over them N times (ppo_epochs): R x N optimizer
steps per rollout batch, all but the first off-policy.

Hydra overrides after `--` go to verl unchanged and, coming last, win over the recipe's settings; any other
unknown flag is an error. Environment: NUM_NODES, GPUS_PER_NODE, OUTPUT_DIR, WANDB_API_KEY, PYTHON.
"""

SCRIPTS = {
    "llama3-rlhf": Script(
        LLAMA3_USAGE,
        {
            **COMMON_VALUES,
            "--leave-out": "left_out",
            "--nodes": "nodes",
            "--tensorboard-dir": "tensorboard_dir",
        },
        {**COMMON_SWITCHES, "--kl0": "kl0"},
        {**COMMON_DEFAULTS, "tensorboard_dir": ("TENSORBOARD_DIR", ""), "vllm_tp": ("VLLM_TP", "1")},
        llama3_rlhf_launch,
        None,
    ),
    "qwen25-math-trl": Script(
        TRL_USAGE,
        {
            **COMMON_VALUES,
            "--model-size": "model_size",
            "--iterations": "iterations",
            "--micro-batch-size": "micro_batch_size",
            "--loss-type": "loss_type",
        },
        {**COMMON_SWITCHES, "--instruct": "instruct"},
        {**QWEN_DEFAULTS, "micro_batch_size": (None, "4")},
        qwen25_math_trl_launch,
        "TRL flags go after --",
    ),
    "qwen25-math-verl": Script(
        VERL_USAGE,
        {
            **COMMON_VALUES,
            "--model-size": "model_size",
            "--iterations": "iterations",
            "--batch-ratio": "batch_ratio",
            "--loss-agg-mode": "loss_agg_mode",
            "--nodes": "nodes",
            "--data-dir": "data_dir",
        },
        {**COMMON_SWITCHES, "--instruct": "instruct"},
        {**QWEN_DEFAULTS, "batch_ratio": (None, "1"), "data_dir": (None, "")},
        qwen25_math_verl_launch,
        "Hydra overrides go after --",
    ),
}


def parse(script: Script, argv: list[str], environ) -> SimpleNamespace | None:
    """The script's settings from ``argv`` and the environment, as typed (the recipe checks the values); None for
    ``--help``. A flag without a value or an unknown flag raises :class:`BadFlag` at once, as a shell loop would."""
    settings = {
        name: (environ.get(var) if var else None) or default for name, (var, default) in script.defaults.items()
    }
    settings.update({name: False for name in script.switches.values()}, passthrough=[], left_out=[])
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg in ("-h", "--help"):
            return None
        if arg in script.switches:
            settings[script.switches[arg]] = True
        elif arg in script.values:
            if i + 1 == len(argv) or not argv[i + 1]:
                raise BadFlag(f"{arg} needs a value")
            i += 1
            if script.values[arg] == "left_out":
                if argv[i] not in LLAMA3_SWITCHES:
                    switches = " ".join(LLAMA3_SWITCHES)
                    raise BadFlag(f"--leave-out takes one of this script's switches ({switches}), got '{argv[i]}'")
                settings["left_out"].append(argv[i])
            else:
                settings[script.values[arg]] = argv[i]
        elif script.after_double_dash is None:  # OpenRLHF's flags, `--` among them, go through in order
            settings["passthrough"].append(arg)
        elif arg == "--":
            settings["passthrough"] = argv[i + 1 :]
            break
        elif arg.startswith("--") and "_" in arg:
            dashed = arg.replace("_", "-")
            raise BadFlag(
                f"unknown flag '{arg}': this script spells its flags with dashes ({dashed}); {script.after_double_dash}"
            )
        else:
            raise BadFlag(f"unknown flag '{arg}' (see --help; {script.after_double_dash})")
        i += 1
    return SimpleNamespace(**settings)


# --- printing and starting --------------------------------------------------------------------------------------------

# The characters bash's `printf %q` escapes with a backslash: the printed commands read as they always have.
_SHELL_SPECIAL = frozenset(" \t\n!\"$&'()*,;<>?[\\]^`{|}")
_ANSI_C = {"\a": "\\a", "\b": "\\b", "\t": "\\t", "\n": "\\n", "\v": "\\v", "\f": "\\f", "\r": "\\r", "\x1b": "\\E"}


def shell_quote(arg: str) -> str:
    """``arg`` as bash's ``printf %q`` writes it (in a UTF-8 locale): a shell reads it back as the one word."""
    if not arg:
        return "''"
    control = [c for c in arg if ord(c) < 32 or ord(c) == 127]
    if control:  # bash's ANSI-C quoting, $'...'
        escapes = {c: _ANSI_C.get(c, f"\\{ord(c):03o}") for c in control} | {"\\": "\\\\", "'": "\\'"}
        return "$'" + "".join(escapes.get(c, c) for c in arg) + "'"
    out = []
    for i, c in enumerate(arg):
        special = c in _SHELL_SPECIAL or (c == "#" and i == 0) or (c == "~" and (i == 0 or arg[i - 1] in ":="))
        out.append("\\" + c if special else c)
    return "".join(out)


def run_record(recipe: str, plan: dict, passthrough: list) -> str:
    """What a run folder keeps of its recipe (``recipe.json``): the settings, where the gap-filling ones come from,
    and the flags given after ``--``."""
    return json.dumps(
        {
            "recipe": recipe,
            "settings": plan,
            "passthrough": passthrough,
            "filled_from_the_reference": {k: vars(v) for k, v in FILLED.items()},
        },
        indent=1,
    )


def _children_environment(extra: dict) -> dict:
    """This process's environment as the calling shell had it (the checkout the script put first on PYTHONPATH for
    this process taken off again), plus ``extra``."""
    env = dict(os.environ)
    path = env.get("PYTHONPATH", "").split(os.pathsep)
    if path[0] == CHECKOUT:
        if len(path) > 1:
            env["PYTHONPATH"] = os.pathsep.join(path[1:])
        else:
            del env["PYTHONPATH"]
    return {**env, **extra}


# --- --dry-run: the printed command through its framework's own parser ------------------------------------------------

# Set to 1: --dry-run prints the command without checking it (the tests that only compare printed commands).
SKIP_CHECK_ENV = "OPENRLHF_CFPO_SKIP_COMMAND_CHECK"
_VERL_CHECK = """
from hydra import compose, initialize_config_module
try:
    with initialize_config_module(config_module="verl.trainer.config", version_base=None):
        compose(config_name="ppo_trainer", overrides=sys.argv[1:])  # what verl.trainer.main_ppo's @hydra.main composes
except Exception as e:  # Hydra's override errors: the message, on one line
    sys.exit("verl: error: " + " ".join(str(e).split()))
"""
# The module a command runs -> (the framework, the package that must be importable, Python code that parses the
# arguments after the module as that module would and stops there, extra environment).
FRAMEWORK_CHECKS = {
    "openrlhf_cfpo.cli.train_ppo_ray": (
        "OpenRLHF",
        "openrlhf",
        "from openrlhf_cfpo.openrlhf.train_ppo_ray import main\nsys.exit(main(sys.argv[1:]))",
        {CHECK_ONLY_ENV: "1"},
    ),
    "openrlhf_cfpo.reasoning.trl_grpo": (
        "TRL",
        "trl",
        "from openrlhf_cfpo.reasoning.trl_grpo import check_flags\nsys.exit(check_flags(sys.argv[1:]))",
        {},
    ),
    "verl.trainer.main_ppo": ("verl", "verl", _VERL_CHECK, {}),
}
NOT_INSTALLED = 3  # the check's exit status when the framework is not importable


def check_command(command: list[str], python: str, env: dict) -> tuple[bool, str]:
    """(passed, one line): ``command``'s arguments parsed by its framework's own parser, in ``python``'s environment;
    a framework that is not installed there is said, not guessed at."""
    module = next((m for m in FRAMEWORK_CHECKS if m in command), None)
    if module is None:
        return True, "not checked: no framework parser known for this command"
    framework, package, code, extra = FRAMEWORK_CHECKS[module]
    preamble = (
        f"import importlib.util, sys\nif importlib.util.find_spec({package!r}) is None: sys.exit({NOT_INSTALLED})\n"
    )
    args = command[command.index(module) + 1 :]
    proc = subprocess.run(
        [python, "-c", preamble + code, *args], env={**env, **extra}, capture_output=True, text=True, timeout=600
    )
    if proc.returncode == 0:
        return True, f"the command passed {framework}'s own parser and checks"
    if proc.returncode == NOT_INSTALLED:
        return True, f"the command was not checked: {package} is not installed here ({framework} checks it at start)"
    said = [line for line in proc.stderr.splitlines() if line.strip()] or [f"exit status {proc.returncode}"]
    return False, f"the command does not pass {framework}'s own parser: {said[-1].strip()}"


def _exit_status(returncode: int) -> int:
    return returncode if returncode >= 0 else 128 - returncode  # killed by a signal: as a shell reports it


def main(argv: list | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if len(argv) < 3 or argv[0] not in SCRIPTS or argv[1] != "--prog":
        print(
            f"usage: python -m openrlhf_cfpo.recipes {{{','.join(SCRIPTS)}}} --prog SCRIPT [FLAGS...]", file=sys.stderr
        )
        return 2
    recipe, prog, script = argv[0], argv[2], SCRIPTS[argv[0]]
    try:
        args = parse(script, argv[3:], os.environ)
        if args is None:
            sys.stdout.write(script.usage)
            return 0
        plan = recipes.RECIPES[recipe](args)
    except BadFlag as error:
        print(f"{prog}: {error}", file=sys.stderr)
        return 2
    plan.update(recipe=recipe, gpu_memory_gib=number(GPU_MEMORY_GIB), needs=",".join(NODE_NEEDS[recipe].packages))
    python = os.environ.get("PYTHON") or "python3"
    launch = script.launch(args, {k: str(v) for k, v in plan.items()}, python)

    print(f"{prog}: disk: {plan['disk_estimate']}", file=sys.stderr)
    for command in launch.commands:
        print(" ".join(shell_quote(arg) for arg in command))
    sys.stdout.flush()
    if args.dry_run:
        if os.environ.get(SKIP_CHECK_ENV) == "1":
            return 0
        passed, line = check_command(launch.commands[-1], python, _children_environment(launch.env))
        print(f"{prog}: {line}", file=sys.stderr)
        return 0 if passed else 2
    env = _children_environment(launch.env)
    if not args.skip_doctor and os.environ.get("OPENRLHF_CFPO_SKIP_DOCTOR", "0") != "1":
        # the preflight (openrlhf-cfpo doctor: driver, GPUs and their memory, packages, NCCL, free disk for the
        # checkpoints kept) for this plan; a problem stops the run with the doctor's status
        doctor = [python, "-m", "openrlhf_cfpo.doctor", "--recipe", recipe]
        doctor += ["--nodes", str(plan.get("nodes", args.nodes)), "--gpus-per-node", args.gpus_per_node]
        doctor += ["--gpu-memory-gib", plan["gpu_memory_gib"], "--disk-gib", plan["disk_gib"]]
        doctor += ["--output-dir", launch.run_dir, "--needs", plan["needs"]]
        status = subprocess.run(doctor, env=env).returncode
        if status:
            return _exit_status(status)
    os.makedirs(launch.run_dir, exist_ok=True)
    if launch.record:  # the settings this run was started with, and their sources
        with open(os.path.join(launch.run_dir, "recipe.json"), "w") as f:
            f.write(run_record(recipe, plan, args.passthrough) + "\n")
    *first, last = launch.commands
    for command in first:
        status = subprocess.run(command, env=env).returncode
        if status:
            return _exit_status(status)
    # Python ignores SIGPIPE and an exec keeps ignored signals: the run gets the defaults a shell would give it
    for name in ("SIGPIPE", "SIGXFSZ"):
        if hasattr(signal, name):
            signal.signal(getattr(signal, name), signal.SIG_DFL)
    try:
        os.execvpe(last[0], last, env)
    except OSError as error:
        print(f"{prog}: {last[0]}: {error.strerror}", file=sys.stderr)
        return 127


if __name__ == "__main__":
    sys.exit(main())
