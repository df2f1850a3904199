#!/usr/bin/env bash
# Qwen2.5 on MATH with TRL 1.16: the paper's TRL reasoning runs (arXiv 2601.22801, section 4.1; appendix B.1,
# Table 3). Called by cfpo_qwen25_math_trl.sh (--loss cfpo) and grpo_qwen25_math_trl.sh (--loss ppo): the two runs
# differ in the policy loss only.
#
#   bash train_scripts/cfpo_qwen25_math_trl.sh [--model-size 1.5B|3B|7B] [--instruct] [--iterations N]
#        [--gpus-per-node N] [--micro-batch-size N] [--output-dir DIR] [--wandb-key KEY] [--dry-run] [-- TRL FLAGS ...]
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
source "$(dirname "${BASH_SOURCE[0]}")/qwen25_math_common.sh"

loss=""
model_size="3B"
instruct=""
iterations=1
dry_run=0
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
    --output-dir) need_value "$@"; output_dir="$2"; shift 2 ;;
    --wandb-key) need_value "$@"; wandb_key="$2"; shift 2 ;;
    --dry-run) dry_run=1; shift ;;
    -h|--help) sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    --) shift; passthrough=("$@"); break ;;
    *) die "unknown flag '$1' (see --help; TRL flags go after --)" ;;
  esac
done

case "$loss" in
  cfpo) label="cfpo" ;;
  ppo) label="grpo" ;;  # group-relative advantages with PPO's clipped surrogate: the paper's GRPO baseline
  *) die "--loss must be cfpo or ppo (got '${loss}'); use cfpo_qwen25_math_trl.sh or grpo_qwen25_math_trl.sh" ;;
esac
check_model_size "$model_size"
check_positive_int --iterations "$iterations"
check_positive_int --gpus-per-node "$gpus"
check_positive_int --micro-batch-size "$micro_batch"

# Section 4.1: "Each training update processes 128 problems, and we generate 3 candidate solutions per problem".
prompts_per_update=128
group_size=3
completions_per_update=$(( prompts_per_update * group_size ))
(( completions_per_update % (gpus * micro_batch) == 0 )) \
  || die "--gpus-per-node $gpus x --micro-batch-size $micro_batch must divide the" \
         "$completions_per_update completions of an update"
accumulation=$(( completions_per_update / (gpus * micro_batch) ))

model="Qwen/Qwen2.5-${model_size}${instruct:+-Instruct}"
run_name="${label}_$(model_tag "$model_size" "$instruct")_trl_it${iterations}"
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
  --max_prompt_length 512                   # Table 3 "Max Prompt Length": longer prompts are dropped, not cut
  # the objective: the policy loss is the one difference between the CFPO and the GRPO run
  --policy_loss_type "$loss"                # cfpo: eq. 7; ppo: the clipped surrogate, eq. 6
  --epsilon 0.2                             # Table 3 "Clip Ratio": PPO's eps, and CFPO's trust-region width
  --loss_type grpo                          # eq. 8 / eq. 3: token mean per completion, then mean over completions
  --scale_rewards group                     # eq. 9: (R - group mean) / group std
  --beta 0.0                                # Table 3 "KL Penalty" 0 (section 4.1: beta = 0.0)
  --num_iterations "$iterations"            # section 4.1: reuse of each batch ("iterations")
  # an update: 128 problems (Table 3 "Batch Size") x 3 completions (Table 3 "Group Size") in one optimizer step
  --num_generations "$group_size"
  --per_device_train_batch_size "$micro_batch" --gradient_accumulation_steps "$accumulation"
  # generation (Table 3)
  --max_completion_length 3072 --temperature 0.9
  --use_vllm true --vllm_mode colocate
  # open-r1, the paper's framework, pins TRL 0.18, which has no vLLM importance-sampling correction; TRL 1.16
  # turns it on by default and it would reweight eq. 8: off.
  --vllm_importance_sampling_correction false
  # optimizer (Table 3): AdamW (0.9, 0.999, 1e-8); lr 3e-6 (1.5B, 3B) or 1e-6 (7B); cosine schedule with 10%
  # warm-up (transformers 5 reads warmup_steps < 1 as a ratio of the run)
  --learning_rate "$(learning_rate_for "$model_size")" --lr_scheduler_type cosine --warmup_steps 0.1
  --adam_beta1 0.9 --adam_beta2 0.999 --adam_epsilon 1e-8
  # Not in the paper ("unspecified fields inherit the TRL defaults"): written out so both frameworks agree.
  --num_train_epochs 3
  # outputs
  --seed 42 --output_dir "$run_dir" --run_name "$run_name" --logging_steps 1 --report_to "$report_to"
)
cmd+=("${passthrough[@]+"${passthrough[@]}"}")

print_command "${cmd[@]}"
if [ "$dry_run" = 1 ]; then
  exit 0
fi
mkdir -p "$run_dir"
exec "${cmd[@]}"
