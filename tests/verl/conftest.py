"""tests/verl run in .venv-verl (verl 0.9.1 needs transformers<5.11, OpenRLHF 0.11.2 pins 5.15.0).

In another environment they are not collected, unless OPENRLHF_CFPO_REQUIRE_VERL=1 (set by `make test`
for the verl run), where a missing verl must fail rather than pass silently.
"""

import importlib.util
import os

collect_ignore_glob = []
if importlib.util.find_spec("verl") is None and os.environ.get("OPENRLHF_CFPO_REQUIRE_VERL") != "1":
    collect_ignore_glob = ["test_*.py"]
