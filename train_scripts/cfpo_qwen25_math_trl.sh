#!/usr/bin/env bash
# CFPO on Qwen2.5 + MATH in TRL, paper appendix B.1 (Table 3). --model-size 1.5B|3B|7B, --instruct, --iterations N.
# Everything else (flags, env vars, --dry-run, pass-through after --): --help.
exec bash "$(dirname "${BASH_SOURCE[0]}")/qwen25_math_trl.sh" --loss cfpo "$@"
