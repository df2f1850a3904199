"""Decoding settings of a benchmark's answers, and the smoke-run length cap.

Each benchmark declares its settings beside its protocol (`BENCHMARKS` in its module, with the official
harness each value follows); `registry.decoding_for` reads them. `--max-new-tokens` overrides the length for
smoke runs only; the override is recorded in results.json.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

# Below this a temperature means greedy decoding (FastChat uses the same cut-off).
GREEDY_BELOW = 1e-4


@dataclass(frozen=True)
class Decoding:
    max_new_tokens: int
    temperature: float = 0.0
    top_p: float = 1.0
    seed: int | None = None  # a sampling seed for these requests; None: the run's --seed

    @property
    def greedy(self) -> bool:
        return self.temperature < GREEDY_BELOW

    def to_dict(self) -> dict:
        d = asdict(self)
        if self.seed is None:
            del d["seed"]
        return d
