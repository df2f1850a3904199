#!/usr/bin/env bash
# Qwen2.5 on MATH with TRL 1.16: the paper's TRL reasoning runs (arXiv 2601.22801, section 4.1; appendix B.1,
# Table 3). Called by cfpo_qwen25_math_trl.sh (--loss cfpo) and grpo_qwen25_math_trl.sh (--loss ppo): the two runs
# differ in the policy loss only.
#
# Usage: bash train_scripts/cfpo_qwen25_math_trl.sh [options] [-- TRL FLAGS ...]   (or grpo_qwen25_math_trl.sh)
#   --model-size 1.5B|3B|7B   Qwen2.5 size (default 3B): the model, its system prompt, its learning rate
#   --instruct                the Instruct model instead of the base model
#   --iterations N            optimizer steps per batch of completions (TRL's num_iterations; default 1)
#   --gpus-per-node N         GPUs of this node, one process each (default 8; GPUS_PER_NODE)
#   --micro-batch-size N      completions per GPU per forward pass (default 4); gradient accumulation makes up the rest
#   --loss-type T             TRL's aggregation: bnpo (default, the reference recipe's), grpo (eq. 8), dr_grpo, dapo
#   --output-dir DIR          where the run folder goes (default ./runs; OUTPUT_DIR)
#   --wandb-key KEY           log to Weights & Biases instead of TensorBoard (WANDB_API_KEY)
#   --keep-checkpoints N      checkpoints kept, the newest (default 2)
#   --skip-doctor             start without the preflight (openrlhf-cfpo doctor; or OPENRLHF_CFPO_SKIP_DOCTOR=1)
#   --dry-run                 print the disk estimate and the command, start nothing
#   -h, --help                this text
#
# One node; accelerate starts one process per GPU (DeepSpeed ZeRO-2), each with a colocated vLLM engine for the
# rollouts. Every update is 128 MATH problems x 3 completions = 384 completions in one optimizer step
# (--micro-batch-size per GPU, gradient accumulation making up the rest); --iterations N reuses each batch of
# completions for N optimizer steps (TRL's num_iterations, the paper's "iterations": 1, 2, 4, 8, 16). With N = 1
# CFPO and GRPO are the same (r = 1 at every step); the paper sees GRPO collapse from about N = 8 (section 5.1).
#
# Flags after `--` go to the TRL entry point (openrlhf_cfpo.reasoning.trl_grpo: TRL's GRPOConfig plus
# policy_loss_type, and its MathScriptArguments) unchanged and, coming last, override the defaults below; any
# other unknown flag is an error. Environment: GPUS_PER_NODE, OUTPUT_DIR, WANDB_API_KEY, PYTHON.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

loss=""
model_size="3B"
instruct=""
iterations=1
loss_type=""
dry_run=0
skip_doctor=0
keep_checkpoints=""
gpus="${GPUS_PER_NODE:-8}"
micro_batch=4
output_dir="${OUTPUT_DIR:-./runs}"
wandb_key="${WANDB_API_KEY:-}"
python="${PYTHON:-python3}"
passthrough=()

while [ "$#" -gt 0 ]; do
  case "$1" in
    --loss) need_value "$@"; loss="$2"; shift 2 ;;
    --model-size) need_value "$@"; model_size="$2"; shift 2 ;;
    --instruct) instruct=1; shift ;;
    --iterations) need_value "$@"; iterations="$2"; shift 2 ;;
    --gpus-per-node) need_value "$@"; gpus="$2"; shift 2 ;;
    --micro-batch-size) need_value "$@"; micro_batch="$2"; shift 2 ;;
    --loss-type) need_value "$@"; loss_type="$2"; shift 2 ;;
    --output-dir) need_value "$@"; output_dir="$2"; shift 2 ;;
    --wandb-key) need_value "$@"; wandb_key="$2"; shift 2 ;;
    --dry-run) dry_run=1; shift ;;
    --skip-doctor) skip_doctor=1; shift ;;
    --keep-checkpoints) need_value "$@"; keep_checkpoints="$2"; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    --) shift; passthrough=("$@"); break ;;
    *) unknown_flag "$1" "TRL flags go after --" ;;
  esac
done

# Table 3 and the sizes derived from it (openrlhf_cfpo/recipes.py); checks the flags above
settings="$(recipe_settings qwen25-math-trl --loss "$loss" --model-size "$model_size" ${instruct:+--instruct} \
  --iterations "$iterations" --gpus-per-node "$gpus" --micro-batch-size "$micro_batch" \
  ${loss_type:+--loss-type "$loss_type"} ${keep_checkpoints:+--keep-checkpoints "$keep_checkpoints"} \
  -- "${passthrough[@]+"${passthrough[@]}"}")" || exit $?
eval "$settings"

run_dir="${output_dir%/}/${run_name}"
report_to="tensorboard"
if [ -n "$wandb_key" ]; then
  export WANDB_API_KEY="$wandb_key" WANDB_PROJECT="${WANDB_PROJECT:-openrlhf_cfpo}"
  report_to="wandb"
fi

cmd=(
  # not from the paper (it names no hardware): one process per GPU, DeepSpeed ZeRO-2 so that 7B fits
  "$python" -m accelerate.commands.launch
  --num_processes "$gpus" --num_machines 1 --mixed_precision bf16 --use_deepspeed --zero_stage 2
  -m openrlhf_cfpo.reasoning.trl_grpo
  # policy and data (section 4.1): Qwen2.5 base or Instruct; MATH train split, 7,500 problems, on the hub copy
  # open-r1 uses; chat prompts with the size's system prompt (appendix B.1); the solution is the label
  --model_name_or_path "$model" --model_size "$model_size" --dtype bfloat16
  --dataset_name DigitalLearningGmbH/MATH-lighteval --dataset_config default --dataset_split train
  --max_prompt_length "$max_prompt_length"  # Table 3 "Max Prompt Length": longer prompts are dropped, not cut
  # the objective: the policy loss is the one difference between the CFPO and the GRPO run
  --policy_loss_type "$loss"                # cfpo: eq. 7; ppo: the clipped surrogate, eq. 6
  --epsilon "$clip_ratio"                   # Table 3 "Clip Ratio": PPO's eps, and CFPO's trust-region width
  --loss_type "$loss_type"                  # the aggregation: Table 3 is silent, see openrlhf_cfpo/recipes.py FILLED
  --scale_rewards group                     # eq. 9: (R - group mean) / group std
  --beta "$kl_beta"                         # Table 3 "KL Penalty" 0 (section 4.1: beta = 0.0)
  --num_iterations "$iterations"            # section 4.1: reuse of each batch ("iterations")
  # an update: Table 3 "Batch Size" problems x "Group Size" completions in one optimizer step
  --num_generations "$group_size"
  --per_device_train_batch_size "$micro_batch" --gradient_accumulation_steps "$accumulation"
  # generation (Table 3)
  --max_completion_length "$max_completion_length" --temperature "$temperature"
  --use_vllm true --vllm_mode colocate
  # open-r1, the paper's framework, pins TRL 0.18, which has no vLLM importance-sampling correction; TRL 1.16
  # turns it on by default and it would reweight eq. 8: off.
  --vllm_importance_sampling_correction false
  # optimizer (Table 3): AdamW with its betas and eps, the learning rate of the model size, cosine schedule with
  # warm-up (transformers 5 reads warmup_steps < 1 as a ratio of the run)
  --learning_rate "$learning_rate" --lr_scheduler_type "$lr_scheduler" --warmup_steps "$warmup_ratio"
  --adam_beta1 "$adam_beta1" --adam_beta2 "$adam_beta2" --adam_epsilon "$adam_epsilon"
  # Not in Table 3: the reference recipe's (openrlhf_cfpo/recipes.py FILLED)
  --num_train_epochs "$epochs"
  # outputs
  --seed 42 --output_dir "$run_dir" --run_name "$run_name" --logging_steps 1 --report_to "$report_to"
  --save_total_limit "$keep_checkpoints"  # the newest checkpoints only (TRL keeps every one by default)
)
cmd+=("${passthrough[@]+"${passthrough[@]}"}")

echo "$(basename "$0"): disk: $disk_estimate" >&2
print_command "${cmd[@]}"
if [ "$dry_run" = 1 ]; then
  exit 0
fi
run_doctor "$run_dir"
mkdir -p "$run_dir"
printf '%s\n' "$record" > "$run_dir/recipe.json"  # the settings this run was started with, and their sources
exec "${cmd[@]}"
