#!/usr/bin/env bash
# Llama-3-8B RLHF with OpenRLHF 0.11.2, paper Table 4 (arXiv 2601.22801, appendix B.2), for cfpo_llama3.sh and
# rloo_llama3.sh. Flags, settings and command: openrlhf_cfpo/recipe_commands.py; --help prints the usage.
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
run_recipe llama3-rlhf "$@"
