#!/usr/bin/env bash
# CFPO on Qwen2.5-3B + MATH in verl (the paper's verl ablation). --iterations N (ppo_epochs), --batch-ratio R
# (train_batch_size / ppo_mini_batch_size). Everything else (flags, env vars, --dry-run, Hydra overrides after --):
# --help.
exec bash "$(dirname "${BASH_SOURCE[0]}")/qwen25_math_verl.sh" --loss cfpo "$@"
