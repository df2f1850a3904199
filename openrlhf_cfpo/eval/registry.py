"""The benchmark registry: every benchmark of `openrlhf-cfpo eval` once, as the CLI, `report` and run_suite.sh read it.

Each benchmark is declared by the module that runs it (its `BENCHMARKS`, next to the protocol it implements);
this module collects the declarations in the column order of the paper's tables, and everything else reads them:
- `openrlhf-cfpo eval` has one sub-command per benchmark, with judge flags where it declares a judge;
- `openrlhf-cfpo eval report` builds Tables 1, 2 and 5 from the declared columns;
- `eval/run_suite.sh` runs a suite's benchmarks, listed by `python -m openrlhf_cfpo.eval.suite SUITE`.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, replace
from functools import cache

from .decoding import Decoding

# run_suite.sh's default suite and its --reasoning suite.
SUITES = {
    "rlhf": "the RLHF suite: instruction following (Table 1) and OpenLLM capabilities (Table 2)",
    "reasoning": "the RLVR reasoning suite (Table 5)",
}
# The modules that declare benchmarks, in the order of the paper's table columns (Tables 1, 2, then 5).
MODULES = ("arena_hard", "alpacaeval", "mt_bench", "ifeval", "openllm", "reasoning")


@dataclass(frozen=True, kw_only=True)
class Benchmark:
    name: str  # the sub-command and the results folder
    module: str  # the module whose run(args) runs it
    suite: str  # a key of SUITES
    table: int  # the paper's table its columns belong to
    columns: tuple[tuple[str, str], ...]  # (column of that table, results.json key), in the table's order
    results: tuple[str, ...]  # keys its results.json always holds
    files: tuple[str, ...] = ()  # the data files it reads (data.SOURCES keys), checked before a run starts
    decoding: Decoding | None = None  # the protocol's answer decoding; None: the harness (lm-eval) decodes
    judge: str | None = None  # the paper's judge model; None: not judged


@cache
def _collected() -> tuple[Benchmark, ...]:
    found = []
    for name in MODULES:
        found += importlib.import_module(f"{__package__}.{name}").BENCHMARKS.values()
    return tuple(found)


def benchmarks(suite: str | None = None) -> dict[str, Benchmark]:
    """Name -> benchmark, in the order of the paper's table columns; only `suite`'s when given."""
    return {b.name: b for b in _collected() if suite is None or b.suite == suite}


def get(name: str) -> Benchmark:
    return benchmarks()[name]


def decoding_for(name: str, max_new_tokens: int | None = None) -> Decoding:
    """The decoding settings of benchmark ``name``, with the optional smoke-run length cap."""
    dec = get(name).decoding
    return dec if max_new_tokens is None else replace(dec, max_new_tokens=max_new_tokens)
