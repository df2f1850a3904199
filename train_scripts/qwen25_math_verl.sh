#!/usr/bin/env bash
# Qwen2.5 on MATH with verl 0.9.1: the paper's verl ablation (arXiv 2601.22801, section 4.1 "Off-Policy Mechanisms",
# section 5.1, appendix D: cold-start Qwen2.5-3B, iterations up to 8 x batch ratios 1, 2, 4, 8). Called by
# cfpo_qwen25_math_verl.sh (--loss cfpo) and grpo_qwen25_math_verl.sh (--loss vanilla, verl's clipped PPO loss):
# the two runs differ in the policy loss only.
#
# Usage: bash train_scripts/cfpo_qwen25_math_verl.sh [options] [-- HYDRA OVERRIDES ...]   (or grpo_qwen25_math_verl.sh)
#   --iterations N            passes over each rollout batch (verl's ppo_epochs; default 1)
#   --batch-ratio R           mini-batches per rollout batch: train_batch_size / ppo_mini_batch_size (default 1)
#   --model-size 1.5B|3B|7B   Qwen2.5 size (default 3B, the paper's verl ablation)
#   --instruct                the Instruct model instead of the base model
#   --loss-agg-mode M         verl's aggregation: token-mean (default, the reference's), seq-mean-token-mean (eq. 8)
#   --nodes N                 nodes of the Ray cluster (default 1; NUM_NODES)
#   --gpus-per-node N         GPUs per node (default 8; GPUS_PER_NODE)
#   --output-dir DIR          where the run folder goes (default ./runs; OUTPUT_DIR)
#   --data-dir DIR            the prepared parquet files (default <output-dir>/data/math_<model>)
#   --wandb-key KEY           log to Weights & Biases too (WANDB_API_KEY)
#   --keep-checkpoints N      checkpoints kept, the newest (default 2)
#   --skip-doctor             start without the preflight (openrlhf-cfpo doctor; or OPENRLHF_CFPO_SKIP_DOCTOR=1)
#   --dry-run                 print the disk estimate and both commands, start nothing
#   -h, --help                this text
#
# Two commands, both printed: our data preparation (MATH -> verl parquet with the paper's system prompt, prompts
# over 512 tokens dropped; the model's generation config, stopping at the end of a chat turn), then verl's
# main_ppo. Each update takes 128 problems x 3 rollouts; --batch-ratio R splits them into R mini-batches
# (ppo_mini_batch_size = 128 / R problems), --iterations N passes over them N times (ppo_epochs): R x N optimizer
# steps per rollout batch, all but the first off-policy.
#
# Hydra overrides after `--` go to verl unchanged and, coming last, win over the defaults below; any other
# unknown flag is an error. Environment: NUM_NODES, GPUS_PER_NODE, OUTPUT_DIR, WANDB_API_KEY, PYTHON.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

loss=""
model_size="3B"  # section 4.1: "For some ablations, we also use the verl framework with Qwen2.5-3B" (base: cold start)
instruct=""
iterations=1
batch_ratio=1
loss_agg_mode=""
dry_run=0
skip_doctor=0
keep_checkpoints=""
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
    --loss-agg-mode) need_value "$@"; loss_agg_mode="$2"; shift 2 ;;
    --nodes) need_value "$@"; nodes="$2"; shift 2 ;;
    --gpus-per-node) need_value "$@"; gpus="$2"; shift 2 ;;
    --output-dir) need_value "$@"; output_dir="$2"; shift 2 ;;
    --data-dir) need_value "$@"; data_dir="$2"; shift 2 ;;
    --wandb-key) need_value "$@"; wandb_key="$2"; shift 2 ;;
    --dry-run) dry_run=1; shift ;;
    --skip-doctor) skip_doctor=1; shift ;;
    --keep-checkpoints) need_value "$@"; keep_checkpoints="$2"; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    --) shift; passthrough=("$@"); break ;;
    *) unknown_flag "$1" "Hydra overrides go after --" ;;
  esac
done

# Table 3 and the sizes derived from it (openrlhf_cfpo/recipes.py); checks the flags above
settings="$(recipe_settings qwen25-math-verl --loss "$loss" --model-size "$model_size" ${instruct:+--instruct} \
  --iterations "$iterations" --batch-ratio "$batch_ratio" --nodes "$nodes" --gpus-per-node "$gpus" \
  ${loss_agg_mode:+--loss-agg-mode "$loss_agg_mode"} ${keep_checkpoints:+--keep-checkpoints "$keep_checkpoints"} \
  -- "${passthrough[@]+"${passthrough[@]}"}")" || exit $?
eval "$settings"

run_dir="${output_dir%/}/${run_name}"
data_dir="${data_dir:-${output_dir%/}/data/math_${tag}}"
loggers="[console,tensorboard]"
if [ -n "$wandb_key" ]; then
  export WANDB_API_KEY="$wandb_key"
  loggers="[console,tensorboard,wandb]"
fi

prepare=(
  "$python" -m openrlhf_cfpo.reasoning.verl_data
  --model "$model" --model-size "$model_size" --output-dir "$data_dir" --max-prompt-length "$max_prompt_length"
)
train=(
  env TENSORBOARD_DIR="${run_dir}/tensorboard" "$python" -m verl.trainer.main_ppo
  # data: MATH train (7,500 problems), the test split for validation curves (its first 500 problems)
  data.train_files="${data_dir}/train.parquet" data.val_files="${data_dir}/test.parquet" data.val_max_samples=500
  data.train_batch_size="$batch_size"                   # Table 3 "Batch Size"
  data.max_prompt_length="$max_prompt_length" data.filter_overlong_prompts=true data.truncation=error  # Table 3
  data.max_response_length="$max_completion_length"     # Table 3 "Max Completion Length"
  actor_rollout_ref.model.path="$model"
  # verl 0.9.1 defaults to flash_attention_2 (verl/workers/config/model.py:185), which the verl-gpu extra (verl's
  # tested vllm stack) does not install; transformers' sdpa also runs verl's padding-free packed micro-batches
  +actor_rollout_ref.model.override_config.attn_implementation=sdpa
  # the objective: the policy loss is the one difference between the CFPO and the GRPO run
  # cfpo: eq. 7 (registered by our verl.plugins entry point); vanilla: eq. 6, with verl's dual clip (clip_ratio_c 3)
  actor_rollout_ref.actor.policy_loss.loss_mode="$loss"
  actor_rollout_ref.actor.clip_ratio_low="$clip_ratio" actor_rollout_ref.actor.clip_ratio_high="$clip_ratio"  # Table 3
  actor_rollout_ref.actor.loss_agg_mode="$loss_agg_mode"  # Table 3 is silent: see openrlhf_cfpo/recipes.py FILLED
  algorithm.adv_estimator=grpo algorithm.norm_adv_by_std_in_grpo=true  # eq. 9
  # Table 3 "KL Penalty" 0: no KL in the reward, no KL loss (and so no reference model)
  algorithm.use_kl_in_reward=false actor_rollout_ref.actor.use_kl_loss=false
  actor_rollout_ref.actor.kl_loss_coef="$kl_beta"
  actor_rollout_ref.actor.entropy_coeff=0
  # off-policy pressure (section 4.1): batch ratio = train_batch_size / ppo_mini_batch_size, iterations = ppo_epochs
  actor_rollout_ref.actor.ppo_mini_batch_size="$mini_batch_size"
  actor_rollout_ref.actor.ppo_epochs="$iterations"
  # memory and throughput only (micro-batches packed to 16k tokens per GPU): no effect on the objective
  actor_rollout_ref.actor.use_dynamic_bsz=true actor_rollout_ref.actor.ppo_max_token_len_per_gpu=16384
  # optimizer (Table 3): AdamW with its betas and eps, the learning rate of the model size, cosine with warm-up;
  # weight decay 0 as TRL's default (verl's own default is 0.01), so both frameworks train the same objective
  actor_rollout_ref.actor.optim.lr="$learning_rate"
  actor_rollout_ref.actor.optim.lr_scheduler_type="$lr_scheduler"
  actor_rollout_ref.actor.optim.lr_warmup_steps_ratio="$warmup_ratio"
  actor_rollout_ref.actor.optim.betas="[$adam_beta1,$adam_beta2]"
  actor_rollout_ref.actor.optim.override_optimizer_config="{eps:$adam_epsilon}"
  actor_rollout_ref.actor.optim.weight_decay=0.0
  # rollouts (Table 3): "Group Size" per problem, "Temperature", vLLM
  actor_rollout_ref.rollout.name=vllm actor_rollout_ref.rollout.n="$group_size"
  actor_rollout_ref.rollout.temperature="$temperature"
  actor_rollout_ref.rollout.tensor_model_parallel_size=1 actor_rollout_ref.rollout.gpu_memory_utilization=0.6  # ours
  # completions end where the chat turn ends (<|im_end|>), not only at a base model's eos: vLLM reads its stop ids
  # from the generation config the data preparation writes (openrlhf_cfpo/reasoning/verl_data.py)
  +actor_rollout_ref.rollout.engine_kwargs.vllm.generation_config="${data_dir}/generation_config"
  # reward: the reference recipe's accuracy reward (math-verify; the gold read from the solution)
  reward.custom_reward_function.path=pkg://openrlhf_cfpo.reasoning.rewards
  reward.custom_reward_function.name=compute_score
  # Not in Table 3: epochs as the reference recipe (openrlhf_cfpo/recipes.py FILLED); checkpoints, validation and
  # logging are ours
  trainer.total_epochs="$epochs"
  trainer.nnodes="$nodes" trainer.n_gpus_per_node="$gpus"
  trainer.project_name=openrlhf_cfpo trainer.experiment_name="$run_name" trainer.logger="$loggers"
  trainer.default_local_dir="${run_dir}/checkpoints" trainer.save_freq=50 trainer.test_freq=10
  trainer.max_actor_ckpt_to_keep="$keep_checkpoints"  # the newest checkpoints only (verl keeps every one by default)
)
train+=("${passthrough[@]+"${passthrough[@]}"}")

echo "$(basename "$0"): disk: $disk_estimate" >&2
print_command "${prepare[@]}"
print_command "${train[@]}"
if [ "$dry_run" = 1 ]; then
  exit 0
fi
run_doctor "$run_dir"
mkdir -p "$run_dir"
printf '%s\n' "$record" > "$run_dir/recipe.json"  # the settings this run was started with, and their sources
"${prepare[@]}"
exec "${train[@]}"
