"""The embedded defaults by name (``--embedded_default``): one module each, registered here in one line.

A default's module, named as the default, defines ``DEFAULT``, an :class:`~.build.EmbeddedDefault`: how to
build its models and prompts offline, and what its rewards are; :mod:`.build` builds it once per machine into
the cache. A module is imported only when its default is used.
"""

from __future__ import annotations

import importlib

# name (= module name) -> what it is, for `--help`.
REGISTRY = {
    "chat": "a reward model with a verbosity bias, the paper's Figure 3",
    "arithmetic": "verifiable rewards from a reward_func file, the paper's Figure 2",
    "smollm2_arithmetic": "the same on a real pretrained chat model, SmolLM2-135M-Instruct, with the reasoning reward",
}
DEFAULT_NAME = "chat"  # what `--embedded_default` is when not given


def get(name: str):
    """The :class:`~.build.EmbeddedDefault` registered as ``name``."""
    if name not in REGISTRY:
        raise KeyError(f"no embedded default {name!r}; registered: {', '.join(REGISTRY)}")
    return importlib.import_module(f"{__name__}.{name}").DEFAULT
