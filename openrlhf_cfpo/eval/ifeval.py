"""IFEval: greedy answers from our generator, scored by lm-eval's IFEval instruction checkers.

Generating here (rather than inside lm-eval) gives IFEval the same chat template, resumable answers and
`--limit` as the judged benchmarks; the scoring is lm-eval's `process_results` and inst-level aggregation,
unchanged. lm-eval's IFEval module downloads NLTK's punkt_tab when imported, so the data is checked for
(and fetched, with a clear error when that fails) before generation, never at import time.

lm-eval's checkers draw from Python's ``random`` where an instruction's arguments are out of range: for
``keywords:letter_frequency`` with a letter outside a-z (official keys 1122 ``#`` and 1129 ``!``) it checks a random
letter, so an unseeded scorer gives those prompts a verdict that changes from run to run (on the official GPT-4
responses, prompt-level strict 76.71, 76.89 or 77.08). Each prompt is scored after ``random.seed(SCORING_SEED.format(
key=...))``: the same responses always get the same score, whatever the order, ``--limit`` or process.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from . import common
from .decoding import Decoding
from .errors import EvalError
from .generation import Item, generate_resumable
from .registry import Benchmark, decoding_for
from .store import JsonlStore

NAME = "ifeval"
DATA = "ifeval/input_data.jsonl"
BENCHMARKS = {
    NAME: Benchmark(
        name=NAME,
        module=__name__,
        suite="rlhf",
        table=1,
        columns=(("IFEval", "prompt_strict"),),  # prompt-level strict
        results=("prompt_strict", "prompt_loose", "inst_strict", "inst_loose"),
        files=(DATA,),
        decoding=Decoding(max_new_tokens=1280, temperature=0.0),  # lm-eval's ifeval.yaml: greedy, max_gen_toks 1280
    )
}
NLTK_RESOURCE = "punkt_tab"
# Python's random is seeded with this, per prompt, before lm-eval's checkers of that prompt run (see the docstring).
SCORING_SEED = "ifeval-{key}"


def ensure_nltk_data() -> None:
    import nltk

    try:
        nltk.data.find(f"tokenizers/{NLTK_RESOURCE}")
    except LookupError:
        try:
            ok = nltk.download(NLTK_RESOURCE, quiet=True, raise_on_error=True)
        except Exception as e:  # nltk raises bare ValueError/URLError variants
            ok, err = False, e
        else:
            err = None
        if not ok:
            raise EvalError(
                f"IFEval needs NLTK's {NLTK_RESOURCE} data and it could not be downloaded ({err}); "
                f"run `python -m nltk.downloader {NLTK_RESOURCE}` where the network is reachable, or set NLTK_DATA"
            ) from None


def score(docs: Sequence[dict], responses: Sequence[str]) -> dict:
    """Prompt- and instruction-level accuracy (percent), strict and loose, as lm-eval computes them."""
    ensure_nltk_data()
    from lm_eval.tasks.ifeval.utils import agg_inst_level_acc, process_results

    outside = random.getstate()
    try:
        rows = []
        for doc, resp in zip(docs, responses):
            random.seed(SCORING_SEED.format(key=doc["key"]))
            rows.append(process_results(doc, [resp]))
    finally:
        random.setstate(outside)
    n = len(rows)
    return {
        "prompt_strict": 100 * sum(r["prompt_level_strict_acc"] for r in rows) / n,
        "prompt_loose": 100 * sum(r["prompt_level_loose_acc"] for r in rows) / n,
        "inst_strict": 100 * agg_inst_level_acc([r["inst_level_strict_acc"] for r in rows]),
        "inst_loose": 100 * agg_inst_level_acc([r["inst_level_loose_acc"] for r in rows]),
        "n_prompts": n,
    }


def run(args) -> dict:
    docs = common.first(common.data_files(args).jsonl(DATA), args.limit)
    if not docs:
        raise EvalError(f"{DATA} has no prompts; use the official IFEval input_data.jsonl")
    ensure_nltk_data()
    out = common.bench_dir(args, NAME)
    dec = decoding_for(NAME, max_new_tokens=args.max_new_tokens)
    items = [Item(str(d["key"]), [d["prompt"]], dec) for d in docs]
    answers = generate_resumable(
        items, JsonlStore(out / "answers.jsonl"), common.backend_factory(args), args.batch_size
    )
    metrics = score(docs, [answers[str(d["key"])]["turns"][0] for d in docs])
    settings = {
        **common.base_settings(args, NAME, answers),
        "decoding": dec.to_dict(),
        "chat_template_applied": True,
        "scoring_seed": f"random.seed({SCORING_SEED!r}) before each prompt's checkers",
        **common.versions("lm_eval"),
    }
    return common.write_results(out, NAME, metrics, settings)
