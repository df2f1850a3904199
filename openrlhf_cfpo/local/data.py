"""Prompt sets (with their labels, for verifiable rewards): local files, folders or hub datasets,
and the seeded order."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Any

import torch

from .errors import ConfigError


@dataclass
class PromptSet:
    """Prompt texts and, with ``--data.label_key``, each prompt's label (what OpenRLHF passes to ``reward_func``)."""

    prompts: list[Any]  # texts, or chat messages ([{"role", "content"}, ...]) with --data.apply_chat_template
    labels: list[Any] = field(default_factory=list)  # "" per prompt without --data.label_key, as OpenRLHF
    fields: list[str] = field(default_factory=list)  # the fields of the first row (none for plain-text prompts)
    where: list[str] = field(default_factory=list)  # where each prompt is: "line N" of a .jsonl/.txt file, else "row N"

    def __len__(self) -> int:
        return len(self.prompts)


def _rows_from_datasets(path: str, data_dir: str | None, split: str, flag: str) -> list:
    try:
        import datasets
    except ImportError:
        raise ConfigError(
            f"--{flag} {path}: reading this needs the `datasets` package (pip install datasets)"
        ) from None
    try:
        if os.path.isdir(path) and data_dir is None:
            try:
                ds = datasets.load_from_disk(path)
            except FileNotFoundError:  # not a save_to_disk folder: data files (a hub dataset's snapshot, parquet, ...)
                ds = datasets.load_dataset(path)
        elif os.path.isdir(path):
            ds = datasets.load_dataset(path, data_dir=data_dir)
        else:
            ext = os.path.splitext(path)[1].lower().lstrip(".")
            ds = datasets.load_dataset({"jsonl": "json"}.get(ext, ext), data_files=path)
    except (OSError, ValueError) as e:
        raise ConfigError(
            f"--{flag} {path}: cannot read it ({str(e).splitlines()[0] if str(e) else type(e).__name__})"
        ) from None
    if isinstance(ds, datasets.DatasetDict):
        if split not in ds:
            raise ConfigError(
                f"--{flag} {path} has no split {split!r} (it has {', '.join(ds)}); set --data.prompt_split"
            )
        ds = ds[split]
    return list(ds)


def is_conversation(value: Any) -> bool:
    """A prompt given as chat messages, ``[{"role": "user", "content": "..."}, ...]`` (OpenRLHF's chat-format input)."""
    return (
        isinstance(value, list)
        and bool(value)
        and all(
            isinstance(m, dict) and isinstance(m.get("role"), str) and isinstance(m.get("content"), str) for m in value
        )
    )


def _positions(where: list[str], verb: str) -> str:
    """``["line 6"] -> "line 6 has"``; several: ``"line 6, line 9 and 3 more have"``."""
    shown = ", ".join(where[:3]) + (f" and {len(where) - 3} more" if len(where) > 3 else "")
    return f"{shown} {verb if len(where) == 1 else {'has': 'have', 'holds': 'hold', 'is': 'are'}[verb]}"


def _read_rows(path: str, split: str, data_dir: str | None, flag: str) -> tuple[list, list[str]]:
    """The rows of a prompt file or dataset, and where each is (``line N`` of a .jsonl/.txt file, else ``row N``)."""
    try:
        if os.path.isdir(path) or path.endswith((".parquet", ".csv", ".arrow")):
            rows = _rows_from_datasets(path, data_dir, split, flag)
            return rows, [f"row {i}" for i in range(len(rows))]
        with open(path, encoding="utf-8") as f:
            if path.endswith(".json"):
                rows = json.load(f)
                rows = rows if isinstance(rows, list) else [rows]
                return rows, [f"row {i}" for i in range(len(rows))]
            numbered = [(n, line) for n, line in enumerate(f, 1) if line.strip()]
    except (OSError, ValueError) as e:
        raise ConfigError(f"--{flag} {path}: cannot read it ({e})") from None
    if not path.endswith(".jsonl"):
        return [line.rstrip("\n") for _, line in numbered], [f"line {n}" for n, _ in numbered]
    rows, bad = [], []
    for n, line in numbered:
        try:
            rows.append(json.loads(line))
        except ValueError as e:  # json.loads counts lines within the one line it was given: the file's line is n
            bad.append((f"line {n}", f"{e.msg}: column {e.colno}" if hasattr(e, "colno") else str(e)))
    if bad:
        first = bad[0][1] if len(bad) == 1 else f"{bad[0][0]}: {bad[0][1]}"
        raise ConfigError(f"--{flag} {path}: {_positions([w for w, _ in bad], 'is')} not JSON ({first})")
    return rows, [f"line {n}" for n, _ in numbered]


def load_prompts(
    path: str,
    input_key: str = "input",
    max_samples: int | None = None,
    label_key: str | None = None,
    split: str = "train",
    data_dir: str | None = None,
    flag: str = "data.prompt_dataset",
    apply_chat_template: bool = False,
) -> PromptSet:
    """Prompts (and labels) from a .jsonl / .json / .txt file, a .parquet / .csv file, or a dataset folder.

    A folder is a ``datasets.save_to_disk`` folder or a folder of data files (what a hub dataset's
    snapshot is); ``--data.prompt_split`` picks the split, as OpenRLHF does. The first ``max_samples``
    rows are used (OpenRLHF's ``select``); every kind of bad row among them is one line, naming where. A prompt is
    text, or with ``apply_chat_template`` a list of chat messages, which OpenRLHF renders with the chat template as they
    are (a system turn or a worked example before the question, say).
    """
    rows, where = _read_rows(path, split, data_dir, flag)
    n = max_samples if max_samples else len(rows)
    rows, where = rows[:n], where[:n]
    if not rows:
        raise ConfigError(f"--{flag} {path} holds no prompts")
    if label_key is not None and all(isinstance(r, str) for r in rows):
        raise ConfigError(
            f"--{flag} {path} holds plain-text prompts, which have no label field {label_key!r} (--data.label_key)"
        )
    bad: dict[str, list[str]] = {}
    example: dict[str, Any] = {}

    def flag_row(kind: str, i: int, value: Any = None) -> None:
        bad.setdefault(kind, []).append(where[i])
        example.setdefault(kind, value)

    for i, row in enumerate(rows):
        if isinstance(row, dict):
            if input_key not in row:
                flag_row("no_field", i, row)
            elif not isinstance(row[input_key], str) and not is_conversation(row[input_key]):
                flag_row("not_text", i, row[input_key])
            elif not isinstance(row[input_key], str) and not apply_chat_template:
                flag_row("chat_without_template", i)
            elif not (row[input_key] if isinstance(row[input_key], str) else row[input_key][-1]["content"]).strip():
                flag_row("empty", i)
            elif label_key is not None and label_key not in row:
                flag_row("no_label", i, row)
            elif label_key is not None and row[label_key] is None:
                flag_row("null_label", i)
        elif not isinstance(row, str):
            flag_row("not_object", i, row)
    problems = []
    for kind, positions in bad.items():
        value, at = example[kind], _positions(positions, "has")
        if kind == "no_field":
            problems.append(
                f"--{flag} {path}: {at} no text field {input_key!r} (its fields: {', '.join(map(str, value))}; "
                f"set --data.input_key)"
            )
        elif kind == "not_text":
            problems.append(
                f"--{flag} {path}: {_positions(positions, 'holds')} {value!r} ({type(value).__name__}) in its "
                f'field {input_key!r}, neither text nor chat messages [{{"role": ..., "content": ...}}, ...]'
            )
        elif kind == "chat_without_template":
            problems.append(
                f"--{flag} {path}: {_positions(positions, 'holds')} chat messages in its field {input_key!r}, "
                f"which are rendered with the tokenizer's chat template: pass --data.apply_chat_template"
            )
        elif kind == "empty":  # a turn with nothing to answer: trained on all the same, it only teaches noise
            problems.append(
                f"--{flag} {path}: {_positions(positions, 'holds')} an empty prompt in its field {input_key!r}; "
                f"remove such rows"
            )
        elif kind == "null_label":  # reward_func would get None where it expects the reference answer
            problems.append(
                f"--{flag} {path}: {_positions(positions, 'holds')} a null label in its field {label_key!r} "
                f"(--data.label_key); remove such rows or fill them in"
            )
        elif kind == "no_label":
            problems.append(
                f"--{flag} {path}: {at} no label field {label_key!r} (--data.label_key; its fields: "
                f"{', '.join(map(str, value))})"
            )
        else:
            problems.append(
                f"--{flag} {path}: {_positions(positions, 'is')} {value!r} ({type(value).__name__}), not an object "
                f"with a text field {input_key!r}"
            )
    if problems:
        raise ConfigError(*problems)
    prompts = [r if isinstance(r, str) else r[input_key] for r in rows]
    labels = [r[label_key] if label_key is not None else "" for r in rows]
    return PromptSet(prompts, labels, [str(k) for k in rows[0]] if isinstance(rows[0], dict) else [], where)


def prompts_sha256(prompt_set: PromptSet) -> str:
    """A fingerprint of the prompts and labels a run trains on, kept with the run so that ``--resume`` notices a
    prompts file changed since (what was read, not the file's bytes: the same for a file, a folder or a hub dataset)."""
    import hashlib

    text = json.dumps([prompt_set.prompts, prompt_set.labels], sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def episode_order(n_prompts: int, seed: int, episode: int) -> list[int]:
    """The prompt order of one episode: a function of (seed, episode) only, so a resumed run needs no state for it."""
    g = torch.Generator().manual_seed(seed * 1_000_003 + episode)
    return torch.randperm(n_prompts, generator=g).tolist()


def rollout_indices(
    n_prompts: int, rollout_idx: int, batch_size: int, rollouts_per_episode: int, seed: int
) -> list[int]:
    """Indices into the prompt set of the prompts of one rollout."""
    episode, k = divmod(rollout_idx, rollouts_per_episode)
    return episode_order(n_prompts, seed, episode)[k * batch_size : (k + 1) * batch_size]


def minibatch_plan(samples: int, batch_size: int, epochs: int, seed: int, rollout_idx: int) -> list[list[int]]:
    """Sample indices of each optimizer step of one rollout: a fresh shuffle per epoch, seeded by the rollout."""
    g = torch.Generator().manual_seed(seed * 1_000_003 + 7919 * (rollout_idx + 1))
    plan = []
    for _ in range(epochs):
        perm = torch.randperm(samples, generator=g).tolist()
        plan += [perm[i : i + batch_size] for i in range(0, samples, batch_size)]
    return plan
