"""Applies tests/stubs/openrlhf_on_cpu.py in every Python process of a CPU end-to-end OpenRLHF run.

A test puts this folder on PYTHONPATH (with tests/stubs) for the run it starts: Python imports
``sitecustomize`` at start-up, so the driver and each Ray worker (policy, reference, reward, trainer,
rollout engine, and vLLM's engine-core processes) get the patches before they import anything of OpenRLHF. The
patches themselves wait for their modules, so a process that imports none of them is untouched.
"""

import os
import sys

_stubs = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if _stubs not in sys.path:
    sys.path.append(_stubs)

import openrlhf_on_cpu  # noqa: E402
import vllm_on_cpu  # noqa: E402

openrlhf_on_cpu.apply()
vllm_on_cpu.apply()
