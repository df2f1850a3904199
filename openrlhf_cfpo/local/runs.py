"""Several `openrlhf-cfpo local` runs as parallel child processes: what `compare` and `sweep` share.

Every run's flags are checked before any run starts; the embedded default a run needs is built once
here, not by each child at the same time; then the children train concurrently, ``jobs`` at a time,
one CPU thread each when there are more runs than cores (the embedded defaults' tiny models use a core
better that way than by splitting one run across cores).

Ctrl-C: the children run in a session of their own, so the terminal's Ctrl-C reaches this process alone,
which passes it on to every running child exactly once; each saves the step it is in and stops, and one
line says how to resume the whole set (the same command with ``--resume``). A second Ctrl-C is passed on
too: the children stop at once.
"""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from .config import RUN_FOLDERS, LocalConfig, parse_args
from .errors import EXIT_INTERRUPTED, ConfigError, Problems, report
from .lock import FolderLocks, holder_problem


def check_runs(runs: dict[str, list[str]], output: Path, run_folders: bool = True) -> list[LocalConfig]:
    """Each run's parsed flags (``--ckpt.output_dir OUTPUT/<name>``), its run folder and input paths checked; every
    problem of every run raises together as one ConfigError."""
    from .preflight import check_without_loading

    problems = Problems()
    configs = [
        problems.attempt(parse_args, flags + ["--ckpt.output_dir", str(output / name)]) for name, flags in runs.items()
    ]
    for cfg in configs:
        if cfg is not None:
            problems.attempt(check_without_loading, cfg, run_folders)
    for flag, what in RUN_FOLDERS.items():
        folders = [str(Path(cfg.flat[flag]).resolve()) for cfg in configs if cfg is not None]
        if len(set(folders)) < len(folders):
            shared = next(cfg.flat[flag] for cfg in configs if cfg is not None)
            problems.add(
                f"--{flag} {shared} would hold the {what} of several runs; leave it out, so that each run keeps "
                f"its {what} in its own folder"
            )
    problems.raise_any()  # (the runs share most flags: a problem they share is one line)
    return configs


def prepare_embedded_defaults(configs: Sequence[LocalConfig], log: Callable[[str], None]) -> None:
    from . import embedded

    for name in sorted({c.args.embedded_default for c in configs if c.uses_embedded_default}):
        embedded.get(name).cached(log=log)


def train_children(
    runs: dict[str, list[str]], output: Path, jobs: int, start_order: list[str] | None = None
) -> tuple[list[str], bool]:
    """Train every run as a child process, ``jobs`` at a time, in ``start_order``; returns the names of failed runs
    and whether Ctrl-C (or SIGTERM) stopped the set.

    With more runs than jobs, start the longest first (``start_order``) so the last wave is short.
    """
    threads = max((os.cpu_count() or 1) // min(jobs, len(runs)), 1)
    pending = list(start_order or runs)
    active: list[tuple[str, subprocess.Popen]] = []
    failed, interrupted = [], False
    main_thread = threading.current_thread() is threading.main_thread()
    # Ctrl-C, and SIGTERM as Ctrl-C, raise KeyboardInterrupt here even where this process was started with SIGINT
    # ignored (a parent's setting it inherits), as the trainer's own handler does in each run.
    stops = (signal.SIGINT, signal.SIGTERM)
    previous = {s: signal.signal(s, signal.default_int_handler) for s in stops} if main_thread else {}
    try:
        while pending or active:
            try:
                while pending and len(active) < jobs:
                    name = pending.pop(0)
                    cmd = [
                        sys.executable,
                        "-m",
                        "openrlhf_cfpo.local",
                        *runs[name],
                        "--ckpt.output_dir",
                        str(output / name),
                        "--num_threads",
                        str(threads),
                        "--logger.progress",
                        "none",
                    ]
                    active.append((name, subprocess.Popen(cmd, start_new_session=True)))
                time.sleep(0.2)
                for name, proc in list(active):
                    if proc.poll() is not None:
                        active.remove((name, proc))
                        if proc.returncode != 0 and not (interrupted and proc.returncode == EXIT_INTERRUPTED):
                            failed.append(name)
            except KeyboardInterrupt:
                interrupted = True
                pending.clear()
                for _, proc in active:
                    if proc.poll() is None:
                        proc.send_signal(signal.SIGINT)
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler if handler is not None else signal.SIG_DFL)
    return failed, interrupted


def run_all(
    runs: dict[str, list[str]],
    output: Path,
    jobs: int,
    prog: str,
    argv: Sequence[str],
    start_order: list[str] | None = None,
    option_problems: Sequence[str] = (),
    locks: FolderLocks | None = None,
) -> tuple[list[LocalConfig] | None, int]:
    """Check, prepare and train ``runs`` (for the command ``prog argv``, whose own options had ``option_problems``):
    ``(configs, 0)``, or ``(None, exit code)`` after one line per problem (2: bad input, nothing trained; 1: a run
    failed; 130: interrupted, progress saved).

    ``output`` is locked in ``locks`` (for the caller to release once it has written its summary; without them, until
    this process ends), so a second command on it is turned away; each run locks its own folder, ``output/<name>``,
    which the parent never takes.
    """
    locks = locks if locks is not None else FolderLocks()
    from .outputs import folder_problem

    problems = Problems()
    for line in option_problems:
        problems.add(line)
    if jobs < 1:
        problems.add(f"--jobs must be >= 1 (runs trained at once), got {jobs}")
    output_problem = folder_problem("output", str(output))
    in_use = holder_problem("output", output) if output_problem is None else None
    if in_use:  # (its runs hold their folders too: one line for them all)
        report(prog, ConfigError(in_use))
        return None, 2
    problems.add(output_problem)
    configs = problems.attempt(
        check_runs, runs, output, run_folders=output_problem is None
    )  # (a bad --output: said once)
    try:
        problems.raise_any()
        locks.take("output", output)
    except ConfigError as e:
        report(prog, e)
        return None, 2
    try:
        prepare_embedded_defaults(configs, log=lambda m: print(m, file=sys.stderr))
    except ConfigError as e:
        locks.release(remove_created=True)  # (nothing ran: an --output this command created is not left behind)
        report(prog, e)
        return None, 2
    failed, interrupted = train_children(runs, output, jobs, start_order)
    if interrupted:
        if configs[0].args.ckpt.save_steps <= 0:
            print(
                f"{prog}: interrupted; nothing was saved (--ckpt.save_steps {configs[0].args.ckpt.save_steps})",
                file=sys.stderr,
            )
            return None, EXIT_INTERRUPTED
        resume = [*prog.split(), *argv, *([] if {"--resume", "--ckpt.load_enable"} & set(argv) else ["--resume"])]
        print(
            f"{prog}: interrupted; every run that started saved its last step (see above); resume them all with: "
            f"{shlex.join(resume)}",
            file=sys.stderr,
        )
        return None, EXIT_INTERRUPTED
    if failed:
        print(
            f"{prog}: error: run(s) {', '.join(failed)} failed (see their messages above); finished runs are kept in "
            f"{output}",
            file=sys.stderr,
        )
        return None, 1
    return configs, 0
