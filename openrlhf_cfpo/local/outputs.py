"""Where a command will write, checked before anything expensive starts: each problem as one line.

Nothing is created here: a folder that does not exist yet is judged by its nearest existing parent, so a
refused run leaves no empty folders behind.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

FIGURE_FORMATS_HINT = ".png (or .pdf, .svg, ...)"


def _unwritable(path: str) -> str | None:
    """Why ``path`` cannot become a folder this process writes into (to follow its name), or None."""
    target = Path(path)
    if target.exists() and not target.is_dir():
        return "is a file; give a folder"
    probe = target
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    if not probe.is_dir():
        return f"cannot be created: {probe} is a file"
    try:  # os.access says yes to root on a read-only folder; creating a file is the test that holds
        with tempfile.NamedTemporaryFile(dir=probe, prefix=".openrlhf-cfpo-write-test-"):
            pass
    except OSError as e:
        return f"is not writable (creating a file in {probe} failed: {e.strerror}); choose another folder"
    return None


def folder_problem(flag: str, path: str) -> str | None:
    """Why ``--flag path`` cannot become a folder this process writes into, or None."""
    why = _unwritable(path)
    return why and f"--{flag} {path} {why}"


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
    why = _unwritable(os.path.dirname(os.path.abspath(path)))
    return why and f"--{flag} {path}: its folder {why}"
