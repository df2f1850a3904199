"""`openrlhf-cfpo eval`: one sub-command per benchmark, plus `report`.

RLHF benchmarks: alpaca_eval, arena_hard, mt_bench, ifeval, openllm (the paper's Tables 1-2). Reasoning (RLVR)
benchmarks: math500, gsm8k, aime24, gpqa_diamond (Tables 5-10), with the paper's training chat prompt.
"""
from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path

from .errors import EvalError

BENCHMARKS = {
    "alpaca_eval": "openrlhf_cfpo.eval.alpacaeval",
    "arena_hard": "openrlhf_cfpo.eval.arena_hard",
    "mt_bench": "openrlhf_cfpo.eval.mt_bench",
    "ifeval": "openrlhf_cfpo.eval.ifeval",
    "openllm": "openrlhf_cfpo.eval.openllm",
    "math500": "openrlhf_cfpo.eval.reasoning",
    "gsm8k": "openrlhf_cfpo.eval.reasoning",
    "aime24": "openrlhf_cfpo.eval.reasoning",
    "gpqa_diamond": "openrlhf_cfpo.eval.reasoning",
}
JUDGED = ("alpaca_eval", "arena_hard", "mt_bench")
REASONING = ("math500", "gsm8k", "aime24", "gpqa_diamond")


def _positive(text: str) -> int:
    n = int(text)
    if n < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {n}")
    return n


def _task_spec(text: str):
    from .openllm import parse_task_spec

    try:
        return parse_task_spec(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="openrlhf-cfpo eval", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)
    for name in BENCHMARKS:
        s = sub.add_parser(name, help=f"run {name} against a checkpoint")
        s.add_argument("--model", required=True, help="Hugging Face model folder or hub name")
        s.add_argument("--output", required=True, help="run folder; results go to OUTPUT/%s/results.json" % name)
        s.add_argument("--limit", type=_positive, help="only the first N items (tasks: N examples each), for smoke runs")
        s.add_argument("--data-dir", help="read benchmark files from this folder (official relative paths) instead of downloading")
        s.add_argument("--cache-dir", help="downloads and the judge cache (default $OPENRLHF_CFPO_CACHE or ~/.cache/openrlhf_cfpo)")
        s.add_argument("--backend", choices=("auto", "hf", "vllm"), default="auto", help="auto: vLLM with a GPU, else HF")
        s.add_argument("--batch-size", type=_positive, default=8)
        s.add_argument("--dtype", default="auto")
        s.add_argument("--seed", type=int, default=0)
        s.add_argument("--max-new-tokens", type=_positive,
                       help="cap lm-eval's max_gen_toks for generative tasks such as gsm8k (smoke runs; recorded in results)"
                       if name == "openllm" else "answer length instead of 3072, the paper's training completion length "
                       "(recorded in results)" if name in REASONING else "cap answer length (smoke runs; recorded in results)")
        if name == "openllm":
            s.add_argument("--chat-template", action="store_true", help="apply the model's chat template in lm-eval")
            s.add_argument("--task", action="append", type=_task_spec, metavar="KEY=TASK:SHOTS:METRIC",
                           help="run this lm-eval task instead of the leaderboard set (repeatable), scored by METRIC "
                                "(lm-eval's 'metric,filter' key) and saved as KEY; e.g. arc=arc_challenge:25:acc_norm,none")
            s.add_argument("--include-path", help="folder of extra lm-eval task YAMLs (for --task)")
        if name in REASONING:
            s.add_argument("--system-prompt", default="auto", metavar="auto|paper-1.5b|paper-3b|paper-7b|none|TEXT",
                           help="the system turn: auto (default) takes the paper's training prompt for the checkpoint's "
                                "Qwen2.5 size (appendix B.1; the 1.5B one for other models), paper-* names one, none "
                                "sends no system turn, anything else is used as the prompt text")
            s.add_argument("--samples", type=_positive, default=1,
                           help="samples per problem; pass@1 is averaged over them (default 1)")
        if name in JUDGED:
            s.add_argument("--judge-model", help="judge model name (default: the paper's judge for this benchmark)")
            s.add_argument("--judge-base-url", help="OpenAI-compatible endpoint (default $OPENAI_BASE_URL or OpenAI)")
            s.add_argument("--judge-concurrency", type=_positive, default=64)
            s.add_argument("--judge-max-retries", type=int, default=6)
            s.add_argument("--judge-timeout", type=float, default=300.0, help="seconds per judge request")
    r = sub.add_parser("report", help="the paper's Tables 1 and 2 (and Table 5 for reasoning runs) from run folders")
    r.add_argument("dirs", nargs="+", help="--output folders of eval runs, one per model")
    r.add_argument("--baseline", help="run folder of the baseline (e.g. the SFT model) for the alignment tax")
    r.add_argument("--csv-dir", help="where the CSV tables go (default: the first folder)")
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "report":
            from .report import report

            dirs = [Path(d) for d in args.dirs]
            print(report(dirs, Path(args.baseline) if args.baseline else None, Path(args.csv_dir) if args.csv_dir else dirs[0]))
            return 0
        results = importlib.import_module(BENCHMARKS[args.command]).run(args)
    except EvalError as e:
        print(f"openrlhf-cfpo eval {args.command}: error: {e}", file=sys.stderr)
        return 2
    shown = {k: v for k, v in results.items() if not isinstance(v, dict)}
    print(f"{args.command}: " + ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in shown.items()))
    print(f"wrote {Path(args.output) / args.command / 'results.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
