"""Run logging: `metrics.jsonl` (one object per optimizer step), TensorBoard, and a progress bar with ETA.

TensorBoard tags follow OpenRLHF's layout (``train/<metric>``), so `openrlhf-cfpo plot` and any
TensorBoard dashboard read this engine's runs and OpenRLHF's the same way. On resume, lines and
events past the checkpoint's step are dropped, so the logs read as one uninterrupted run. A full disk is
:class:`.errors.DiskFullError` naming the file or folder, raised in the training thread (TensorBoard's writer thread
raises it there too, so that thread's own traceback is not printed as well).
"""

from __future__ import annotations

import json
import math
import os
import sys
import threading
import time

from .errors import DiskFullError, no_space

# The files of a run folder: one record per optimizer step, the flags, the summary written at the end.
METRICS_FILE = "metrics.jsonl"
RUN_CONFIG = "run_config.json"
RUN_SUMMARY = "run_summary.json"
# OpenRLHF's name for the registry's clip_ratio, logged_name("openrlhf", "clip_ratio"), spelled out: `plot` reads
# runs through this module and starts without torch, which openrlhf_cfpo.losses imports (a test holds them equal).
CLIP_RATIO = "ppo_clip_ratio"
# Shown next to the progress bar (OpenRLHF's short_status uses the same handful).
SHORT = {"reward": "reward", "response_length": "len", CLIP_RATIO: "clip", "kl": "kl", "policy_loss": "loss"}


def _record(line: str) -> dict | None:
    """The step record a line of ``metrics.jsonl`` holds (a JSON object with a ``step``), or None."""
    try:
        record = json.loads(line)
    except ValueError:
        return None
    return record if isinstance(record, dict) and isinstance(record.get("step"), (int, float)) else None


def read_metrics(path: str, skipped: list[int] | None = None) -> list[dict]:
    """The step records of ``metrics.jsonl``. Records end in "\n"; a last line without one was cut by a
    kill in the middle of a write and is left out. A line that holds no record (this engine never writes one; a
    hand-edited or concatenated file may) raises ValueError naming it, or with ``skipped`` is left out and its
    number (from 1) appended there."""
    with open(path, encoding="utf-8", newline="\n") as f:
        lines = f.read().split("\n")
    records = []
    for number, line in enumerate(lines[:-1], 1):
        if not line.strip():
            continue
        record = _record(line)
        if record is not None:
            records.append(record)
        elif skipped is None:
            raise ValueError(f"{path}, line {number}: not a step record (a JSON object with a step): {line[:60]!r}")
        else:
            skipped.append(number)
    return records


def truncate_metrics(path: str, last_step: int) -> None:
    """Keep only the records of steps <= ``last_step`` (the ones a checkpoint vouches for)."""
    if not os.path.exists(path):
        return
    keep = [r for r in read_metrics(path) if r.get("step", 0) <= last_step]
    with open(path, "w", encoding="utf-8") as f:
        f.writelines(json.dumps(r) + "\n" for r in keep)


# TensorBoard's writer thread re-raises a failed write in the training thread (on its next write, flush or close),
# where it becomes one line; the thread's own traceback would only interleave with that line, so it is not printed.
_print_thread_error = threading.excepthook


def _quiet_excepthook(args) -> None:
    from tensorboard.summary.writer.event_file_writer import _AsyncWriterThread

    if not isinstance(args.thread, _AsyncWriterThread):
        _print_thread_error(args)


def _quiet_tensorboard_threads() -> None:
    global _print_thread_error
    if threading.excepthook is not _quiet_excepthook:
        _print_thread_error, threading.excepthook = threading.excepthook, _quiet_excepthook


def _disk_full(e: BaseException, path: str) -> BaseException:
    """``e`` as DiskFullError naming ``path`` when it is a full disk, else ``e``."""
    return DiskFullError(path) if no_space(e) else e


def _fmt_seconds(s: float) -> str:
    s = int(s)
    return f"{s // 3600}h{s % 3600 // 60:02d}m" if s >= 3600 else f"{s // 60}m{s % 60:02d}s"


class RunLogger:
    def __init__(
        self,
        output_dir: str,
        tensorboard_dir: str,
        total_steps: int,
        start_step: int = 0,
        progress: str = "auto",
        label: str = "",
    ):
        os.makedirs(output_dir, exist_ok=True)
        path = os.path.join(output_dir, METRICS_FILE)
        truncate_metrics(path, start_step)
        self.file = open(path, "a", buffering=1, encoding="utf-8")
        from tensorboard.compat.proto.summary_pb2 import Summary
        from torch.utils.tensorboard import SummaryWriter

        self.Summary = Summary

        self.path, self.tensorboard_dir = path, tensorboard_dir
        _quiet_tensorboard_threads()
        try:
            # purge_step hides events a killed run wrote past the checkpoint.
            self.writer = SummaryWriter(tensorboard_dir, purge_step=start_step + 1 if start_step else None)
            self.file_writer = self.writer._get_file_writer()
        except OSError as e:
            self.file.close()
            raise _disk_full(e, tensorboard_dir) from None
        self.total = total_steps
        self.start_step = start_step
        self.t0 = time.time()
        self.label = label
        self.bar = None
        self._next_line = start_step
        if progress == "bar" or (progress == "auto" and sys.stderr.isatty()):
            from tqdm.auto import tqdm

            self.bar = tqdm(
                total=total_steps, initial=start_step, desc=label or "train", unit="step", dynamic_ncols=True
            )

    def log(self, metrics: dict[str, float]) -> None:
        step = int(metrics["step"])
        try:
            self.file.write(json.dumps(metrics) + "\n")
        except OSError as e:
            raise _disk_full(e, self.path) from None
        # One TensorBoard event per step holding every scalar (what add_scalar writes per value, one value per
        # event): a tenth of the logging cost on a CPU, where 20 events per step were ~10% of a tiny run's time.
        values = [
            self.Summary.Value(tag=f"train/{k}", simple_value=float(v))
            for k, v in metrics.items()
            if k != "step" and isinstance(v, (int, float)) and math.isfinite(v)
        ]
        try:
            self.file_writer.add_summary(self.Summary(value=values), step)
        except OSError as e:
            raise _disk_full(e, self.tensorboard_dir) from None
        short = {name: f"{metrics[k]:.3g}" for k, name in SHORT.items() if k in metrics}
        if self.bar is not None:
            self.bar.set_postfix(short, refresh=False)
            self.bar.update(1)
        elif step >= self._next_line or step == self.total:
            # Without a terminal: one line per tenth of the run, with its own ETA.
            done = step - self.start_step
            eta = (time.time() - self.t0) / max(done, 1) * (self.total - step)
            fields = " ".join(f"{k} {v}" for k, v in short.items())
            print(
                f"[{self.label or 'train'}] step {step}/{self.total} {fields} eta {_fmt_seconds(eta)}",
                file=sys.stderr,
                flush=True,
            )
            self._next_line = step + max(self.total // 10, 1)

    def close(self, quiet: bool = False) -> None:
        """Flush and close everything; the first error is raised afterwards, unless ``quiet`` (another error is on
        its way already)."""
        if self.bar is not None:
            self.bar.close()
        first = None
        for close, path in (
            (self.writer.flush, self.tensorboard_dir),
            (self.writer.close, self.tensorboard_dir),
            (self.file.close, self.path),
        ):
            try:
                close()
            except OSError as e:
                first = first or _disk_full(e, path)
        if first is not None and not quiet:
            raise first
