#!/usr/bin/env bash
# The clipped baseline: GRPO with verl's vanilla (PPO-clip) policy loss, everything else as
# cfpo_qwen25_math_verl.sh. --help for the rest.
exec bash "$(dirname "${BASH_SOURCE[0]}")/qwen25_math_verl.sh" --loss vanilla "$@"
