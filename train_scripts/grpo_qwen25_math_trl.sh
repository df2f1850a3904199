#!/usr/bin/env bash
# The clipped baseline: GRPO (group-relative advantages, PPO's clipped surrogate), everything else as
# cfpo_qwen25_math_trl.sh. --help for the rest.
exec bash "$(dirname "${BASH_SOURCE[0]}")/qwen25_math_trl.sh" --loss ppo "$@"
