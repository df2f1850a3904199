#!/usr/bin/env bash
# Runs every benchmark against CKPT (and the OpenLLM tasks against --baseline for the alignment tax),
# then prints the paper's Tables 1 and 2. Reruns resume: finished answers and judgments are reused.
#
#   bash eval/run_suite.sh CKPT --baseline SFT_CKPT [--output DIR] [-- extra args for every benchmark]
#   e.g. bash eval/run_suite.sh ckpt/cfpo --baseline ckpt/sft -- --limit 5   # smoke run
set -euo pipefail

usage() { echo "usage: bash eval/run_suite.sh CKPT [--baseline SFT_CKPT] [--output DIR] [-- EXTRA_ARGS...]" >&2; exit 2; }
[ $# -ge 1 ] || usage
CKPT=$1; shift
BASELINE=""; OUT="eval_results"; EXTRA=()
while [ $# -gt 0 ]; do
  case $1 in
    --baseline) [ $# -ge 2 ] || usage; BASELINE=$2; shift 2 ;;
    --output) [ $# -ge 2 ] || usage; OUT=$2; shift 2 ;;
    --) shift; EXTRA=("$@"); break ;;
    *) echo "run_suite.sh: unknown option $1" >&2; usage ;;
  esac
done
EVAL=(python -m openrlhf_cfpo.cli.main eval)
name() { basename "${1%/}"; }

run_all() {  # MODEL DIR BENCHMARKS...
  local model=$1 dir=$2; shift 2
  for bench in "$@"; do
    echo "== $bench: $model -> $dir"
    "${EVAL[@]}" "$bench" --model "$model" --output "$dir" "${EXTRA[@]}"
  done
}

MODEL_DIR="$OUT/$(name "$CKPT")"
run_all "$CKPT" "$MODEL_DIR" alpaca_eval arena_hard mt_bench ifeval openllm
if [ -n "$BASELINE" ]; then
  BASE_DIR="$OUT/$(name "$BASELINE")"
  run_all "$BASELINE" "$BASE_DIR" alpaca_eval arena_hard mt_bench ifeval openllm
  "${EVAL[@]}" report "$MODEL_DIR" --baseline "$BASE_DIR" --csv-dir "$OUT"
else
  "${EVAL[@]}" report "$MODEL_DIR" --csv-dir "$OUT"
fi
