#!/usr/bin/env bash
# CFPO on Llama-3-8B-SFT with RLOO advantages, paper Table 4. --kl0 for the KL=0 variant.
# Everything else (flags, env vars, --dry-run): --help.
exec bash "$(dirname "${BASH_SOURCE[0]}")/llama3_rlhf.sh" --loss cfpo "$@"
