"""The paper's Table 1 (instruction following), Table 2 (capabilities, with the alignment tax) and Table 5
(reasoning: pass@1 on MATH500, GSM8K, GPQA-Diamond, AIME24, one row per checkpoint) from results.

Every score is printed with the number of items it averages over, where results.json records it, and with how its run
departed from the benchmark's protocol (``--limit``, ``--max-new-tokens``, ``--samples``, the system prompt): a smoke
run never reads as a full one. A column whose runs differ in that respect is refused unless ``allow_mixed``.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePath

from . import registry
from .errors import EvalError


def columns(table: int) -> tuple[tuple[str, str, str], ...]:
    """(column, benchmark folder, results.json key) of one of the paper's tables, from the registry."""
    return tuple(
        (col, b.name, key) for b in registry.benchmarks().values() if b.table == table for col, key in b.columns
    )


# The results.json key that counts what a benchmark's score averages over (the first one a result has).
COUNT_KEYS = ("n_prompts", "n_questions", "n_total", "n_problems")
FULL_PROTOCOL = "the full protocol"


@dataclass(frozen=True)
class Score:
    """A table cell: the value, what it averages over, and how its run departs from the benchmark's protocol."""

    value: float
    n: int | None
    departures: tuple[str, ...]

    def text(self, digits: int) -> str:
        marks = ([f"n={self.n}"] if self.n is not None else []) + list(self.departures)
        return f"{self.value:.{digits}f}" + (f" ({'; '.join(marks)})" if marks else "")


def departures(bench: str, result: dict) -> tuple[str, ...]:
    """How the run behind ``result`` departs from ``bench``'s protocol, as the flags that did it."""
    settings = result.get("settings") or {}
    found = []
    if settings.get("limit") is not None:
        found.append(f"--limit {settings['limit']}")
    declared = registry.benchmarks().get(bench)
    protocol_length = declared.decoding.max_new_tokens if declared and declared.decoding else None
    override = settings.get("max_new_tokens_override")
    if override is not None and override != protocol_length:
        found.append(f"--max-new-tokens {override}")
    if result.get("samples", 1) != 1:  # the paper gives no k: any k is allowed, but one k per column
        found.append(f"--samples {result['samples']}")
    if settings.get("system_prompt_choice") in ("none", "custom"):  # not the paper's prompt for the model size
        found.append(f"system prompt: {settings['system_prompt_choice']}")
    return tuple(found)


def load_run(folder: Path) -> dict:
    if not folder.is_dir():
        raise EvalError(f"{folder} is not a folder; pass the --output folders of `openrlhf-cfpo eval` runs")
    results = {}
    for f in sorted(folder.glob("*/results.json")):
        try:
            results[f.parent.name] = json.loads(f.read_text(encoding="utf-8"))
        except json.JSONDecodeError as e:
            raise EvalError(f"{f} is not valid JSON ({e}); rerun that benchmark to rewrite it") from None
        if not isinstance(results[f.parent.name], dict):
            kind = type(results[f.parent.name]).__name__
            raise EvalError(f"{f} holds a JSON {kind}, not the object a benchmark writes; rerun that benchmark")
    if not results:
        raise EvalError(
            f"{folder} has no <benchmark>/results.json; run `openrlhf-cfpo eval BENCHMARK --output {folder}` first"
        )
    return results


def model_parts(folder: Path, results: dict) -> tuple[str, ...]:
    """The model's name as path components: its folder, or its hub name (the run folder's name for neither)."""
    for r in results.values():
        settings = r.get("settings", {})
        identity = settings.get("model_identity") or {}
        name = (
            identity.get("path") or identity.get("hub") or settings.get("model")
        )  # results before identities: the string
        parts = tuple(p for p in PurePath(name).parts if p not in (".", PurePath(name).anchor)) if name else ()
        if parts:
            return parts
    return (folder.name,)


def row_names(parts: Sequence[tuple[str, ...]], folders: Sequence[Path]) -> list[str]:
    """Each model's last name component, with as many parent components as it takes to tell apart two that share
    it (`cfpo/final`, `rloo/final`); the same model in two run folders is told apart by the run folder."""
    depth = [1] * len(parts)
    while True:
        names = ["/".join(p[-d:]) for p, d in zip(parts, depth)]
        clash = [
            i
            for i, n in enumerate(names)
            if depth[i] < len(parts[i]) and any(m == n and parts[j] != parts[i] for j, m in enumerate(names))
        ]
        if not clash:
            break
        for i in clash:
            depth[i] += 1
    return [f"{n} ({f.name})" if names.count(n) > 1 else n for n, f in zip(names, folders)]


def alignment_tax(avg: float | None, baseline_avg: float | None) -> float | None:
    """Relative drop (percent) of the OpenLLM average against the baseline; negative when it improved."""
    if avg is None or baseline_avg in (None, 0):
        return None
    return 100 * (baseline_avg - avg) / baseline_avg


def _value(results: dict, bench: str, key: str) -> float | None:
    v = results.get(bench, {}).get(key)
    return None if v is None or (isinstance(v, float) and math.isnan(v)) else float(v)


def _score(results: dict, bench: str, key: str) -> Score | None:
    value = _value(results, bench, key)
    if value is None:
        return None
    result = results[bench]
    n = next((int(result[k]) for k in COUNT_KEYS if isinstance(result.get(k), int | float)), None)
    return Score(value, n, departures(bench, result))


def _load(folders: Sequence[Path], baseline: Path | None) -> list[tuple[str, bool, dict]]:
    """(row name, is the baseline, results) per run folder, the baseline first."""
    runs = ([(baseline, True)] if baseline else []) + [(f, False) for f in folders if f != baseline]
    results = [load_run(f) for f, _ in runs]
    names = row_names([model_parts(f, res) for (f, _), res in zip(runs, results)], [f for f, _ in runs])
    return [
        (name + (" (baseline)" if is_base else ""), is_base, res)
        for name, (_, is_base), res in zip(names, runs, results)
    ]


def build_tables(folders: Sequence[Path], baseline: Path | None = None, loaded=None) -> tuple[list[list], list[list]]:
    loaded = loaded if loaded is not None else _load(folders, baseline)
    base_avg = _value(loaded[0][2], "openllm", "average") if baseline else None
    table1, table2 = columns(1), columns(2)
    t1 = [["Model"] + [c for c, _, _ in table1]]
    t2 = [["Model"] + [c for c, _, _ in table2] + ["Alignment tax (%)"]]
    for name, is_base, res in loaded:
        t1.append([name] + [_score(res, b, k) for _, b, k in table1])
        avg = _value(res, "openllm", "average")
        tax = None if is_base else alignment_tax(avg, base_avg)
        t2.append([name] + [_score(res, b, k) for _, b, k in table2] + [tax])
    return t1, t2


def build_table5(folders: Sequence[Path], baseline: Path | None = None, loaded=None) -> list[list]:
    """Reasoning pass@1 per checkpoint (the baseline, e.g. the untrained model, first), Table 5's columns."""
    loaded = loaded if loaded is not None else _load(folders, baseline)
    table5 = columns(5)
    t5 = [["Model"] + [c for c, _, _ in table5]]
    for name, _is_base, res in loaded:
        t5.append([name] + [_score(res, b, k) for _, b, k in table5])
    return t5


def _fmt(v, digits: int = 2) -> str:
    if isinstance(v, Score):
        return v.text(digits)
    return "–" if v is None else (f"{v:.{digits}f}" if isinstance(v, float) else str(v))


def check_columns(table: list[list], allow_mixed: bool) -> None:
    """One line when a column holds runs that differ in how they departed from the protocol (e.g. a --limit 2 smoke
    run beside a full one); ``allow_mixed`` prints them together, each marked."""
    if allow_mixed:
        return
    for j, column in enumerate(table[0][1:], start=1):
        kinds = {}
        for row in table[1:]:
            if isinstance(row[j], Score):
                kinds.setdefault(row[j].departures, []).append(row[0])
        if len(kinds) > 1:
            runs = "; ".join(f"{', '.join(rows)}: {', '.join(d) or FULL_PROTOCOL}" for d, rows in kinds.items())
            raise EvalError(
                f"column {column} mixes runs evaluated differently ({runs}); rerun them alike, or pass --allow-mixed "
                "to print them together, each marked"
            )


def markdown(table: list[list], digits: int = 2) -> str:
    rows = [[_fmt(v, digits) for v in r] for r in table]
    lines = ["| " + " | ".join(rows[0]) + " |", "|" + "|".join("---" for _ in rows[0]) + "|"]
    return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in rows[1:]])


def write_csv(path: Path, table: list[list]) -> None:
    """The values as numbers; where scores depart from their protocol, a last "Notes" column says how (and their n)."""
    notes = [
        "; ".join(f"{col}: {v.text(2).partition(' (')[2].rstrip(')')}" for col, v in zip(table[0], r) if _marked(v))
        for r in table[1:]
    ]
    rows = [[(v.value if isinstance(v, Score) else "" if v is None else v) for v in r] for r in table]
    if any(notes):
        rows = [rows[0] + ["Notes"]] + [r + [n] for r, n in zip(rows[1:], notes)]
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows(rows)


def _marked(v) -> bool:
    return isinstance(v, Score) and bool(v.departures)


def report(
    folders: Sequence[Path], baseline: Path | None, csv_dir: Path | None = None, allow_mixed: bool = False
) -> str:
    """Markdown of the tables the runs have results for; with `csv_dir`, each printed table is also written as CSV.

    Tables 1 and 2 are printed unless the runs hold reasoning results only; Table 5 whenever any run has one. Every
    column is checked (:func:`check_columns`) before anything is written.
    """
    loaded = _load(folders, baseline)
    benches = {b for _, _, res in loaded for b in res}
    reasoning = set(registry.benchmarks("reasoning"))
    parts = []
    tables = {}
    if benches - reasoning:
        tables["t1"], tables["t2"] = build_tables(folders, baseline, loaded)
    if benches & reasoning:
        tables["t5"] = build_table5(folders, baseline, loaded)
    for table in tables.values():
        check_columns(table, allow_mixed)
    if "t1" in tables:
        t1, t2 = tables["t1"], tables["t2"]
        if csv_dir:
            write_csv(csv_dir / "table1_instruction_following.csv", t1)
            write_csv(csv_dir / "table2_capabilities.csv", t2)
        parts.append(
            "### Table 1: instruction following\n\n"
            + markdown(t1)
            + "\n\n### Table 2: capabilities (OpenLLM)"
            + ("" if baseline else "; pass --baseline for the alignment tax")
            + "\n\n"
            + markdown(t2)
            + "\n"
        )
    if "t5" in tables:
        t5 = tables["t5"]
        if csv_dir:
            write_csv(csv_dir / "table5_reasoning.csv", t5)
        parts.append("### Table 5: reasoning (pass@1)\n\n" + markdown(t5, digits=3) + "\n")
    return "\n".join(parts)
