"""One process per run folder: an exclusive lock on a file inside every folder a run writes, held while it runs.

Two processes writing one run folder interleave their metrics, TensorBoard files and checkpoints, and each prunes the
other's checkpoints; the second one is turned away instead, with one line naming the process that holds the folder.

The lock is ``fcntl.flock`` on ``FOLDER/.lock``. A flock belongs to the open file, so the kernel drops it when the
process holding it ends, however it ends (kill -9, a crash, a reboot): a lock file left behind by a dead process is
taken over by the next run without a word, and there is never a stale lock to remove by hand. The file's text (pid
and host) only names the holder for the message. Locks are advisory: only this package's commands honour them.
"""

from __future__ import annotations

import errno
import fcntl
import os
import socket
import time
from pathlib import Path

from .errors import ConfigError

LOCK_FILE = ".lock"
# This process's locks: resolved folder -> [open lock file, times taken]. Taking one again in the same process only
# counts (a flock taken through a second open file would conflict with the first, even in one process).
_held: dict[str, list] = {}


def _holder_text(f) -> str:
    f.seek(0)
    pid, _, host = f.read().strip().partition(" ")
    return f"process {pid} on {host}" if pid.isdigit() and host else "another process"


def holder(folder: str | os.PathLike) -> str | None:
    """Who holds ``folder``'s lock ("process PID on HOST"), or None when it is free or held by this process.
    Creates nothing."""
    path = Path(folder) / LOCK_FILE
    if not path.is_file() or str(Path(folder).resolve()) in _held:
        return None
    try:
        with open(path, encoding="utf-8") as f:
            try:
                fcntl.flock(f, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                return _holder_text(f)
            except OSError:
                return None  # a filesystem without flock: nothing to learn here
            fcntl.flock(f, fcntl.LOCK_UN)
    except OSError:
        return None
    return None


def in_use(flag: str, folder: str | os.PathLike, who: str) -> str:
    """The one line that turns a second process away from ``--flag folder``."""
    return (
        f"--{flag} {folder} is in use by another run ({who}, see {Path(folder) / LOCK_FILE}); wait for it to end or "
        f"stop it, or choose another --{flag}"
    )


def holder_problem(flag: str, folder: str | os.PathLike) -> str | None:
    who = holder(folder)
    return who and in_use(flag, folder, who)


class FolderLocks:
    """The locks one command holds: :meth:`take` each folder, :meth:`release` them all (also as a context manager)."""

    def __init__(self) -> None:
        self.keys: list[str] = []
        self.created: list[list[Path]] = []  # per lock taken: the folders taking it created, deepest first

    def __enter__(self) -> FolderLocks:
        return self

    def __exit__(self, *exc) -> None:
        self.release()

    def take(self, flag: str, folder: str | os.PathLike) -> None:
        """Lock ``--flag folder`` (created if missing), or raise ConfigError naming the process that holds it."""
        folder = Path(folder)
        missing, probe = [], folder.absolute()
        while not probe.exists() and probe != probe.parent:
            missing.append(probe)
            probe = probe.parent
        folder.mkdir(parents=True, exist_ok=True)
        key = str(folder.resolve())
        if key in _held:
            _held[key][1] += 1
            self.keys.append(key)
            return
        f = open(folder / LOCK_FILE, "a+", encoding="utf-8")
        try:
            for attempt in range(10):  # (another command's :func:`holder` may hold it shared for a moment)
                try:
                    fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if attempt == 9:
                        raise
                    time.sleep(0.02)
        except BlockingIOError:
            who = _holder_text(f)
            f.close()
            raise ConfigError(in_use(flag, folder, who)) from None
        except OSError as e:
            f.close()
            if e.errno in (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS):
                return  # a filesystem without locks: the run goes on unguarded, as it did before locks
            raise
        try:
            f.seek(0)
            f.truncate()
            f.write(f"{os.getpid()} {socket.gethostname()}\n")
            f.flush()
        except OSError:
            pass  # (a full disk: the lock holds all the same, only its holder goes unnamed)
        _held[key] = [f, 1]
        self.keys.append(key)
        self.created.append(missing)

    def release(self, remove_created: bool = False) -> None:
        """Release every lock taken; with ``remove_created`` (a command refused after taking them), also remove the
        folders taking them created, when nothing but the lock file was put there since."""
        for key in self.keys:
            entry = _held.get(key)
            if entry is None:
                continue
            entry[1] -= 1
            if entry[1] <= 0:
                del _held[key]
                entry[0].close()  # closing the file drops the flock; the file stays, harmless, for the next run
        for missing in reversed(self.created if remove_created else []):
            for folder in missing:
                try:
                    (folder / LOCK_FILE).unlink(missing_ok=True)
                    folder.rmdir()
                except OSError:
                    break  # (something else was written there: it stays, and so do the folders above it)
        self.keys, self.created = [], []
