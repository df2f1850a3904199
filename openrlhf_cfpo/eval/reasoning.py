"""MATH500, GSM8K, AIME24 and GPQA-Diamond with the paper's reasoning (RLVR) evaluation protocol (Tables 5-10).

Protocol (paper, section 4.1 "Evaluation" and appendix B.1): "the same chat-style prompting format used during
training", sampling at temperature 0.6 and top-p 0.95, "all using the lighteval library". The paper's reference
recipe (Zhao et al. 2025's open-r1 fork) runs ``lighteval vllm ... "lighteval|<task>|0|0" --use-chat-template
--system-prompt <the training system prompt>`` with lighteval pinned at commit d3da6b9, whose tasks and metrics are
those of lighteval 0.9.2. So here:
- the conversation is the one lighteval 0.9.2 builds: the paper's system prompt for the model size (appendix B.1,
  verbatim; chosen from the checkpoint's Qwen2.5 size by `--system-prompt auto`), then lighteval's prompt for the
  task as the user turn (`*_PROMPT` below). For GPQA lighteval files its whole prompt as the "instruction", which it
  appends to the system prompt with no separator, leaving the user turn empty; a lighteval bug, kept for parity
  (without a system prompt the prompt is the user turn);
- the answers are scored as lighteval scores them (`answer_check.py`: its extraction and pass@1, bugs included);
- `--samples k` per problem, pass@1 averaged over the k samples (the paper reports neither k nor a length).

lighteval itself is not a dependency: its pins clash with ours (vllm<0.10.2, nltk==3.9.1, numpy<2), so the
benchmarks run on this package's generation (chat template, resumable answers, vLLM or HF) and math-verify
configured as lighteval's tasks configure their extraction; tests/test_scoring_parity.py runs lighteval's own prompt
functions and metrics in .venv-lighteval on a fixed set of responses and checks every verdict and conversation.

Data: the official files of each Hugging Face dataset repo (`data.SOURCES`), downloaded on first use into
the cache; `--data-dir D` reads `D/<repo id>/<file>` instead. GPQA is gated (needs HF_TOKEN).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, replace

from ..reasoning.data import SYSTEM_PROMPTS as TRAINING_SYSTEM_PROMPTS
from . import answer_check, common
from .answer_check import LETTERS, METRICS, pass_at_1
from .decoding import Decoding
from .errors import EvalError
from .generation import Item, generate_resumable
from .registry import Benchmark, decoding_for
from .store import JsonlStore, write_json

# The paper's training system prompts (appendix B.1), one per Qwen2.5 size: the same text the recipes train with.
SYSTEM_PROMPTS = {f"paper-{size.lower()}": text for size, text in TRAINING_SYSTEM_PROMPTS.items()}
# (hidden_size, num_hidden_layers) of the Qwen2.5 sizes the paper trained, for --system-prompt auto.
QWEN25_SIZES = {(1536, 28): "paper-1.5b", (2048, 36): "paper-3b", (3584, 28): "paper-7b"}
AUTO_FALLBACK = "paper-1.5b"

# lighteval 0.9.2's user turns (its prompt functions math_500 and aime_prompt_fn, gsm8k, gpqa_instruct).
MATH_PROMPT = (
    "Solve the following math problem efficiently and clearly.  The last line of your response should be of the "
    "following format: 'Therefore, the final answer is: $\\boxed{{ANSWER}}$. I hope it is correct' (without quotes) "
    "where ANSWER is just the final number or expression that solves the problem. Think step by step before "
    "answering.\n\n{problem}"
)
GSM8K_PROMPT = "Question: {question}\nAnswer:"
GPQA_PROMPT = (
    "Answer the following multiple choice question. The last line of your response should be of the following "
    "format: 'Answer: $LETTER' (without quotes) where LETTER is one of ABCD. Think step by step before answering."
    "\n\n{question}\n\nA) {A}\nB) {B}\nC) {C}\nD) {D}"
)
IMPLEMENTATION = "openrlhf_cfpo (own generation; lighteval 0.9.2's prompts and scoring, on math-verify)"


@dataclass(frozen=True)
class Problem:
    id: str
    prompt: str  # lighteval's prompt for the task
    gold: str  # the text lighteval reads the gold answer from (a letter for GPQA)


def _math500(rows: list[dict]) -> list[Problem]:
    # lighteval reads MATH-500's gold from the reference solution, not from its answer column
    return [Problem(str(r["unique_id"]), MATH_PROMPT.format(problem=r["problem"]), str(r["solution"])) for r in rows]


def _gsm8k(rows: list[dict]) -> list[Problem]:
    for r in rows:
        if "####" not in r["answer"]:
            raise EvalError(
                f"a GSM8K answer has no '#### <number>' line ({r['answer'][:60]!r}); "
                "use the official openai/gsm8k test split"
            )
    # GSM8K has no ids; the row number in the official test split is stable. lighteval's gold choice: " " + answer.
    return [
        Problem(f"test-{i}", GSM8K_PROMPT.format(question=r["question"]), f" {r['answer']}") for i, r in enumerate(rows)
    ]


def _aime24(rows: list[dict]) -> list[Problem]:
    return [
        Problem(str(r.get("id", i)), MATH_PROMPT.format(problem=r["problem"]), str(r["answer"]))
        for i, r in enumerate(rows)
    ]


def gold_position(key: str) -> int:
    """Where the correct answer goes among GPQA's choices (0-3), the same on every run, seed and machine.

    The official file lists the correct answer first. lighteval inserts it at a random position among the three
    incorrect ones (kept in file order); here the position is drawn from the question's id, so it is independent of
    --limit and of any random state.
    """
    return int(hashlib.sha256(f"gpqa/{key}".encode()).hexdigest(), 16) % 4


def gpqa_problem(row: dict) -> Problem:
    key = str(row.get("Record ID") or row["Question"])
    choices = [row["Incorrect Answer 1"], row["Incorrect Answer 2"], row["Incorrect Answer 3"]]
    gold = gold_position(key)
    choices.insert(gold, row["Correct Answer"])
    prompt = GPQA_PROMPT.format(question=row["Question"], **dict(zip(LETTERS, choices)))
    return Problem(key, prompt, LETTERS[gold])


def _gpqa(rows: list[dict]) -> list[Problem]:
    return [gpqa_problem(r) for r in rows]


def conversation(bench: Benchmark, problem: Problem, system: str | None) -> tuple[str | None, list[str]]:
    """(system turn, user turns) as lighteval 0.9.2 builds them with --use-chat-template [--system-prompt]."""
    if system is not None and bench.kind == "choice":
        return system + problem.prompt, [""]  # GPQA's prompt is all "instruction": lighteval's bug, kept (see above)
    return system, [problem.prompt]


@dataclass(frozen=True, kw_only=True)
class ReasoningBenchmark(Benchmark):
    data: str  # data.SOURCES key
    fmt: str  # jsonl | parquet | csv
    split: str  # which split of the hub dataset that file is
    load: Callable[[list[dict]], list[Problem]]
    kind: str  # its lighteval metric, a key of answer_check.METRICS: math | gsm8k | choice
    lighteval: str = ""  # the lighteval task it reproduces


def _declare(name: str, column: str, **data) -> ReasoningBenchmark:
    return ReasoningBenchmark(
        name=name,
        module=__name__,
        suite="reasoning",
        table=5,
        columns=((column, "pass_at_1"),),
        results=("pass_at_1", "n_problems", "samples", "n_correct", "n_unparsed"),
        files=(data["data"],),
        decoding=DECODING,
        **data,
    )


# Section 4.1 "Evaluation": sampling at temperature 0.6 and top-p 0.95 "for all evaluations". The paper gives no
# evaluation length; 3072 new tokens is its training "Max Completion Length" (appendix B.1, Table 3), the length the
# trained models learned to finish in. Each of k samples per problem (`--samples`) gets its own seed.
DECODING = Decoding(max_new_tokens=3072, temperature=0.6, top_p=0.95)
# In the column order of the paper's Tables 5-10; pass@1 as a fraction, as the paper prints it.
BENCHMARKS = {
    b.name: b
    for b in (
        _declare(
            "math500",
            "MATH500",
            data="HuggingFaceH4/MATH-500/test.jsonl",
            fmt="jsonl",
            split="HuggingFaceH4/MATH-500 test",
            load=_math500,
            kind="math",
            lighteval="lighteval|math_500|0|0",
        ),
        _declare(
            "gsm8k",
            "GSM8K",
            data="openai/gsm8k/main/test-00000-of-00001.parquet",
            fmt="parquet",
            split="openai/gsm8k main test",
            load=_gsm8k,
            kind="gsm8k",
            lighteval="lighteval|gsm8k|0|0",
        ),
        _declare(
            "gpqa_diamond",
            "GPQA-Diamond",
            data="Idavidrein/gpqa/gpqa_diamond.csv",
            fmt="csv",
            split="Idavidrein/gpqa gpqa_diamond train",
            load=_gpqa,
            kind="choice",
            lighteval="lighteval|gpqa:diamond|0|0",
        ),
        _declare(
            "aime24",
            "AIME24",
            data="HuggingFaceH4/aime_2024/data/train-00000-of-00001.parquet",
            fmt="parquet",
            split="HuggingFaceH4/aime_2024 train",
            load=_aime24,
            kind="math",
            lighteval="lighteval|aime24|0|0",
        ),
    )
}


def add_arguments(parser) -> None:
    parser.add_argument(
        "--system-prompt",
        default="auto",
        metavar="auto|paper-1.5b|paper-3b|paper-7b|none|TEXT",
        help="the system turn: auto (default) takes the paper's training prompt for the checkpoint's "
        "Qwen2.5 size (appendix B.1; the 1.5B one for other models), paper-* names one, none "
        "sends no system turn, anything else is used as the prompt text",
    )
    parser.add_argument(
        "--samples",
        type=common.positive,
        default=1,
        help="samples per problem; pass@1 is averaged over them (default 1)",
    )


def load_problems(bench: Benchmark, files, limit: int | None) -> list[Problem]:
    rows = {"jsonl": files.jsonl, "parquet": files.parquet, "csv": files.csv}[bench.fmt](bench.data)
    try:
        problems = bench.load(common.first(rows, limit))
    except KeyError as e:
        raise EvalError(f"{bench.data} has no field {e} in its rows; use the official file of {bench.split}") from None
    if not problems:
        raise EvalError(f"{bench.data} has no problems; use the official file of {bench.split}")
    ids = [p.id for p in problems]
    if len(set(ids)) != len(ids):
        raise EvalError(f"{bench.data} repeats problem ids; use the official file of {bench.split}")
    return problems


def resolve_system_prompt(choice: str, model: str, revision: str | None = None) -> tuple[str | None, str]:
    """(system prompt or None for no system turn, how it was chosen)."""
    if choice in SYSTEM_PROMPTS:
        return SYSTEM_PROMPTS[choice], choice
    if choice == "none":
        return None, "none"
    if choice != "auto":
        return choice, "custom"
    from transformers import AutoConfig

    try:
        cfg = AutoConfig.from_pretrained(model, revision=revision)
    except (OSError, ValueError) as e:
        raise EvalError(
            f"cannot read the config of --model {model} to pick the paper's system prompt "
            f"({' '.join(str(e).split())}); "
            f"pass --system-prompt {'|'.join(SYSTEM_PROMPTS)} or your own text"
        ) from None
    size = (getattr(cfg, "hidden_size", None), getattr(cfg, "num_hidden_layers", None))
    name = QWEN25_SIZES.get(size) if getattr(cfg, "model_type", None) == "qwen2" else None
    if name:
        return SYSTEM_PROMPTS[name], f"auto: Qwen2.5 hidden_size={size[0]} layers={size[1]} -> {name}"
    return SYSTEM_PROMPTS[AUTO_FALLBACK], f"auto: not one of the paper's Qwen2.5 sizes -> {AUTO_FALLBACK}"


def _check_protocol(out, protocol: dict) -> None:
    """Answers on disk are reused only under the protocol that produced them."""
    path, answers = out / "protocol.json", out / "answers.jsonl"
    has_answers = answers.exists() and answers.stat().st_size > 0
    if path.exists() and has_answers:
        prev = json.loads(path.read_text(encoding="utf-8"))
        changed = sorted(k for k in set(prev) | set(protocol) if prev.get(k) != protocol.get(k))
        if changed:
            raise EvalError(
                f"{out} holds answers generated with another {', '.join(changed)}; "
                "pass another --output, rerun with the same settings, or delete that folder"
            )
    else:
        write_json(path, protocol)


def score(bench: Benchmark, problems: list[Problem], answers: dict, samples: int) -> tuple[dict, list[dict]]:
    correct_by_problem, records = [], []
    by_sample = [0] * samples
    n_unparsed = 0
    metric = METRICS[bench.kind]
    for p in problems:
        gold = metric.read_gold(p.gold)
        flags = []
        for j in range(samples):
            response = answers[item_id(p.id, j)]["turns"][0]
            extracted, ok = metric.check(response, gold)
            flags.append(ok)
            by_sample[j] += ok
            n_unparsed += extracted is None
            records.append(
                {
                    "id": item_id(p.id, j),
                    "problem_id": p.id,
                    "sample": j,
                    "gold": p.gold,
                    "gold_extracted": str(gold[0]) if gold else None,
                    "extracted": extracted,
                    "correct": ok,
                }
            )
        correct_by_problem.append(flags)
    metrics = {
        "pass_at_1": pass_at_1(correct_by_problem),
        "n_problems": len(problems),
        "samples": samples,
        "n_correct": sum(sum(c) for c in correct_by_problem),
        "n_unparsed": n_unparsed,
        "accuracy_by_sample": {str(j): c / len(problems) for j, c in enumerate(by_sample)},
    }
    return metrics, records


def item_id(problem_id: str, sample: int) -> str:
    return f"{problem_id}#{sample}"


def run(args) -> dict:
    bench = BENCHMARKS[args.command]
    files = common.data_files(args)
    problems = load_problems(bench, files, args.limit)
    system, system_source = resolve_system_prompt(args.system_prompt, args.model_ref.source, args.model_ref.revision)
    out = common.bench_dir(args, bench.name)
    dec = decoding_for(bench.name, max_new_tokens=args.max_new_tokens)
    protocol = {
        "system_prompt": system,
        "decoding": dec.to_dict(),
        "seed": args.seed,
        "prompt": f"{answer_check.REFERENCE} {bench.lighteval}",
    }
    _check_protocol(out, protocol)

    # Sample-major order with one seed per sample: each sample is a batch-friendly group of its own, and no
    # two samples of a problem can share a random stream.
    turns = {p.id: conversation(bench, p, system) for p in problems}
    items = [
        Item(
            item_id(p.id, j),
            turns[p.id][1],
            replace(dec, seed=args.seed + j),
            {"problem_id": p.id, "sample": j},
            system=turns[p.id][0],
        )
        for j in range(args.samples)
        for p in problems
    ]
    answers = generate_resumable(
        items, JsonlStore(out / "answers.jsonl"), common.backend_factory(args), args.batch_size
    )

    metric = METRICS[bench.kind]
    metrics, records = score(bench, problems, answers, args.samples)
    scored = JsonlStore(out / "scored.jsonl")
    scored.path.unlink(missing_ok=True)
    scored.append(records)
    settings = {
        **common.base_settings(args, bench.name, answers),
        "implementation": IMPLEMENTATION,
        "dataset": bench.split,
        "data_file": bench.data,
        "system_prompt": system,
        "system_prompt_choice": system_source,
        "protocol": {
            "reference": answer_check.REFERENCE,
            "task": bench.lighteval,
            "conversation": (
                "system prompt + lighteval's prompt as one system turn, an empty user turn (lighteval's GPQA placement)"
                if system is not None and bench.kind == "choice"
                else "system prompt, then lighteval's prompt as the user turn"
                if system is not None
                else "lighteval's prompt as the user turn"
            ),
            "metric": metric.name,
            "answer_extraction": metric.extraction,
            "gold_position": "sha256 of the Record ID (gold_position())" if bench.kind == "choice" else None,
        },
        "decoding": dec.to_dict(),
        "sample_seeds": [args.seed + j for j in range(args.samples)],
        "chat_template_applied": True,
        **common.versions("math-verify", "latex2sympy2_extended"),
    }
    return common.write_results(out, bench.name, metrics, settings)
