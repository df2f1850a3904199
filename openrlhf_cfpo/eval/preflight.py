"""Every input of an eval run checked before anything loads: all problems at once, one line each, cheap checks first.

1. Local checks, no network: the output folder, the model folder (or a hub name in the cache when offline),
   the judge's API key, the benchmark's data files in `--data-dir` or the cache, a token for gated data, the
   backend.
2. One request to each server the run needs, never retried: the hosts of missing data files, the hub for a
   hub model name, the judge endpoint. An unreachable hub costs one timeout, not a retry loop (~24 s each).
   Problems of both steps are listed together, and the run stops there.
3. Only when everything answers: missing data files are downloaded and a hub name is pinned to its revision.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from . import common, model
from .data import SOURCES, download_problem
from .errors import EvalError
from .generation import backend_problem
from .registry import Benchmark

PROBE_TIMEOUT_S = 10.0


def output_problem(output: str) -> str | None:
    out = Path(output)
    if out.exists() and not out.is_dir():
        return f"--output {output} is a file; pass a folder"
    existing = next(p for p in (out, *out.parents) if p.exists())
    if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
        return f"--output {output}: cannot write into {existing}; pass a folder you can write to"
    return None


def unreachable(origin: str) -> str | None:
    """Why `origin` does not answer one HEAD request (None when it answers with any HTTP status)."""
    import httpx

    try:
        httpx.head(origin, timeout=PROBE_TIMEOUT_S)
    except httpx.HTTPError as e:
        return f"{type(e).__name__}: {' '.join(str(e).split()) or 'no answer'}"
    return None


def check(args: argparse.Namespace, bench: Benchmark) -> model.ModelRef:
    """The resolved model; EvalError with every problem found when the run cannot start."""
    from huggingface_hub import constants, get_token

    model_problem = model.local_problem(args.model)
    problems = [
        p
        for p in (output_problem(args.output), model_problem, backend_problem(args.backend, args.tensor_parallel_size))
        if p
    ]
    # A name that is no folder is a hub name: looked up in the cache offline, on the hub otherwise.
    hub_model = model_problem is None and not Path(args.model).expanduser().exists()
    judge = None
    if bench.judge:
        from .judge import make_judge

        judge = make_judge(args, common.cache_dir(args))
        problems += [p for p in (judge.key_problem(),) if p]
    files = common.data_files(args)
    downloads = []
    for rel in bench.files:
        missing = files.missing_from_data_dir(rel)
        if missing:
            problems.append(missing)
        elif files.to_download(rel):
            source = SOURCES[rel]
            if source.hf_repo and constants.HF_HUB_OFFLINE:
                problems.append(download_problem(rel, "the hub is offline (HF_HUB_OFFLINE) and the file is not cached"))
            elif source.gated and not get_token():
                problems.append(download_problem(rel, "no Hugging Face token"))
            else:
                downloads.append(rel)
    if hub_model and constants.HF_HUB_OFFLINE:
        try:
            model.hub_revision(args.model, offline=True)
        except EvalError as e:
            problems += e.problems

    # The network: each server the run needs is asked once, never retried, whatever was found above.
    asks_hub = hub_model and not constants.HF_HUB_OFFLINE
    origins = {SOURCES[rel].origin() for rel in downloads} | ({constants.ENDPOINT} if asks_hub else set())
    down = {o: why for o in sorted(origins) if (why := unreachable(o))}
    for rel in downloads:
        if SOURCES[rel].origin() in down:
            problems.append(
                download_problem(rel, f"{SOURCES[rel].origin()} does not answer: {down[SOURCES[rel].origin()]}")
            )
    if asks_hub and constants.ENDPOINT in down:
        problems.append(
            f"--model {args.model}: no such folder, and the hub ({constants.ENDPOINT}) does not answer "
            f"({down[constants.ENDPOINT]}); pass a model folder, or set HF_HUB_OFFLINE=1 to use a cached copy"
        )
    if judge is not None and not judge.key_problem():
        problems += [p for p in (judge.endpoint_problem(),) if p]
    if problems:
        raise EvalError(*problems)

    # Everything answers: fetch what is missing and pin the model.
    for rel in downloads:
        try:
            files.path(rel)
        except EvalError as e:
            problems += e.problems
    try:
        ref = model.resolve(args.model)
    except EvalError as e:
        problems += e.problems
    if problems:
        raise EvalError(*problems)
    return ref
