"""What eval/run_suite.sh asks the package: a suite's benchmarks, and the `openrlhf-cfpo doctor` flags they need.

python -m openrlhf_cfpo.eval.suite SUITE                          # its benchmarks, one per line
python -m openrlhf_cfpo.eval.suite SUITE --doctor-flags -- ARGS   # doctor flags, one per line (ARGS: the
                                                                  # arguments every benchmark gets)
python -m openrlhf_cfpo.eval.suite --list                         # every suite and its benchmarks (run_suite.sh's
                                                                  # --help)
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from . import registry
from .data import SOURCES
from .judge import JudgeConfig


def doctor_flags(suite: str, benchmark_args: Sequence[str] = ()) -> list[str]:
    """`--hf-token` when a benchmark reads gated data; the judge endpoint and model(s) when one is judged.

    The judge flags are those the benchmarks will use: `--judge-base-url`/`--judge-model` among the benchmark
    arguments, else the endpoint's default and each benchmark's declared judge (one `--judge-model` each).
    """
    benches = registry.benchmarks(suite).values()
    flags = ["--hf-token"] if any(SOURCES[f].gated for b in benches for f in b.files) else []
    judges = list(dict.fromkeys(b.judge for b in benches if b.judge))
    if judges:
        p = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
        p.add_argument("--judge-base-url")
        p.add_argument("--judge-model")
        given, _ = p.parse_known_args(list(benchmark_args))
        flags += ["--judge-base-url", JudgeConfig(model="", base_url=given.judge_base_url).resolved().base_url]
        for model in [given.judge_model] if given.judge_model else judges:
            flags += ["--judge-model", model]
    return flags


def listing() -> str:
    """Every suite, its description and its benchmarks, two indented lines each, as run_suite.sh's help shows them."""
    return "\n".join(
        f"  {suite:<11}{description}\n  {'':<11}{' '.join(registry.benchmarks(suite))}"
        for suite, description in registry.SUITES.items()
    )


def main(argv=None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m openrlhf_cfpo.eval.suite",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        allow_abbrev=False,
    )
    p.add_argument(
        "suite", nargs="?", choices=registry.SUITES, help="; ".join(f"{k}: {v}" for k, v in registry.SUITES.items())
    )
    p.add_argument("--doctor-flags", action="store_true", help="print the doctor flags the suite's benchmarks need")
    p.add_argument("--list", action="store_true", help="print every suite and its benchmarks instead")
    argv = list(sys.argv[1:] if argv is None else argv)
    cut = argv.index("--") if "--" in argv else len(argv)
    args = p.parse_args(argv[:cut])
    if args.list:
        print(listing())
        return 0
    if args.suite is None:
        p.error("a SUITE is needed (or --list)")
    lines = doctor_flags(args.suite, argv[cut + 1 :]) if args.doctor_flags else list(registry.benchmarks(args.suite))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
