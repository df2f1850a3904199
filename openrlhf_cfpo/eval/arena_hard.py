"""Arena-Hard v0.1: pairwise judging against gpt-4-0314 with swapped positions, weighted score and bootstrap CI.

Protocol (arena-hard-auto v0.1): each question is judged twice, once with the baseline as assistant A and
once as assistant B. A verdict label is read with the config's regex; a judgment with no label at all is
continued (the judge sees its own judgment and is asked to finish with a verdict) up to the config's
`number_of_judgment_attempts` (2 in v0.1), and games still without a single label count as unparsed
(`n_unparsed_games` in results.json). Strong verdicts (`>>`) count as three battles, ties as half a win
each way. With a single model against the anchored baseline, the Bradley-Terry maximum-likelihood win
rate that arena-hard's `show_result.py` reports reduces to this weighted win share, so it is computed in
closed form. The 95% interval comes from resampling battles.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

from . import common
from .decoding import Decoding
from .errors import EvalError
from .generation import Item, generate_resumable
from .judge import make_judge, message_text
from .registry import Benchmark, decoding_for
from .store import JsonlStore

NAME = "arena_hard"
BASELINE_MODEL = "gpt-4-0314"
QUESTIONS = "arena-hard-v0.1/question.jsonl"
BASELINE_ANSWERS = f"arena-hard-v0.1/model_answer/{BASELINE_MODEL}.jsonl"
JUDGE_CONFIG = "config/judge_config.yaml"
BENCHMARKS = {
    NAME: Benchmark(
        name=NAME,
        module=__name__,
        suite="rlhf",
        table=1,
        columns=(("Arena-Hard", "score"),),
        results=("score", "ci_low", "ci_high"),
        files=(QUESTIONS, BASELINE_ANSWERS, JUDGE_CONFIG),
        # arena-hard-auto's config/gen_answer_config.yaml: temperature 0.0, max_tokens 4096.
        decoding=Decoding(max_new_tokens=4096, temperature=0.0),
        judge="gpt-4.1",  # the paper's judge; arena-hard v0.1 itself shipped with gpt-4-1106-preview
    )
}
STRONG_WEIGHT = 3
BOOTSTRAP_ROUNDS = 100
JUDGMENT_ATTEMPTS = 2  # v0.1 judge_config.yaml's number_of_judgment_attempts, used when a config lacks it
# Our wording of the follow-up turn; the protocol only needs the judge to finish with a label.
ASK_AGAIN = "Please finish your judgment now and end it with your final verdict label."

# The model's outcome for each verdict when the model is assistant B; labels outside these five are dropped.
_OUTCOME_AS_B = {
    "B>>A": (1.0, STRONG_WEIGHT),
    "B>A": (1.0, 1),
    "A=B": (0.5, 1),
    "A>B": (0.0, 1),
    "A>>B": (0.0, STRONG_WEIGHT),
}
_SWAP = {"A>>B": "B>>A", "A>B": "B>A", "A=B": "A=B", "B>A": "A>B", "B>>A": "A>>B"}


def load_questions(rows: Sequence[dict]) -> list[tuple[str, str]]:
    """(id, prompt) pairs; reads both the current (`uid`, `prompt`) and the original (`question_id`, `turns`) layout."""
    out = []
    for r in rows:
        if "uid" in r:
            out.append((str(r["uid"]), r["prompt"]))
        else:
            out.append((str(r["question_id"]), r["turns"][0]["content"]))
    return out


def load_answers(rows: Sequence[dict]) -> dict[str, str]:
    out = {}
    for r in rows:
        if "uid" in r:
            content = r["messages"][-1]["content"]
            out[str(r["uid"])] = content["answer"] if isinstance(content, dict) else content
        else:
            out[str(r["question_id"])] = r["choices"][0]["turns"][0]["content"]
    return out


def verdict_labels(judgment: str, pattern: str) -> set[str]:
    return {m.strip() for m in re.findall(pattern, judgment.replace("\n", "")) if m.strip()}


def parse_verdict(judgment: str, pattern: str) -> str | None:
    """The single verdict label in a judgment, or None when there is none or they disagree."""
    labels = verdict_labels(judgment, pattern)
    return labels.pop() if len(labels) == 1 else None


def battles(verdicts: Sequence[tuple[str | None, str | None]]) -> np.ndarray:
    """Model outcomes (1 win, 0.5 tie, 0 loss), strong verdicts repeated; game 1 has the model as B, game 2 as A."""
    out: list[float] = []
    for v1, v2 in verdicts:
        for v in (v1, _SWAP.get(v2) if v2 else None):
            if v in _OUTCOME_AS_B:
                outcome, weight = _OUTCOME_AS_B[v]
                out += [outcome] * weight
    return np.asarray(out, dtype=float)


def score(verdicts, rounds: int = BOOTSTRAP_ROUNDS, seed: int = 0) -> dict:
    b = battles(verdicts)
    if b.size == 0:
        return {"score": float("nan"), "ci_low": float("nan"), "ci_high": float("nan"), "n_battles": 0}
    rng = np.random.default_rng(seed)
    boot = rng.choice(b, size=(rounds, b.size), replace=True).mean(axis=1) * 100
    return {
        "score": float(b.mean() * 100),
        "ci_low": float(np.quantile(boot, 0.025)),
        "ci_high": float(np.quantile(boot, 0.975)),
        "n_battles": int(b.size),
    }


def judge_request(config: dict, question: str, answer_a: str, answer_b: str) -> dict:
    template = config["prompt_template"]
    template = template[0] if isinstance(template, list) else template
    # Both placeholder spellings arena-hard has used, so either config version formats.
    user = template.format(
        question_1=question,
        answer_1=answer_a,
        answer_2=answer_b,
        QUESTION=question,
        ANSWER_A=answer_a,
        ANSWER_B=answer_b,
    )
    messages = [{"role": "system", "content": config["system_prompt"]}] if config.get("system_prompt") else []
    messages.append({"role": "user", "content": user})
    return {
        "messages": messages,
        "temperature": float(config.get("temperature", 0)),
        "max_tokens": int(config.get("max_tokens", 4096)),
    }


def ask_again(request: dict, judgment: str) -> dict:
    """The same game continued: the label-less judgment as the judge's turn, then a request for the verdict.

    This is a different request from the first one, so it gets its own judge-cache entry: a rerun finds
    both attempts cached, and the cached label-less answer is never mistaken for the second attempt.
    """
    messages = request["messages"] + [
        {"role": "assistant", "content": judgment},
        {"role": "user", "content": ASK_AGAIN},
    ]
    return {**request, "messages": messages}


def judge_games(judge, requests: Sequence[dict], pattern: str, attempts: int) -> tuple[list[str], list[int]]:
    """Each game's judgment (all attempts joined by newlines, as arena-hard parses them) and its number of attempts."""
    requests = list(requests)
    texts, used = [""] * len(requests), [0] * len(requests)
    todo = list(range(len(requests)))
    for attempt in range(attempts):
        desc = "arena-hard" if attempt == 0 else f"arena-hard, asked again ({attempt + 1}/{attempts})"
        responses = judge.complete_many([requests[g] for g in todo], desc=desc)
        again = []
        for g, resp in zip(todo, responses):
            new = message_text(resp)
            texts[g] = f"{texts[g]}\n{new}" if used[g] else new
            used[g] += 1
            # Only a judgment with no label is asked again; disagreeing labels are final (unparsed), as in arena-hard.
            if not verdict_labels(texts[g], pattern):
                requests[g] = ask_again(requests[g], new)
                again.append(g)
        todo = again
        if not todo:
            break
    return texts, used


def run(args) -> dict:
    files = common.data_files(args)
    questions = common.first(load_questions(files.jsonl(QUESTIONS)), args.limit)
    baseline = load_answers(files.jsonl(BASELINE_ANSWERS))
    config = files.yaml(JUDGE_CONFIG)
    missing = [qid for qid, _ in questions if qid not in baseline]
    if missing:
        raise EvalError(
            f"{BASELINE_ANSWERS} has no answer for {len(missing)} questions (first {missing[0]}); use the official file"
        )
    attempts = config.get("number_of_judgment_attempts", JUDGMENT_ATTEMPTS)
    if not isinstance(attempts, int) or attempts < 1:
        raise EvalError(
            f"{JUDGE_CONFIG} sets number_of_judgment_attempts to {attempts!r}; "
            "it must be a whole number >= 1 (v0.1 uses 2)"
        )
    judge = make_judge(args, common.cache_dir(args))

    out = common.bench_dir(args, NAME)
    dec = decoding_for(NAME, max_new_tokens=args.max_new_tokens)
    items = [Item(qid, [prompt], dec) for qid, prompt in questions]
    answers = generate_resumable(
        items, JsonlStore(out / "answers.jsonl"), common.backend_factory(args), args.batch_size
    )

    requests = []
    for qid, prompt in questions:
        ours = answers[qid]["turns"][0]
        requests.append(judge_request(config, prompt, baseline[qid], ours))
        requests.append(judge_request(config, prompt, ours, baseline[qid]))
    pattern = config.get("regex_pattern", r"\[\[([AB<>=]+)\]\]")
    judgments, used = judge_games(judge, requests, pattern, attempts)
    verdicts, records = [], []
    for n, (qid, _) in enumerate(questions):
        texts = judgments[2 * n : 2 * n + 2]
        v = (parse_verdict(texts[0], pattern), parse_verdict(texts[1], pattern))
        verdicts.append(v)
        records.append(
            {
                "id": qid,
                "games": [
                    {"model_position": "B", "verdict": v[0], "judgment": texts[0], "attempts": used[2 * n]},
                    {"model_position": "A", "verdict": v[1], "judgment": texts[1], "attempts": used[2 * n + 1]},
                ],
            }
        )
    store = JsonlStore(out / "judgments.jsonl")
    store.path.unlink(missing_ok=True)
    store.append(records)
    if all(v is None for pair in verdicts for v in pair):
        raise EvalError(
            f"none of the {2 * len(records)} games got a verdict label after {attempts} attempts (the first reads "
            f"{records[0]['games'][0]['judgment'][:80]!r}), so no score was written; they are in {store.path} and in "
            f"the judge cache: check that judge {judge.config.model} follows the judge prompt, or rerun with another "
            "--judge-model"
        )
    metrics = score(verdicts, seed=args.seed)
    metrics["n_unparsed_games"] = sum(v is None for pair in verdicts for v in pair)  # after every attempt
    metrics["n_games_asked_again"] = sum(u > 1 for u in used)
    settings = {
        **common.base_settings(args, NAME, answers),
        **judge.settings(),
        "baseline_model": BASELINE_MODEL,
        "decoding": dec.to_dict(),
        "bootstrap_rounds": BOOTSTRAP_ROUNDS,
        "judgment_attempts": attempts,
        "n_questions": len(questions),
    }
    return common.write_results(out, NAME, metrics, settings)
