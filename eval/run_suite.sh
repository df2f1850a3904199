#!/usr/bin/env bash
# Runs every benchmark of a suite against each CKPT (and against --baseline), then prints the paper's tables.
# Default: the RLHF suite and Tables 1 and 2, with the alignment tax against --baseline. --reasoning: the reasoning
# suite with the paper's RLVR protocol and Table 5, one row per checkpoint (--baseline, e.g. the untrained model,
# first). Each suite's benchmarks come from the package's benchmark registry (--help lists them).
# Reruns resume: finished answers and judgments are reused. Before any benchmark, `openrlhf-cfpo doctor --recipe eval`
# checks the machine (GPU optional), the HF token where data is gated and the judge endpoint where one is judged.
#
#   bash eval/run_suite.sh CKPT [CKPT ...] [--baseline BASE_CKPT] [--output DIR] [--reasoning] [-- extra args for every benchmark]
#   e.g. bash eval/run_suite.sh ckpt/cfpo --baseline ckpt/sft -- --limit 5                          # smoke run
#        bash eval/run_suite.sh ckpt/cfpo-it2 ckpt/cfpo-it4 --baseline Qwen/Qwen2.5-3B-Instruct --reasoning
set -euo pipefail

python=${PYTHON:-python}
# The suites' benchmarks are listed from the registry when the help is printed, so that the help names what runs.
usage_text() {
  local suites
  suites=$("$python" -m openrlhf_cfpo.eval.suite --list 2>/dev/null) ||
    suites="  (not listed: python -m openrlhf_cfpo.eval.suite --list failed)"
  cat <<EOF
usage: bash eval/run_suite.sh CKPT [CKPT ...] [--baseline BASE_CKPT] [--output DIR] [--reasoning] [--skip-doctor] [-- EXTRA_ARGS...]

  CKPT             a Hugging Face model folder or hub name; each gets its own folder DIR/<name>
  --baseline BASE  also evaluate BASE, the first row of the tables (the alignment tax is against it)
  --output DIR     where runs and the CSV tables go (default: eval_results)
  --reasoning      the reasoning suite and Table 5 instead of the RLHF suite
  --skip-doctor    do not run the preflight (openrlhf-cfpo doctor) first; OPENRLHF_CFPO_SKIP_DOCTOR=1 does the same
  -- ARGS          passed to every benchmark (e.g. -- --limit 5 for a smoke run)
  -h, --help       this help

The suites (rlhf by default), from the benchmark registry:
$suites
EOF
}
usage() { usage_text >&2; exit 2; }
[ $# -ge 1 ] || usage
CKPTS=(); BASELINE=""; OUT="eval_results"; EXTRA=(); REASONING=0; SKIP_DOCTOR=${OPENRLHF_CFPO_SKIP_DOCTOR:-0}
while [ $# -gt 0 ]; do
  case $1 in
    --baseline) [ $# -ge 2 ] || usage; BASELINE=$2; shift 2 ;;
    --output) [ $# -ge 2 ] || usage; OUT=$2; shift 2 ;;
    --reasoning) REASONING=1; shift ;;
    --skip-doctor) SKIP_DOCTOR=1; shift ;;
    -h|--help) usage_text; exit 0 ;;
    --) shift; EXTRA=("$@"); break ;;
    -*) echo "run_suite.sh: unknown option $1" >&2; usage ;;
    *) CKPTS+=("$1"); shift ;;
  esac
done
[ ${#CKPTS[@]} -ge 1 ] || usage
SUITE=rlhf; [ "$REASONING" = 1 ] && SUITE=reasoning
# The suite's benchmarks, in the order of the paper's tables, from the package's one benchmark registry.
LISTED=$("$python" -m openrlhf_cfpo.eval.suite "$SUITE")
read -r -d '' -a BENCHMARKS <<<"$LISTED" || true
[ ${#BENCHMARKS[@]} -ge 1 ] || { echo "run_suite.sh: the benchmark registry lists no $SUITE benchmarks" >&2; exit 2; }
if [ "$SKIP_DOCTOR" != 1 ]; then
  # With the flags these benchmarks need (--hf-token, the judge's endpoint and model); a fault stops the suite
  # here (set -e), and the doctor prints its own lines.
  LISTED=$("$python" -m openrlhf_cfpo.eval.suite "$SUITE" --doctor-flags -- ${EXTRA[@]+"${EXTRA[@]}"})
  DOCTOR_FLAGS=(); read -r -d '' -a DOCTOR_FLAGS <<<"$LISTED" || true
  "$python" -m openrlhf_cfpo.doctor --recipe eval --gpus 0 ${DOCTOR_FLAGS[@]+"${DOCTOR_FLAGS[@]}"} --output-dir "$OUT"
fi
EVAL=("$python" -m openrlhf_cfpo.cli.main eval)
name() { basename "${1%/}"; }

run_all() {  # MODEL DIR
  local model=$1 dir=$2
  for bench in "${BENCHMARKS[@]}"; do
    echo "== $bench: $model -> $dir"
    "${EVAL[@]}" "$bench" --model "$model" --output "$dir" ${EXTRA[@]+"${EXTRA[@]}"}
  done
}

DIRS=()
for ckpt in "${CKPTS[@]}"; do
  DIRS+=("$OUT/$(name "$ckpt")")
  run_all "$ckpt" "${DIRS[-1]}"
done
if [ -n "$BASELINE" ]; then
  BASE_DIR="$OUT/$(name "$BASELINE")"
  run_all "$BASELINE" "$BASE_DIR"
  "${EVAL[@]}" report "${DIRS[@]}" --baseline "$BASE_DIR" --output "$OUT"
else
  "${EVAL[@]}" report "${DIRS[@]}" --output "$OUT"
fi
