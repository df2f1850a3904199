#!/usr/bin/env bash
# Qwen2.5 on MATH with verl 0.9.1: the paper's verl ablation (arXiv 2601.22801, section 4.1 "Off-Policy Mechanisms",
# section 5.1, appendix D: cold-start Qwen2.5-3B, iterations up to 8 x batch ratios 1, 2, 4, 8). Called by
# cfpo_qwen25_math_verl.sh (--loss cfpo) and grpo_qwen25_math_verl.sh (--loss vanilla, verl's clipped PPO loss):
# the two runs differ in the policy loss only.
#
#   bash train_scripts/cfpo_qwen25_math_verl.sh [--iterations N] [--batch-ratio R] [--model-size 1.5B|3B|7B]
#        [--instruct] [--nodes N] [--gpus-per-node N] [--output-dir DIR] [--data-dir DIR] [--wandb-key KEY]
#        [--dry-run] [-- HYDRA OVERRIDES ...]
#
# Two commands, both printed: our data preparation (MATH -> verl parquet with the paper's system prompt, prompts
# over 512 tokens dropped), then verl's main_ppo. Each update takes 128 problems x 3 rollouts; --batch-ratio R
# splits them into R mini-batches (ppo_mini_batch_size = 128 / R problems), --iterations N passes over them N
# times (ppo_epochs): R x N optimizer steps per rollout batch, all but the first off-policy.
#
# Hydra overrides after `--` go to verl unchanged and, coming last, win over the defaults below; any other
# unknown flag is an error. Environment: NUM_NODES, GPUS_PER_NODE, OUTPUT_DIR, WANDB_API_KEY, PYTHON.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/qwen25_math_common.sh"

loss=""
model_size="3B"  # section 4.1: "For some ablations, we also use the verl framework with Qwen2.5-3B" (base: cold start)
instruct=""
iterations=1
batch_ratio=1
dry_run=0
nodes="${NUM_NODES:-1}"
gpus="${GPUS_PER_NODE:-8}"
output_dir="${OUTPUT_DIR:-./runs}"
data_dir=""
wandb_key="${WANDB_API_KEY:-}"
python="${PYTHON:-python3}"
passthrough=()

while [ "$#" -gt 0 ]; do
  case "$1" in
    --loss) need_value "$@"; loss="$2"; shift 2 ;;
    --model-size) need_value "$@"; model_size="$2"; shift 2 ;;
    --instruct) instruct=1; shift ;;
    --iterations) need_value "$@"; iterations="$2"; shift 2 ;;
    --batch-ratio) need_value "$@"; batch_ratio="$2"; shift 2 ;;
    --nodes) need_value "$@"; nodes="$2"; shift 2 ;;
    --gpus-per-node) need_value "$@"; gpus="$2"; shift 2 ;;
    --output-dir) need_value "$@"; output_dir="$2"; shift 2 ;;
    --data-dir) need_value "$@"; data_dir="$2"; shift 2 ;;
    --wandb-key) need_value "$@"; wandb_key="$2"; shift 2 ;;
    --dry-run) dry_run=1; shift ;;
    -h|--help) sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    --) shift; passthrough=("$@"); break ;;
    *) die "unknown flag '$1' (see --help; Hydra overrides go after --)" ;;
  esac
done

case "$loss" in
  cfpo) label="cfpo" ;;
  vanilla) label="grpo" ;;  # verl's clipped PPO surrogate with GRPO advantages: the paper's GRPO baseline
  *) die "--loss must be cfpo or vanilla (got '${loss}'); use cfpo_qwen25_math_verl.sh or grpo_qwen25_math_verl.sh" ;;
esac
check_model_size "$model_size"
check_positive_int --iterations "$iterations"
check_positive_int --batch-ratio "$batch_ratio"
check_positive_int --nodes "$nodes"
check_positive_int --gpus-per-node "$gpus"

# Section 4.1 / Table 3: 128 problems per update, 3 completions each.
prompts_per_update=128
group_size=3
(( prompts_per_update % batch_ratio == 0 )) \
  || die "--batch-ratio $batch_ratio must divide the $prompts_per_update problems of an update (1, 2, 4, 8, ...)"
mini_batch=$(( prompts_per_update / batch_ratio ))
(( (mini_batch * group_size) % (nodes * gpus) == 0 )) \
  || die "--batch-ratio $batch_ratio gives mini-batches of $(( mini_batch * group_size )) rollouts," \
         "not divisible by the $(( nodes * gpus )) GPUs"

model="Qwen/Qwen2.5-${model_size}${instruct:+-Instruct}"
tag="$(model_tag "$model_size" "$instruct")"
run_name="${label}_${tag}_verl_it${iterations}_br${batch_ratio}"
run_dir="${output_dir%/}/${run_name}"
data_dir="${data_dir:-${output_dir%/}/data/math_${tag}}"
loggers="[console,tensorboard]"
if [ -n "$wandb_key" ]; then
  export WANDB_API_KEY="$wandb_key"
  loggers="[console,tensorboard,wandb]"
fi

prepare=(
  "$python" -m openrlhf_cfpo.reasoning.verl_data
  --model "$model" --model-size "$model_size" --output-dir "$data_dir" --max-prompt-length 512
)
train=(
  env TENSORBOARD_DIR="${run_dir}/tensorboard" "$python" -m verl.trainer.main_ppo
  # data: MATH train (7,500 problems), the test split for validation curves (its first 500 problems)
  data.train_files="${data_dir}/train.parquet" data.val_files="${data_dir}/test.parquet" data.val_max_samples=500
  data.train_batch_size="$prompts_per_update"          # Table 3 "Batch Size" 128
  data.max_prompt_length=512 data.filter_overlong_prompts=true data.truncation=error  # Table 3 "Max Prompt Length"
  data.max_response_length=3072                          # Table 3 "Max Completion Length"
  actor_rollout_ref.model.path="$model"
  # the objective: the policy loss is the one difference between the CFPO and the GRPO run
  # cfpo: eq. 7 (registered by our verl.plugins entry point); vanilla: eq. 6, with verl's dual clip (clip_ratio_c 3)
  actor_rollout_ref.actor.policy_loss.loss_mode="$loss"
  actor_rollout_ref.actor.clip_ratio_low=0.2 actor_rollout_ref.actor.clip_ratio_high=0.2  # Table 3 "Clip Ratio"
  actor_rollout_ref.actor.loss_agg_mode=seq-mean-token-mean  # eq. 8: token mean per completion, then mean
  algorithm.adv_estimator=grpo algorithm.norm_adv_by_std_in_grpo=true  # eq. 9
  # Table 3 "KL Penalty" 0: no KL in the reward, no KL loss (and so no reference model)
  algorithm.use_kl_in_reward=false actor_rollout_ref.actor.use_kl_loss=false actor_rollout_ref.actor.kl_loss_coef=0.0
  actor_rollout_ref.actor.entropy_coeff=0
  # off-policy pressure (section 4.1): batch ratio = train_batch_size / ppo_mini_batch_size, iterations = ppo_epochs
  actor_rollout_ref.actor.ppo_mini_batch_size="$mini_batch"
  actor_rollout_ref.actor.ppo_epochs="$iterations"
  # memory and throughput only (micro-batches packed to 16k tokens per GPU): no effect on the objective
  actor_rollout_ref.actor.use_dynamic_bsz=true actor_rollout_ref.actor.ppo_max_token_len_per_gpu=16384
  # optimizer (Table 3): AdamW (0.9, 0.999, 1e-8), lr 3e-6 (1e-6 for 7B), cosine with 10% warm-up; weight decay 0
  # as TRL's default (verl's own default is 0.01), so both frameworks train the same objective
  actor_rollout_ref.actor.optim.lr="$(learning_rate_for "$model_size")"
  actor_rollout_ref.actor.optim.lr_scheduler_type=cosine actor_rollout_ref.actor.optim.lr_warmup_steps_ratio=0.1
  actor_rollout_ref.actor.optim.betas=[0.9,0.999] actor_rollout_ref.actor.optim.override_optimizer_config={eps:1e-8}
  actor_rollout_ref.actor.optim.weight_decay=0.0
  # rollouts (Table 3): 3 per problem ("Group Size"), temperature 0.9, vLLM
  actor_rollout_ref.rollout.name=vllm actor_rollout_ref.rollout.n="$group_size"
  actor_rollout_ref.rollout.temperature=0.9
  actor_rollout_ref.rollout.tensor_model_parallel_size=1 actor_rollout_ref.rollout.gpu_memory_utilization=0.6  # ours
  # reward: the reference recipe's accuracy reward (math-verify; the gold read from the solution)
  reward.custom_reward_function.path=pkg://openrlhf_cfpo.reasoning.rewards
  reward.custom_reward_function.name=compute_score
  # Not in the paper: 3 epochs, as the TRL runs (TRL's default); checkpoints, validation and logging are ours
  trainer.total_epochs=3
  trainer.nnodes="$nodes" trainer.n_gpus_per_node="$gpus"
  trainer.project_name=openrlhf_cfpo trainer.experiment_name="$run_name" trainer.logger="$loggers"
  trainer.default_local_dir="${run_dir}/checkpoints" trainer.save_freq=50 trainer.test_freq=10
)
train+=("${passthrough[@]+"${passthrough[@]}"}")

print_command "${prepare[@]}"
print_command "${train[@]}"
if [ "$dry_run" = 1 ]; then
  exit 0
fi
mkdir -p "$run_dir"
"${prepare[@]}"
exec "${train[@]}"
