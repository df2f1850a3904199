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


def run_flags(argv) -> list:
    """The run flags of the embedded default that ``argv`` names (``--embedded_default NAME``, the last one; else
    :data:`DEFAULT_NAME`): what that default's model and prompts need, placed before flags that may override them."""
    name = DEFAULT_NAME
    for i, arg in enumerate(argv):
        if arg == "--embedded_default" and i + 1 < len(argv):
            name = argv[i + 1]
        elif arg.startswith("--embedded_default="):
            name = arg.split("=", 1)[1]
    return list(get(name).flags) if name in REGISTRY else []  # (an unknown name: the parser's one line says so)


def layered(command_defaults, user_flags) -> list:
    """A command's own defaults (`sweep`, `compare`), then the chosen embedded default's run flags, then the user's:
    each layer overrides the one before (a later flag wins in argparse)."""
    return [*command_defaults, *run_flags([*command_defaults, *user_flags]), *user_flags]


def get(name: str):
    """The :class:`~.build.EmbeddedDefault` registered as ``name``."""
    if name not in REGISTRY:
        raise KeyError(f"no embedded default {name!r}; registered: {', '.join(REGISTRY)}")
    return importlib.import_module(f"{__name__}.{name}").DEFAULT
