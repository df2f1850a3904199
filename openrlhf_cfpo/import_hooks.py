"""Patch a module right after it is imported, without importing it (and what it pulls in) earlier.

Our Ray worker hook patches OpenRLHF's ppo_actor this way: importing it would bring DeepSpeed into
processes (vLLM engines) that OpenRLHF keeps it out of. Imports nothing heavy, so any process may use it.
"""
import importlib.abc
import importlib.machinery
import sys
from typing import Callable, Dict

_PATCHES: Dict[str, Callable] = {}


def patch_on_import(name: str, patch: Callable) -> None:
    """Run ``patch(module)`` on module ``name`` right after it executes, or now if it already has."""
    module = sys.modules.get(name)
    if module is not None:
        patch(module)
        return
    _PATCHES[name] = patch
    if not any(isinstance(finder, PatchAfterImport) for finder in sys.meta_path):
        sys.meta_path.insert(0, PatchAfterImport())


class PatchAfterImport(importlib.abc.MetaPathFinder):
    """Finds a module waiting in :func:`patch_on_import` as the path finder does, and patches it once it executed."""

    def find_spec(self, fullname, path, target=None):
        patch = _PATCHES.pop(fullname, None)
        if patch is None:
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path, target)
        if spec is None or spec.loader is None:
            return spec
        exec_module = spec.loader.exec_module

        def exec_and_patch(module):
            exec_module(module)
            patch(module)

        spec.loader.exec_module = exec_and_patch
        return spec
