"""Where a command will write, checked before anything expensive starts: each problem as one line.

Nothing is created here: a folder that does not exist yet is judged by its nearest existing parent, so a
refused run leaves no empty folders behind.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

FIGURE_FORMATS_HINT = ".png (or .pdf, .svg, ...)"


def _unwritable(path: str, remedy: str | None = None) -> str | None:
    """Why ``path`` cannot become a folder this process writes into (to follow its name), or None; ``remedy`` (what
    to do instead) replaces the usual end of the line."""
    target = Path(path)
    if target.exists() and not target.is_dir():
        return f"is a file; {remedy or 'give a folder'}"
    probe = target
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    if not probe.is_dir():
        return f"cannot be created: {probe} is a file" + (f"; {remedy}" if remedy else "")
    try:  # os.access says yes to root on a read-only folder; creating a file is the test that holds
        with tempfile.NamedTemporaryFile(dir=probe, prefix=".openrlhf-cfpo-write-test-"):
            pass
    except OSError as e:
        where = "there" if probe == target else f"in {probe}"  # (the path itself is named first: not twice)
        return f"is not writable (creating a file {where} failed: {e.strerror}); {remedy or 'choose another folder'}"
    return None


def folder_problem(flag: str, path: str) -> str | None:
    """Why ``--flag path`` cannot become a folder this process writes into, or None."""
    why = _unwritable(path)
    return why and f"--{flag} {path} {why}"


def cache_problem(cache: Path, variable: str) -> str | None:
    """Why nothing can be built into the cache folder ``cache``, which the environment variable ``variable`` sets,
    or None."""
    why = _unwritable(str(cache), remedy=f"set {variable} to a folder you can write")
    return why and f"the cache folder {cache}, where the embedded defaults are built, {why}"


def figure_problem(flag: str, path: str) -> str | None:
    """Why ``--flag path`` cannot be written as a figure (its format, its folder), or None."""
    from matplotlib.backend_bases import FigureCanvasBase

    ext = os.path.splitext(path)[1].lower().lstrip(".")
    if ext not in FigureCanvasBase.get_supported_filetypes():
        return (
            f"--{flag} {path}: {'.' + ext if ext else 'no extension'} is not a figure format matplotlib writes; "
            f"end the name in {FIGURE_FORMATS_HINT}"
        )
    if os.path.isdir(path):
        return f"--{flag} {path} is a folder; give a file name ending in {FIGURE_FORMATS_HINT}"
    folder = os.path.dirname(os.path.abspath(path))
    if os.path.isfile(folder):  # ("its folder is a file; give a folder" would leave the user guessing which)
        return f"--{flag} {path}: {folder} is a file, not a folder"
    why = _unwritable(folder)
    return why and f"--{flag} {path}: its folder {why}"
