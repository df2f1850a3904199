#!/usr/bin/env bash
# Qwen2.5 on MATH with TRL 1.16, paper Table 3 (arXiv 2601.22801, appendix B.1), for cfpo_qwen25_math_trl.sh and
# grpo_qwen25_math_trl.sh. Flags, settings and command: openrlhf_cfpo/recipe_commands.py; --help prints the usage.
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
run_recipe qwen25-math-trl "$@"
