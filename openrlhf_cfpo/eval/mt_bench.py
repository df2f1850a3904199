"""MT-Bench: single-answer grading (1-10) of both turns, reference-guided for math, reasoning and coding.

Protocol (FastChat llm_judge, `--mode single`): turn 1 is graded with the `single-v1` judge prompt (or
`single-math-v1` with the reference answer), turn 2 with the `-multi-turn` variants that show the whole
conversation. The rating is the number in `[[x]]` (falling back to `[x]`); unparsable ratings are
dropped. The score is the mean over all turn ratings (160 for the full set), plus per-turn means.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import replace

from . import common
from .decoding import Decoding
from .errors import EvalError
from .generation import Item, generate_resumable
from .judge import make_judge, message_text
from .registry import Benchmark, decoding_for
from .store import JsonlStore

NAME = "mt_bench"
REFERENCE_MODEL = "gpt-4"
QUESTIONS = "mt_bench/question.jsonl"
REFERENCES = f"mt_bench/reference_answer/{REFERENCE_MODEL}.jsonl"
JUDGE_PROMPTS = "judge_prompts.jsonl"
BENCHMARKS = {
    NAME: Benchmark(
        name=NAME,
        module=__name__,
        suite="rlhf",
        table=1,
        columns=(("MT-Bench", "score"),),
        results=("score", "turn1", "turn2"),
        files=(QUESTIONS, REFERENCES, JUDGE_PROMPTS),
        # FastChat llm_judge/gen_model_answer.py: max_new_token 1024; the temperature is per category (below).
        decoding=Decoding(max_new_tokens=1024, temperature=0.7),
        judge="gpt-4",  # the paper's MT-Bench judge
    )
}
# FastChat's temperature per question category; the second turn is generated with the first question and answer
# in the conversation.
CATEGORY_TEMPERATURE = {
    "writing": 0.7,
    "roleplay": 0.7,
    "extraction": 0.0,
    "math": 0.0,
    "coding": 0.0,
    "reasoning": 0.0,
    "stem": 0.1,
    "humanities": 0.1,
}
NEED_REFERENCE = ("math", "reasoning", "coding")
JUDGE_TEMPERATURE = 0.0
JUDGE_MAX_TOKENS = 2048

_RATING = re.compile(r"\[\[(\d+\.?\d*)\]\]")
_RATING_FALLBACK = re.compile(r"\[(\d+\.?\d*)\]")


def category_decoding(category: str, max_new_tokens: int | None = None) -> Decoding:
    dec = decoding_for(NAME, max_new_tokens=max_new_tokens)
    return replace(dec, temperature=CATEGORY_TEMPERATURE.get(category, dec.temperature))


def prompt_name(category: str, turn: int) -> str:
    name = "single-math-v1" if category in NEED_REFERENCE else "single-v1"
    return name + ("-multi-turn" if turn == 2 else "")


def parse_rating(judgment: str) -> float | None:
    m = _RATING.search(judgment) or _RATING_FALLBACK.search(judgment)
    return float(m.group(1)) if m else None


def judge_request(
    prompt: dict, question: dict, answers: Sequence[str], turn: int, reference: Sequence[str] | None
) -> dict:
    q = question["turns"]
    fields = {"question": q[0], "answer": answers[0], "question_1": q[0], "answer_1": answers[0]}
    if turn == 2:
        fields.update(question_2=q[1], answer_2=answers[1])
    if reference is not None:
        fields.update(ref_answer_1=reference[0], ref_answer_2=reference[1] if len(reference) > 1 else "")
    messages = [{"role": "system", "content": prompt["system_prompt"]}] if prompt.get("system_prompt") else []
    messages.append({"role": "user", "content": prompt["prompt_template"].format(**fields)})
    return {"messages": messages, "temperature": JUDGE_TEMPERATURE, "max_tokens": JUDGE_MAX_TOKENS}


def score(ratings: Sequence[tuple[int, float | None]]) -> dict:
    """Means over (turn, rating) pairs, unparsable (None) ratings left out."""

    def mean(xs):
        return sum(xs) / len(xs) if xs else float("nan")

    valid = [(t, r) for t, r in ratings if r is not None]
    return {
        "score": mean([r for _, r in valid]),
        "turn1": mean([r for t, r in valid if t == 1]),
        "turn2": mean([r for t, r in valid if t == 2]),
        "n_rated_turns": len(valid),
        "n_unparsed_turns": len(ratings) - len(valid),
    }


def run(args) -> dict:
    files = common.data_files(args)
    questions = common.first(files.jsonl(QUESTIONS), args.limit)
    prompts = {p["name"]: p for p in files.jsonl(JUDGE_PROMPTS)}
    refs = {str(r["question_id"]): r["choices"][0]["turns"] for r in files.jsonl(REFERENCES)}
    for q in questions:
        for turn in (1, 2):
            if prompt_name(q["category"], turn) not in prompts:
                raise EvalError(
                    f"{JUDGE_PROMPTS} has no judge prompt {prompt_name(q['category'], turn)!r}; "
                    "use FastChat's official file"
                )
        if q["category"] in NEED_REFERENCE and str(q["question_id"]) not in refs:
            raise EvalError(
                f"{REFERENCES} has no reference for question {q['question_id']} ({q['category']}); "
                "use FastChat's official file"
            )
    judge = make_judge(args, common.cache_dir(args))

    out = common.bench_dir(args, NAME)
    items = [
        Item(
            str(q["question_id"]),
            list(q["turns"][:2]),
            category_decoding(q["category"], args.max_new_tokens),
            {"category": q["category"]},
        )
        for q in questions
    ]
    answers = generate_resumable(
        items, JsonlStore(out / "answers.jsonl"), common.backend_factory(args), args.batch_size
    )

    requests, index = [], []
    for q in questions:
        qid = str(q["question_id"])
        ref = refs.get(qid) if q["category"] in NEED_REFERENCE else None
        for turn in (1, 2):
            requests.append(
                judge_request(prompts[prompt_name(q["category"], turn)], q, answers[qid]["turns"], turn, ref)
            )
            index.append((qid, q["category"], turn))
    responses = judge.complete_many(requests, desc="mt-bench")
    ratings, records = [], []
    for (qid, cat, turn), resp in zip(index, responses):
        text = message_text(resp)
        rating = parse_rating(text)
        ratings.append((turn, rating))
        records.append(
            {
                "id": f"{qid}/turn{turn}",
                "question_id": qid,
                "category": cat,
                "turn": turn,
                "rating": rating,
                "judgment": text,
            }
        )
    store = JsonlStore(out / "judgments.jsonl")
    store.path.unlink(missing_ok=True)
    store.append(records)
    if not any(r is not None for _, r in ratings):
        raise EvalError(
            f"none of the {len(records)} judgments holds a rating [[1-10]] "
            f"(the first reads {records[0]['judgment'][:80]!r}), "
            f"so no score was written; they are in {store.path} and in the judge cache: check that judge "
            f"{judge.config.model} follows FastChat's prompt, or rerun with another --judge-model"
        )
    metrics = score(ratings)
    by_cat: dict[str, list] = {}
    for (_, cat, _), (_, r) in zip(index, ratings):
        if r is not None:
            by_cat.setdefault(cat, []).append(r)
    metrics["categories"] = {c: sum(v) / len(v) for c, v in sorted(by_cat.items())}
    settings = {
        **common.base_settings(args, NAME, answers),
        **judge.settings(),
        "reference_model": REFERENCE_MODEL,
        "decoding": {
            "max_new_tokens": decoding_for(NAME, max_new_tokens=args.max_new_tokens).max_new_tokens,
            "temperature_by_category": dict(CATEGORY_TEMPERATURE),
        },
        "n_questions": len(questions),
    }
    return common.write_results(out, NAME, metrics, settings)
