"""`openrlhf-cfpo eval` with a stand-in model that SIGKILLs its own process at a chosen write, for the kill tests.

Run as `python killable_eval.py EVAL-ARGS...`. Environment:
- KILL_AT=WHAT:N[:inside] — die at the N-th write of WHAT: `answers` or `judgments` (a JsonlStore append to
  that file), `judge` (a judge-cache commit), `results` (results.json). Without `:inside` the process dies
  just after the write is complete; with it, halfway through the write's bytes (a torn last line). Unset: no kill.
- GEN_LOG=FILE — every prompt the stand-in model answers is appended there, one JSON string a line.
- REAL_BACKEND=1 — answers come from the backend `--backend` names (e.g. vLLM), not from the stand-in.

The stand-in answers deterministically and puts every character that `str.splitlines` treats as a line break
into its answers, so a resume must read them back exactly.
"""

import json
import os
import signal
import sys

from openrlhf_cfpo.eval import cli, common, judge, store

LINE_BREAKERS = "\u2028\u2029\x85\x1c\x1d\x1e\x0b\x0c\r"
what, n, inside = (os.environ.get("KILL_AT", "") + "::").split(":")[:3]
writes: dict = {}


def due(kind: str) -> bool:
    """Counts one write of `kind`; True for the write the process must die at."""
    writes[kind] = writes.get(kind, 0) + 1
    return kind == what and writes[kind] == int(n)


def die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def write_half(path, data: bytes) -> None:
    with open(path, "ab") as f:
        f.write(data[: len(data) // 2])
        f.flush()
        os.fsync(f.fileno())


class StandIn:
    name = "stand-in"

    def generate(self, conversations, decoding):
        with open(os.environ["GEN_LOG"], "a", encoding="utf-8") as f:
            for c in conversations:
                f.write(json.dumps(c[-1]["content"]) + "\n")
        return [f"reply to {c[-1]['content']}{LINE_BREAKERS}after {len(c) // 2} turns" for c in conversations]


_append, _put, _write_json = store.JsonlStore.append, judge.JudgeCache.put, common.write_json


def append(self, records):
    records = list(records)
    kill = due(self.path.stem)  # answers / judgments
    if kill and inside:
        write_half(self.path, (json.dumps(records[0], ensure_ascii=False) + "\n").encode("utf-8"))
        die()
    _append(self, records)
    if kill:
        die()


def put(self, *args):
    _put(self, *args)  # committed: from here on a kill must not cost this judgment again
    if due("judge"):
        die()


def write_json(path, obj):
    kill = path.name == "results.json" and due("results")
    if kill and inside:
        write_half(path.with_name(path.name + ".tmp"), json.dumps(obj, indent=2).encode("utf-8"))
        die()
    _write_json(path, obj)
    if kill:
        die()


store.JsonlStore.append = append
judge.JudgeCache.put = put
common.write_json = write_json
if not os.environ.get("REAL_BACKEND"):
    common.make_backend = lambda *a, **k: StandIn()

if __name__ == "__main__":
    sys.exit(cli.main(sys.argv[1:]))
