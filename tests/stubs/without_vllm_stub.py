"""Import modules as a CPU machine without vLLM would, although the vLLM stand-in here is on sys.path.

openrlhf needs the stand-in (``vllm/``) to import at all; TRL, finding a ``vllm`` module, takes it for the
real vLLM and imports parts of it the stand-in does not have. Importing TRL's modules once through
:func:`import_without_vllm_stub` makes them settle on "no vLLM"; the stand-in is back afterwards.
"""
import importlib
import os
import sys

STUBS = os.path.dirname(os.path.abspath(__file__))


def import_without_vllm_stub(*modules: str) -> None:
    saved_path = list(sys.path)
    saved_modules = {name: sys.modules.pop(name) for name in list(sys.modules) if name.split(".")[0] == "vllm"}
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != STUBS]
    try:
        for module in modules:
            importlib.import_module(module)
    finally:
        sys.path[:] = saved_path
        sys.modules.update(saved_modules)
