#!/usr/bin/env bash
# Qwen2.5 on MATH with verl 0.9.1, the paper's verl ablation (arXiv 2601.22801, section 4.1, appendix D), for
# cfpo_qwen25_math_verl.sh and grpo_qwen25_math_verl.sh. Flags, settings and commands:
# openrlhf_cfpo/recipe_commands.py; --help prints the usage.
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
run_recipe qwen25-math-verl "$@"
