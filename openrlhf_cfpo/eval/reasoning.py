"""MATH500, GSM8K, AIME24 and GPQA-Diamond with the paper's reasoning (RLVR) evaluation protocol (Tables 5-10).

Protocol (paper, section 4.1 "Evaluation" and appendix B.1):
- The chat format of training: the paper's system prompt for the model size (appendix B.1, verbatim; chosen
  from the checkpoint's Qwen2.5 size by `--system-prompt auto`) and a user turn holding the problem text
  alone, as OpenR1's GRPO recipe builds it from the dataset's problem column. GPQA's user turn is the
  question, its four choices as `A) ...` to `D) ...`, and one line asking for the letter.
- Sampling at temperature 0.6, top-p 0.95 (`DECODING`), `--samples k` per problem, pass@1 averaged over
  the k samples (the paper reports neither k nor a length; its trained rows fit one sample per problem).
- Math answers: the last `\\boxed{}` checked against the gold answer with math-verify; GPQA: the chosen
  letter, with the choices in a fixed per-question order (`choice_order`). See `answer_check.py`.

The paper ran these through lighteval. lighteval 0.13.0 would install beside torch 2.13 and transformers
5.15, but it pins nltk==3.9.1 (the eval extra pins 3.10.4), latex2sympy2_extended==1.0.6 (math-verify 0.9.0
needs 1.11.0) and vllm<0.10.2 (the openrlhf extra pins 0.29.0), and it builds its own user prompts; so the
benchmarks run on this package's generation (chat template, resumable answers, vLLM or HF) and math-verify,
and results.json says so under settings.implementation.

Data: the official files of each Hugging Face dataset repo (`data.SOURCES`), downloaded on first use into
the cache; `--data-dir D` reads `D/<repo id>/<file>` instead. GPQA is gated (needs HF_TOKEN).
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, replace
from typing import Callable, Optional

from ..reasoning.data import SYSTEM_PROMPTS as TRAINING_SYSTEM_PROMPTS
from . import common
from .answer_check import LETTERS, check_choice, check_math, parse_gold, pass_at_1
from .decoding import Decoding, decoding_for
from .errors import EvalError
from .generation import Item, generate_resumable
from .registry import Benchmark
from .store import JsonlStore, write_json

# The paper's training system prompts (appendix B.1), one per Qwen2.5 size: the same text the recipes train with.
SYSTEM_PROMPTS = {f"paper-{size.lower()}": text for size, text in TRAINING_SYSTEM_PROMPTS.items()}
# (hidden_size, num_hidden_layers) of the Qwen2.5 sizes the paper trained, for --system-prompt auto.
QWEN25_SIZES = {(1536, 28): "paper-1.5b", (2048, 36): "paper-3b", (3584, 28): "paper-7b"}
AUTO_FALLBACK = "paper-1.5b"

# Our wording: the training prompts ask for a boxed answer, and a letter is what GPQA is scored by.
GPQA_INSTRUCTION = "Answer with the letter (A, B, C or D) of the correct choice."
IMPLEMENTATION = "openrlhf_cfpo (own generation + math-verify; the paper used lighteval)"


@dataclass(frozen=True)
class Problem:
    id: str
    prompt: str  # the user turn
    gold: str  # the gold answer (a letter for GPQA)


def _math500(rows: list[dict]) -> list[Problem]:
    return [Problem(str(r["unique_id"]), r["problem"], str(r["answer"])) for r in rows]


def gsm8k_gold(answer: str) -> str:
    """GSM8K's final answer: what follows `####` in the reference solution, thousands separators dropped."""
    if "####" not in answer:
        raise EvalError(f"a GSM8K answer has no '#### <number>' line ({answer[:60]!r}); use the official openai/gsm8k test split")
    return answer.rsplit("####", 1)[1].strip().replace(",", "")


def _gsm8k(rows: list[dict]) -> list[Problem]:
    # GSM8K has no ids; the row number in the official test split is stable.
    return [Problem(f"test-{i}", r["question"], gsm8k_gold(r["answer"])) for i, r in enumerate(rows)]


def _aime24(rows: list[dict]) -> list[Problem]:
    return [Problem(str(r.get("id", i)), r["problem"], str(r["answer"]).strip()) for i, r in enumerate(rows)]


def choice_order(key: str) -> list[int]:
    """A fixed shuffle of GPQA's four choices for one question (0 is the correct answer, 1-3 the incorrect).

    The official file always lists the correct answer first, so the order must be shuffled; hashing the
    question's id makes it the same on every run, seed and machine, and independent of --limit.
    """
    return sorted(range(4), key=lambda i: hashlib.sha256(f"gpqa/{key}/{i}".encode()).hexdigest())


def gpqa_problem(row: dict) -> Problem:
    key = str(row.get("Record ID") or row["Question"])
    options = [row["Correct Answer"], row["Incorrect Answer 1"], row["Incorrect Answer 2"], row["Incorrect Answer 3"]]
    order = choice_order(key)
    lines = [f"{LETTERS[pos]}) {str(options[i]).strip()}" for pos, i in enumerate(order)]
    prompt = f"{str(row['Question']).strip()}\n\n" + "\n".join(lines) + f"\n\n{GPQA_INSTRUCTION}"
    return Problem(key, prompt, LETTERS[order.index(0)])


def _gpqa(rows: list[dict]) -> list[Problem]:
    return [gpqa_problem(r) for r in rows]


@dataclass(frozen=True, kw_only=True)
class ReasoningBenchmark(Benchmark):
    data: str  # data.SOURCES key
    fmt: str  # jsonl | parquet | csv
    split: str  # which split of the hub dataset that file is
    load: Callable[[list[dict]], list[Problem]]
    kind: str  # math | choice


def _declare(name: str, column: str, **data) -> ReasoningBenchmark:
    return ReasoningBenchmark(name=name, module=__name__, suite="reasoning", table=5, columns=((column, "pass_at_1"),),
                              results=("pass_at_1", "n_problems", "samples", "n_correct", "n_unparsed"),
                              files=(data["data"],), decoding=DECODING, **data)


# Section 4.1 "Evaluation": sampling at temperature 0.6 and top-p 0.95 "for all evaluations". The paper gives no
# evaluation length; 3072 new tokens is its training "Max Completion Length" (appendix B.1, Table 3), the length the
# trained models learned to finish in. Each of k samples per problem (`--samples`) gets its own seed.
DECODING = Decoding(max_new_tokens=3072, temperature=0.6, top_p=0.95)
# In the column order of the paper's Tables 5-10; pass@1 as a fraction, as the paper prints it.
BENCHMARKS = {b.name: b for b in (
    _declare("math500", "MATH500", data="HuggingFaceH4/MATH-500/test.jsonl", fmt="jsonl",
             split="HuggingFaceH4/MATH-500 test", load=_math500, kind="math"),
    _declare("gsm8k", "GSM8K", data="openai/gsm8k/main/test-00000-of-00001.parquet", fmt="parquet",
             split="openai/gsm8k main test", load=_gsm8k, kind="math"),
    _declare("gpqa_diamond", "GPQA-Diamond", data="Idavidrein/gpqa/gpqa_diamond.csv", fmt="csv",
             split="Idavidrein/gpqa gpqa_diamond train", load=_gpqa, kind="choice"),
    _declare("aime24", "AIME24", data="HuggingFaceH4/aime_2024/data/train-00000-of-00001.parquet", fmt="parquet",
             split="HuggingFaceH4/aime_2024 train", load=_aime24, kind="math"),
)}


def add_arguments(parser) -> None:
    parser.add_argument("--system-prompt", default="auto", metavar="auto|paper-1.5b|paper-3b|paper-7b|none|TEXT",
                        help="the system turn: auto (default) takes the paper's training prompt for the checkpoint's "
                             "Qwen2.5 size (appendix B.1; the 1.5B one for other models), paper-* names one, none "
                             "sends no system turn, anything else is used as the prompt text")
    parser.add_argument("--samples", type=common.positive, default=1,
                        help="samples per problem; pass@1 is averaged over them (default 1)")


def load_problems(bench: Benchmark, files, limit: Optional[int]) -> list[Problem]:
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


def resolve_system_prompt(choice: str, model: str, revision: Optional[str] = None) -> tuple[Optional[str], str]:
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
            f"cannot read the config of --model {model} to pick the paper's system prompt ({' '.join(str(e).split())}); "
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
    for p in problems:
        gold = parse_gold(p.gold) if bench.kind == "math" else p.gold
        flags = []
        for j in range(samples):
            response = answers[item_id(p.id, j)]["turns"][0]
            extracted, ok = check_math(response, gold) if bench.kind == "math" else check_choice(response, gold)
            flags.append(ok)
            by_sample[j] += ok
            n_unparsed += extracted is None
            records.append({"id": item_id(p.id, j), "problem_id": p.id, "sample": j, "gold": p.gold,
                            "extracted": extracted, "correct": ok})
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
    protocol = {"system_prompt": system, "decoding": dec.to_dict(), "seed": args.seed,
                "gpqa_instruction": GPQA_INSTRUCTION if bench.kind == "choice" else None}
    _check_protocol(out, protocol)

    # Sample-major order with one seed per sample: each sample is a batch-friendly group of its own, and no
    # two samples of a problem can share a random stream.
    items = [Item(item_id(p.id, j), [p.prompt], replace(dec, seed=args.seed + j),
                  {"problem_id": p.id, "sample": j}, system=system)
             for j in range(args.samples) for p in problems]
    answers = generate_resumable(items, JsonlStore(out / "answers.jsonl"), common.backend_factory(args), args.batch_size)

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
        "user_turn": "the problem text" if bench.kind == "math" else "question, choices A)-D), then gpqa_instruction",
        "gpqa_instruction": protocol["gpqa_instruction"],
        "choice_order": "sha256 of the Record ID per question (choice_order())" if bench.kind == "choice" else None,
        "decoding": dec.to_dict(),
        "sample_seeds": [args.seed + j for j in range(args.samples)],
        "answer_extraction": "last \\boxed{}, math-verify" if bench.kind == "math" else "letter in last \\boxed{}, else 'Answer: X'",
        "chat_template_applied": True,
        **common.versions("math-verify", "latex2sympy2_extended"),
    }
    return common.write_results(out, bench.name, metrics, settings)
