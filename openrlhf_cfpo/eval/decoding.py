"""Per-benchmark decoding settings: the one place where generation lengths and temperatures are chosen.

Each value follows the benchmark's official harness:
- AlpacaEval 2.0: the alpaca-eval package's model configs overwhelmingly use temperature 0.7 and
  max_new_tokens 2048; AlpacaEval itself fixes nothing, so we follow that prevailing setting.
- Arena-Hard v0.1: `config/gen_answer_config.yaml` of arena-hard-auto: temperature 0.0, max_tokens 4096.
- MT-Bench: FastChat `llm_judge/gen_model_answer.py`: max_new_token 1024 and a temperature per category
  (0.7 writing/roleplay, 0.1 stem/humanities, 0.0 extraction/math/coding/reasoning); the second turn
  is generated with the first question and answer in the conversation.
- IFEval: lm-eval's `ifeval.yaml`: greedy, max_gen_toks 1280.
- MATH500, GSM8K, AIME24, GPQA-Diamond (the paper's reasoning evaluation, section 4.1 "Evaluation"):
  sampling at temperature 0.6 and top-p 0.95 "for all evaluations". The paper gives no evaluation length;
  3072 new tokens is its training "Max Completion Length" (appendix B.1, Table 3), the length the trained
  models learned to finish in. Each of k samples per problem (`--samples`) gets its own seed.

`--max-new-tokens` overrides the length for smoke runs only; the override is recorded in results.json.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Optional

# Below this a temperature means greedy decoding (FastChat uses the same cut-off).
GREEDY_BELOW = 1e-4


@dataclass(frozen=True)
class Decoding:
    max_new_tokens: int
    temperature: float = 0.0
    top_p: float = 1.0
    seed: Optional[int] = None  # a sampling seed for these requests; None: the run's --seed


    @property
    def greedy(self) -> bool:
        return self.temperature < GREEDY_BELOW

    def to_dict(self) -> dict:
        d = asdict(self)
        if self.seed is None:
            del d["seed"]
        return d


DECODING = {
    "alpaca_eval": Decoding(max_new_tokens=2048, temperature=0.7),
    "arena_hard": Decoding(max_new_tokens=4096, temperature=0.0),
    "ifeval": Decoding(max_new_tokens=1280, temperature=0.0),
    "mt_bench": Decoding(max_new_tokens=1024, temperature=0.7),  # default; categories below override
    **{name: Decoding(max_new_tokens=3072, temperature=0.6, top_p=0.95)
       for name in ("math500", "gsm8k", "aime24", "gpqa_diamond")},
}

MT_BENCH_CATEGORY_TEMPERATURE = {
    "writing": 0.7,
    "roleplay": 0.7,
    "extraction": 0.0,
    "math": 0.0,
    "coding": 0.0,
    "reasoning": 0.0,
    "stem": 0.1,
    "humanities": 0.1,
}


def decoding_for(benchmark: str, category: Optional[str] = None, max_new_tokens: Optional[int] = None) -> Decoding:
    """The settings for one benchmark (and MT-Bench category), with the optional smoke-run length cap."""
    dec = DECODING[benchmark]
    if benchmark == "mt_bench" and category is not None:
        dec = replace(dec, temperature=MT_BENCH_CATEGORY_TEMPERATURE.get(category, dec.temperature))
    if max_new_tokens is not None:
        dec = replace(dec, max_new_tokens=max_new_tokens)
    return dec
