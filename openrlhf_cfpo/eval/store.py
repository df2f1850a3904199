"""Append-only JSONL record files that survive a killed run, and atomic results.json writes."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path

from .errors import EvalError


class JsonlStore:
    """Records keyed by `id`, appended and fsynced one at a time so a kill loses at most the record in flight."""

    def __init__(self, path: os.PathLike, key: str = "id"):
        self.path = Path(path)
        self.key = key

    def load(self) -> dict:
        if not self.path.exists():
            return {}
        raw = self.path.read_bytes()
        # A kill during a write leaves a last line without its newline: drop it, or the next append
        # would be glued onto it and both records would be lost.
        cut = raw.rfind(b"\n") + 1
        if cut != len(raw):
            with open(self.path, "r+b") as f:
                f.truncate(cut)
            raw = raw[:cut]
        records = {}
        # Split on b"\n" only: str.splitlines() also breaks at U+2028, U+2029 and U+0085, which
        # json.dumps(ensure_ascii=False) writes unescaped and a model's answer can contain.
        for n, line in enumerate(raw.split(b"\n"), 1):
            if line.strip():
                try:
                    rec = json.loads(line.decode("utf-8"))
                except (UnicodeDecodeError, json.JSONDecodeError) as e:
                    raise EvalError(
                        f"{self.path} line {n} is not a JSON record ({e}); delete that line (or the file) and rerun"
                    ) from None
                records[rec[self.key]] = rec
        return records

    def append(self, records: Iterable[dict]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a", encoding="utf-8") as f:
            for rec in records:
                f.write(json.dumps(rec, ensure_ascii=False) + "\n")
            f.flush()
            os.fsync(f.fileno())


def write_json(path: os.PathLike, obj) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(obj, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(tmp, path)
