#!/usr/bin/env bash
# The clipped baseline: RLOO advantages with PPO's clipped surrogate, everything else as
# cfpo_llama3.sh. --kl0 for the KL=0 variant. --help for the rest.
exec bash "$(dirname "${BASH_SOURCE[0]}")/llama3_rlhf.sh" --loss ppo "$@"
