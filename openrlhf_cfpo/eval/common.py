"""What every benchmark run shares: its output folder, the guard against mixing models, settings, results."""

from __future__ import annotations

import argparse
import json
import time
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from . import registry
from .data import DataFiles, default_cache_dir
from .errors import EvalError
from .generation import generation_settings, make_backend
from .model import describe, same_model
from .store import write_json


def positive(text: str) -> int:
    """An argparse type: a whole number of at least 1."""
    n = int(text)
    if n < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {n}")
    return n


def cache_dir(args: argparse.Namespace) -> Path:
    return Path(args.cache_dir) if args.cache_dir else default_cache_dir()


def data_files(args: argparse.Namespace) -> DataFiles:
    return DataFiles(args.data_dir, cache_dir(args))


def bench_dir(args: argparse.Namespace, benchmark: str) -> Path:
    """DIR/<benchmark>, refusing to resume answers that another model wrote there (see model.py)."""
    out = Path(args.output) / benchmark
    out.mkdir(parents=True, exist_ok=True)
    marker = out / "run.json"
    identity = args.model_ref.identity()
    if marker.exists():
        prev = json.loads(marker.read_text(encoding="utf-8"))
        if "identity" not in prev:
            raise EvalError(
                f"{out} holds answers of --model {prev.get('model')} recorded without the model's identity (an older "
                "openrlhf-cfpo), so they cannot be matched to a model; pass another --output or delete that folder"
            )
        if not same_model(prev["identity"], identity):
            raise EvalError(
                f"{out} holds answers of {describe(prev['identity'])}, "
                f"not of --model {args.model} ({describe(identity)}); "
                "pass another --output or delete that folder"
            )
    else:
        write_json(marker, {"model": args.model, "identity": identity, "started_at": time.time()})
    return out


def backend_factory(args: argparse.Namespace):
    ref = args.model_ref
    return lambda: make_backend(
        ref.source,
        args.backend,
        args.batch_size,
        args.dtype,
        args.seed,
        revision=ref.revision,
        tensor_parallel_size=args.tensor_parallel_size,
    )


def versions(*packages: str) -> dict:
    out = {}
    for p in packages:
        try:
            out[p] = version(p)
        except PackageNotFoundError:
            out[p] = None
    return out


def base_settings(args: argparse.Namespace, benchmark: str, answers: dict | None = None) -> dict:
    """What every results.json records; `answers` (the generated ones) add how they were generated."""
    return {
        **(
            {"generation": generation_settings(answers), "tensor_parallel_size": args.tensor_parallel_size}
            if answers is not None
            else {}
        ),
        "benchmark": benchmark,
        "model": args.model,
        "model_identity": args.model_ref.identity(),
        "limit": args.limit,
        "max_new_tokens_override": getattr(args, "max_new_tokens", None),
        "data_dir": str(args.data_dir) if args.data_dir else None,
        "seed": args.seed,
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }


def write_results(out: Path, benchmark: str, metrics: dict, settings: dict) -> dict:
    missing = [k for k in registry.get(benchmark).results if k not in metrics]
    # A real check, not an assert: `python -O` strips asserts and would write an incomplete results.json.
    if missing:
        raise EvalError(
            f"the {benchmark} scorer produced no {', '.join(missing)}, so {out / 'results.json'} was not written; "
            "this is a bug in openrlhf_cfpo.eval: report it with the command you ran"
        )
    results = {**metrics, "settings": settings}
    write_json(out / "results.json", results)
    return results


def first(items: list, limit) -> list:
    return items if limit is None else items[:limit]
