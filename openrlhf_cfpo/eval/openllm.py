"""The OpenLLM alignment-tax tasks through lm-eval, with the Open LLM Leaderboard (v1) shots and metrics.

Each task runs as its own lm-eval call (the tasks differ in shots) and its result is saved as soon as it
finishes, so a killed run resumes at the next task. The leaderboard scored base-model prompts, so the chat
template is off by default; `--chat-template` turns it on, and results.json records which was used.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

from . import common
from .errors import EvalError
from .generation import vllm_usable
from .store import write_json

NAME = "openllm"


@dataclass(frozen=True)
class TaskSpec:
    key: str  # our results.json key and report column
    task: str  # lm-eval task (or group) name
    shots: int
    metric: str  # lm-eval metric key, "metric,filter"


TASKS = (
    TaskSpec("arc", "arc_challenge", 25, "acc_norm,none"),
    TaskSpec("gsm8k", "gsm8k", 5, "exact_match,strict-match"),
    TaskSpec("hellaswag", "hellaswag", 10, "acc_norm,none"),
    TaskSpec("mmlu", "mmlu", 5, "acc,none"),
    TaskSpec("truthfulqa", "truthfulqa_mc2", 0, "acc,none"),
    TaskSpec("winogrande", "winogrande", 5, "acc,none"),
)


def make_lm(model: str, backend: str, batch_size: int, dtype: str):
    if backend == "vllm" or (backend == "auto" and vllm_usable()):
        from lm_eval.models.vllm_causallms import VLLM

        return VLLM(pretrained=model, dtype=dtype, batch_size="auto")
    from lm_eval.models.huggingface import HFLM

    try:
        return HFLM(pretrained=model, batch_size=batch_size, dtype=dtype)
    except OSError as e:
        raise EvalError(f"cannot load --model {model} for lm-eval ({e}); pass a Hugging Face model folder or hub name") from None


def metric_value(results: dict, spec: TaskSpec) -> float:
    """The leaderboard metric (percent) for one task from an lm-eval results dict."""
    try:
        return 100 * float(results["results"][spec.task][spec.metric])
    except KeyError:
        raise EvalError(f"lm-eval returned no {spec.metric!r} for {spec.task}; this lm-eval version names it differently") from None


def summarize(values: dict) -> dict:
    return {**values, "average": sum(values.values()) / len(values)}


def run_tasks(lm_factory, specs: Sequence[TaskSpec], out: Path, limit: Optional[int], chat_template: bool,
              include_path: Optional[str] = None, seed: int = 0, log=print) -> dict:
    """Task scores (percent), reusing those saved under out/tasks/; the model loads only if one is missing."""
    import lm_eval
    from lm_eval.tasks import TaskManager

    values, lm, tm = {}, None, None
    for spec in specs:
        path = out / "tasks" / f"{spec.key}.json"
        if path.exists():
            saved = json.loads(path.read_text(encoding="utf-8"))
            if saved.get("limit") == limit and saved.get("chat_template") == chat_template:
                values[spec.key] = saved["value"]
                log(f"resuming: {spec.key} already scored in {path}")
                continue
        lm = lm or lm_factory()
        tm = tm or TaskManager(include_path=include_path)
        res = lm_eval.simple_evaluate(
            model=lm, tasks=[spec.task], num_fewshot=spec.shots, limit=limit, task_manager=tm,
            apply_chat_template=chat_template, fewshot_as_multiturn=chat_template, log_samples=False,
            random_seed=seed, numpy_random_seed=seed, torch_random_seed=seed, fewshot_random_seed=seed,
        )
        values[spec.key] = metric_value(res, spec)
        write_json(path, {"task": spec.task, "shots": spec.shots, "metric": spec.metric, "value": values[spec.key],
                          "limit": limit, "chat_template": chat_template, "lm_eval_results": res["results"]})
    return values


def run(args) -> dict:
    out = common.bench_dir(args, NAME)
    values = run_tasks(lambda: make_lm(args.model, args.backend, args.batch_size, args.dtype), TASKS, out,
                       args.limit, args.chat_template, seed=args.seed)
    settings = {**common.base_settings(args, NAME), "chat_template_applied": args.chat_template,
                "tasks": {s.key: {"task": s.task, "shots": s.shots, "metric": s.metric} for s in TASKS},
                **common.versions("lm_eval")}
    return common.write_results(out, NAME, summarize(values), settings)
