"""The local engine's errors and how a command reports them (imports no other module of the engine,
so all can use it)."""

from __future__ import annotations

import errno
import os
import shutil
import sys
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

# What a shell reports for a process ended by Ctrl-C (128 + SIGINT); a run stopped by Ctrl-C exits with it.
EXIT_INTERRUPTED = 130


class ConfigError(ValueError):
    """Bad input found before any training: one line per problem, every problem found at that point."""

    def __init__(self, *problems: str):
        super().__init__("\n".join(problems))
        self.problems = list(problems)


class Problems:
    """Collects the problems of independent checks, so that one run of a command reports them all."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def add(self, line: str | None) -> None:
        if line and line not in self.lines:
            self.lines.append(line)

    def attempt(self, check: Callable[..., T], *args, **kwargs) -> T | None:
        """``check(...)``, or None with its ConfigError's problems kept."""
        try:
            return check(*args, **kwargs)
        except ConfigError as e:
            for line in e.problems:
                self.add(line)
            return None

    def raise_any(self) -> None:
        if self.lines:
            raise ConfigError(*self.lines)


def report(prog: str, error: ConfigError) -> None:
    """Each problem of ``error`` as one ``PROG: error: ...`` line on stderr."""
    for line in error.problems:
        print(f"{prog}: error: {line}", file=sys.stderr)


class RewardFuncError(RuntimeError):
    """``reward_func`` raised or returned something OpenRLHF could not use either; one line."""


class NonFiniteError(RuntimeError):
    """A reward, advantage, loss or gradient that is not finite: the run stops before an optimizer step or a
    checkpoint uses it, so the weights and the checkpoints on disk stay finite."""

    def __init__(self, step: int, source: str, detail: str):
        super().__init__(
            f"step {step}: the {source} is not finite ({detail}); stopped before any optimizer step or checkpoint "
            "used it"
        )
        self.step, self.source = step, source


class Interrupted(Exception):
    """Ctrl-C stopped the run at a step boundary; ``checkpoint`` is where it was saved
    (None with --ckpt.save_steps -1)."""

    def __init__(self, step: int, total: int, checkpoint):
        super().__init__(f"interrupted at step {step}/{total}")
        self.step, self.total, self.checkpoint = step, total, checkpoint


# What a write fails with when its disk (or the user's quota on it) is full.
NO_SPACE = (errno.ENOSPC, errno.EDQUOT)


def no_space(error: BaseException | None) -> bool:
    """Whether ``error`` or an error it was raised from is a full disk (torch's zip writer, for one, reports the
    OSError of a short write as its own RuntimeError, "unexpected pos ...", raised while handling it)."""
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if isinstance(error, OSError) and error.errno in NO_SPACE:
            return True
        error = error.__cause__ or error.__context__
    return False


def free_bytes(path: str | os.PathLike) -> int:
    """Free space on the disk of ``path`` (or of its nearest existing parent)."""
    path = os.path.abspath(path)
    while not os.path.exists(path) and os.path.dirname(path) != path:
        path = os.path.dirname(path)
    return shutil.disk_usage(path).free


def _size(n: int) -> str:
    for unit in ("bytes", "KB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1000
    return ""


class DiskFullError(RuntimeError):
    """A save stopped by a full disk; what was being written is removed again, what was saved before is kept."""

    def __init__(self, path: str | os.PathLike, need: int | None = None):
        self.path, self.need, self.free = str(path), need, free_bytes(path)
        needs = f"it needs about {_size(need)}" if need else "it needs more space"
        super().__init__(f"the disk is full: could not write {self.path} ({needs}; {_size(self.free)} free there)")
