#!/usr/bin/env bash
# Llama-3-8B RLHF with OpenRLHF 0.11.2, paper Table 4 (arXiv 2601.22801, appendix B.2).
# Called by cfpo_llama3.sh (--loss cfpo) and rloo_llama3.sh (--loss ppo): the two runs differ in
# the policy loss only.
#
# Usage: bash train_scripts/cfpo_llama3.sh [options] [ANY OPENRLHF FLAG ...]   (or rloo_llama3.sh)
#   --kl0                  the KL-free variant (Table 4's KL coefficient 0 instead of 1e-4)
#   --nodes N              nodes of the Ray cluster (default 1; NUM_NODES)
#   --gpus-per-node N      GPUs per node (default 8; GPUS_PER_NODE); with the nodes, must divide the train batch
#   --output-dir DIR       where the run folder goes (default ./runs; OUTPUT_DIR)
#   --tensorboard-dir DIR  TensorBoard folder (default <run>/tensorboard; TENSORBOARD_DIR)
#   --wandb-key KEY        log to Weights & Biases too (WANDB_API_KEY)
#   --keep-checkpoints N   DeepSpeed checkpoints kept, the newest (default 2)
#   --skip-doctor          start without the preflight (openrlhf-cfpo doctor; or OPENRLHF_CFPO_SKIP_DOCTOR=1)
#   --leave-out FLAG       leave one of this script's on/off switches out of the command (repeatable): a later
#                          argument cannot turn a switch off. The switches: --train.colocate_all --vllm.enable_sleep
#                          --ds.enable_sleep --ds.packing_samples --actor.gradient_checkpointing_enable. E.g. on a
#                          machine whose vLLM has no sleep mode (vLLM's CPU build): --leave-out --vllm.enable_sleep
#   --dry-run              print the disk estimate and the OpenRLHF command, start nothing
#   -h, --help             this text
#
# Off-policy on purpose: each rollout is 512 prompts x 2 samples = 1024 samples, trained in
# batches of 64, so every rollout gets 1024 / 64 = 16 optimizer steps. Only with several steps
# per rollout do CFPO and clipping differ (with one step both are the plain policy gradient).
#
# Flags after ours go to OpenRLHF unchanged and, coming last, override the defaults below
# (argparse keeps the last value), e.g. --train.batch_size 128 or --vllm.gpu_memory_utilization 0.5.
# Environment variables give the same settings: NUM_NODES, GPUS_PER_NODE, OUTPUT_DIR,
# TENSORBOARD_DIR, WANDB_API_KEY, VLLM_TP (vLLM tensor parallel size), PYTHON.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

loss=""
kl0=""
dry_run=0
skip_doctor=0
keep_checkpoints=""
nodes="${NUM_NODES:-1}"
gpus="${GPUS_PER_NODE:-8}"
output_dir="${OUTPUT_DIR:-./runs}"
tensorboard_dir="${TENSORBOARD_DIR:-}"
wandb_key="${WANDB_API_KEY:-}"
vllm_tp="${VLLM_TP:-1}"
python="${PYTHON:-python3}"
passthrough=()
left_out=()
switches=(--train.colocate_all --vllm.enable_sleep --ds.enable_sleep --ds.packing_samples
          --actor.gradient_checkpointing_enable)

while [ "$#" -gt 0 ]; do
  case "$1" in
    --loss) need_value "$@"; loss="$2"; shift 2 ;;
    --kl0) kl0=1; shift ;;
    --dry-run) dry_run=1; shift ;;
    --skip-doctor) skip_doctor=1; shift ;;
    --leave-out) need_value "$@"
      [[ " ${switches[*]} " == *" $2 "* ]] || die "--leave-out takes one of this script's switches (${switches[*]}), got '$2'"
      left_out+=("$2"); shift 2 ;;
    --keep-checkpoints) need_value "$@"; keep_checkpoints="$2"; shift 2 ;;
    --nodes) need_value "$@"; nodes="$2"; shift 2 ;;
    --gpus-per-node) need_value "$@"; gpus="$2"; shift 2 ;;
    --output-dir) need_value "$@"; output_dir="$2"; shift 2 ;;
    --tensorboard-dir) need_value "$@"; tensorboard_dir="$2"; shift 2 ;;
    --wandb-key) need_value "$@"; wandb_key="$2"; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) passthrough+=("$1"); shift ;;
  esac
done

# Table 4 and the sizes derived from it (openrlhf_cfpo/recipes.py); checks the flags above
settings="$(recipe_settings llama3-rlhf --loss "$loss" ${kl0:+--kl0} --nodes "$nodes" --gpus-per-node "$gpus" \
  --vllm-tp "$vllm_tp" ${keep_checkpoints:+--keep-checkpoints "$keep_checkpoints"})" || exit $?
eval "$settings"

run_dir="${output_dir%/}/${run_name}"
tensorboard_dir="${tensorboard_dir:-${run_dir}/tensorboard}"

cmd=(
  "$python" -m openrlhf_cfpo.cli.train_ppo_ray
  # models (OpenRLHF's released SFT policy and 700k-pair reward model)
  --actor.model_name_or_path OpenRLHF/Llama-3-8b-sft-mixture
  --reward.model_name_or_path OpenRLHF/Llama-3-8b-rm-700k
  # prompts
  --data.prompt_dataset OpenRLHF/prompt-collection-v0.1
  --data.input_key context_messages
  --data.apply_chat_template
  # lengths (Table 4): prompt + generated tokens (0.11.2 bounds the total, not the prompt alone), generated tokens
  --data.max_len "$max_len"
  --rollout.max_new_tokens "$max_new_tokens"
  # Table 4
  --actor.policy_loss_type "$loss"
  --actor.eps_clip "$eps_clip"
  --algo.advantage.estimator "$advantage_estimator"
  --algo.kl.init_coef "$kl_coef"
  --actor.adam.lr "$actor_lr"
  --train.batch_size "$train_batch_size"
  --rollout.batch_size "$rollout_batch_size"
  --rollout.n_samples_per_prompt "$samples_per_prompt"
  # placement: one hybrid engine over all GPUs (actor, ref, reward and vLLM colocated)
  --actor.num_nodes "$nodes" --actor.num_gpus_per_node "$gpus"
  --ref.num_nodes "$nodes" --ref.num_gpus_per_node "$gpus"
  --reward.num_nodes "$nodes" --reward.num_gpus_per_node "$gpus"
  --vllm.num_engines "$vllm_engines" --vllm.tensor_parallel_size "$vllm_tp"
  "${switches[@]}" --vllm.gpu_memory_utilization 0.5
  --ds.zero_stage 3 --ds.param_dtype bf16 --ds.attn_implementation flash_attention_2
  --train.micro_batch_size "$train_micro_batch_size" --rollout.micro_batch_size 8
  # outputs
  --train.seed 42
  # the final model in Hugging Face format (OpenRLHF writes it at the end whatever --ckpt.save_hf says; with it, every
  # checkpoint would also keep an HF copy that nothing rotates); the newest --keep-checkpoints DeepSpeed states
  --ckpt.output_dir "${run_dir}/final"
  --ckpt.path "${run_dir}/checkpoints" --ckpt.save_steps 20 --ckpt.max_num "$keep_checkpoints"
  --logger.tensorboard_dir "$tensorboard_dir"
)
if [ -n "$wandb_key" ]; then
  cmd+=(--logger.wandb.key "$wandb_key" --logger.wandb.project openrlhf_cfpo --logger.wandb.run_name "$run_name")
fi
for flag in "${left_out[@]+"${left_out[@]}"}"; do
  kept=()
  for arg in "${cmd[@]}"; do [ "$arg" = "$flag" ] || kept+=("$arg"); done
  cmd=("${kept[@]}")
done
cmd+=("${passthrough[@]+"${passthrough[@]}"}")

echo "$(basename "$0"): disk: $disk_estimate" >&2
print_command "${cmd[@]}"
if [ "$dry_run" = 1 ]; then
  exit 0
fi
run_doctor "$run_dir"
mkdir -p "$run_dir"
exec "${cmd[@]}"
