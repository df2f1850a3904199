"""Where openrlhf-cfpo keeps what it builds or downloads once: one cache folder for every command."""

import os
from pathlib import Path

CACHE_VARIABLE = "OPENRLHF_CFPO_CACHE"  # the environment variable that chooses the cache folder


def cache_dir() -> Path:
    """``$OPENRLHF_CFPO_CACHE``, else ``$XDG_CACHE_HOME/openrlhf_cfpo``, else ``~/.cache/openrlhf_cfpo``."""
    env = os.environ.get(CACHE_VARIABLE)
    if env:
        return Path(env)
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "openrlhf_cfpo"
