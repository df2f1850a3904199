"""Test-wide setup: stand-ins for GPU-only extensions on the path, offline Hugging Face."""
import os
import sys

STUBS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "stubs")

# In sys.path for this process, in PYTHONPATH for what it spawns (Ray workers, CLI subprocesses).
if STUBS not in sys.path:
    sys.path.insert(0, STUBS)
os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (STUBS, os.environ.get("PYTHONPATH")) if p)
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("WANDB_MODE", "disabled")
