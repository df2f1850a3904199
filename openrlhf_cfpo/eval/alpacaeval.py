"""AlpacaEval 2.0 through the alpaca-eval library: raw and length-controlled win rate against GPT-4 Turbo.

alpaca-eval supplies the protocol: the `weighted_alpaca_eval_gpt4_turbo` annotator config (its prompt
file, request settings and logprob parser), the seeded random swap of the two outputs, and the
length-controlled GLM. Requests go through our judge client (concurrency, retries, cache) instead of
alpaca-eval's own decoder, with the paper's judge model by default. The reference outputs are read as a
file, because the library's dataset script does not load with datasets >= 4.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from pathlib import Path

from . import common
from .decoding import Decoding
from .errors import EvalError
from .generation import Item, generate_resumable
from .judge import make_judge
from .registry import Benchmark, decoding_for
from .store import JsonlStore, write_json

NAME = "alpaca_eval"
REFERENCES = "alpaca_eval/alpaca_eval_gpt4_baseline.json"
GAMED = "alpaca_eval/df_gamed.csv"  # instruction difficulties and the gamed baselines the LC GLM is fit with
BENCHMARKS = {
    NAME: Benchmark(
        name=NAME,
        module=__name__,
        suite="rlhf",
        table=1,
        columns=(("AlpacaEval-LC", "lc_win_rate"), ("AlpacaEval-WR", "win_rate")),
        results=("lc_win_rate", "win_rate", "avg_length"),
        files=(REFERENCES, GAMED),
        # AlpacaEval itself fixes no decoding; the alpaca-eval package's model configs overwhelmingly use
        # temperature 0.7 and max_new_tokens 2048, so we follow that prevailing setting.
        decoding=Decoding(max_new_tokens=2048, temperature=0.7),
        judge="gpt-4.1",  # the paper's judge; AlpacaEval 2.0's leaderboard uses gpt-4-1106-preview
    )
}
ANNOTATOR = "weighted_alpaca_eval_gpt4_turbo"
SWITCH_COLUMN = "is_switched_outputs"


def annotator_config() -> tuple[dict, str]:
    """alpaca-eval's config for the AlpacaEval 2.0 annotator and its prompt template, read from the package."""
    import alpaca_eval
    import yaml

    root = Path(alpaca_eval.__file__).parent / "evaluators_configs"
    config = yaml.safe_load((root / ANNOTATOR / "configs.yaml").read_text())[ANNOTATOR]
    template = (root / config["prompt_template"]).read_text()
    return config, template


def _switcher():
    from alpaca_eval.processors import RandomSwitchTwoColumnsProcessor

    def flip(df):
        if df.empty or "preference" not in df.columns:
            return df
        return df.assign(preference=3 - df["preference"])

    # Seeded on the instruction as alpaca-eval's PairwiseAnnotator does, so the swap is reproducible.
    return RandomSwitchTwoColumnsProcessor(
        two_columns_to_switch=["output_1", "output_2"],
        fn_replace_if_switch=flip,
        random_seed_columns=["instruction"],
        _switch_column=SWITCH_COLUMN,
    )


def build_requests(df, config: dict, template: str):
    """The swapped frame and one chat request per row, exactly as alpaca-eval would send them."""
    from alpaca_eval import utils as ae_utils

    swapped = _switcher().preprocess(df)
    prompts, _ = ae_utils.make_prompts(swapped, template, batch_size=1)
    kwargs = {k: v for k, v in config["completions_kwargs"].items() if k != "model_name"}
    return swapped, [{"messages": ae_utils.prompt_to_chatml(p), **kwargs} for p in prompts]


def parse_preferences(swapped, responses: Sequence[dict], config: dict):
    """alpaca-eval preferences in [1, 2] (2: output_2, our model, is better), the swap undone."""
    from alpaca_eval.completion_parsers import logprob_parser

    prefs = []
    for resp in responses:
        try:
            prefs.append(logprob_parser(resp["choices"][0], **config["completion_parser_kwargs"])[0])
        except (AssertionError, KeyError, TypeError, IndexError):
            raise EvalError(
                "the judge returned no token logprobs; AlpacaEval 2.0's weighted annotator needs an endpoint "
                "that supports logprobs/top_logprobs (OpenAI GPT-4 class models or vLLM)"
            ) from None
    swapped = swapped.assign(preference=prefs)
    return _switcher().postprocess(swapped)


@contextlib.contextmanager
def _gamed_file(path: Path):
    """Let alpaca-eval's GLM read df_gamed.csv from our resolved file instead of the hub.

    The library fetches it with a hard-coded hf_hub_download; pointing that one name at our file keeps
    --data-dir and the shared download cache working offline without changing the computation.
    """
    from alpaca_eval.metrics import glm_winrate

    original = glm_winrate.hf_hub_download
    glm_winrate.hf_hub_download = lambda *a, **k: str(path)
    try:
        yield
    finally:
        glm_winrate.hf_hub_download = original


def win_rates(annotations, gamed_csv: Path) -> dict:
    """Raw and length-controlled win rates (percent) of output_2 over output_1 via alpaca-eval's metrics."""
    import logging

    from alpaca_eval.metrics import get_length_controlled_winrate

    logging.getLogger().setLevel(max(logging.getLogger().level, logging.ERROR))
    with _gamed_file(gamed_csv):
        m = get_length_controlled_winrate(annotations, save_weights_dir=None, is_warn_extreme_changes=False)
    return {
        "lc_win_rate": float(m["length_controlled_winrate"]),
        "win_rate": float(m["win_rate"]),
        "lc_standard_error": float(m["lc_standard_error"]),
        "standard_error": float(m["standard_error"]),
        "avg_length": float(annotations["output_2"].str.len().mean()),
        "n_total": int(m["n_total"]),
    }


def run(args) -> dict:
    import pandas as pd

    files = common.data_files(args)
    refs = files.json(REFERENCES)
    gamed = files.path(GAMED)
    refs = [dict(r, index=i) for i, r in enumerate(refs)]  # index: the row in the full set, which the GLM needs
    refs = common.first(refs, args.limit)
    config, template = annotator_config()
    judge = make_judge(args, common.cache_dir(args))

    out = common.bench_dir(args, NAME)
    dec = decoding_for(NAME, max_new_tokens=args.max_new_tokens)
    items = [Item(str(r["index"]), [r["instruction"]], dec) for r in refs]
    answers = generate_resumable(
        items, JsonlStore(out / "answers.jsonl"), common.backend_factory(args), args.batch_size
    )
    generator = args.model_ref.name
    # The model outputs file in alpaca-eval's own format, for use with its tools.
    write_json(
        out / "model_outputs.json",
        [
            {
                "instruction": r["instruction"],
                "output": answers[str(r["index"])]["turns"][0],
                "generator": generator,
                "dataset": r.get("dataset", ""),
            }
            for r in refs
        ],
    )

    df = pd.DataFrame(
        {
            "instruction": [r["instruction"] for r in refs],
            "output_1": [r["output"] for r in refs],
            "output_2": [answers[str(r["index"])]["turns"][0] for r in refs],
            "generator_1": [r.get("generator", "gpt4_1106_preview") for r in refs],
            "generator_2": generator,
            "index": [r["index"] for r in refs],
            "annotator": ANNOTATOR,
        }
    )
    swapped, requests = build_requests(df, config, template)
    responses = judge.complete_many(requests, desc="alpaca-eval")
    annotations = parse_preferences(swapped, responses, config)
    annotations.to_json(out / "annotations.json", orient="records", indent=1, force_ascii=False)
    metrics = win_rates(annotations, gamed)
    settings = {
        **common.base_settings(args, NAME, answers),
        **judge.settings(),
        "annotator_config": ANNOTATOR,
        "reference_generator": df["generator_1"].iloc[0] if len(df) else None,
        "decoding": dec.to_dict(),
        **common.versions("alpaca-eval"),
    }
    return common.write_results(out, NAME, metrics, settings)
