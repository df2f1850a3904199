"""`python -m openrlhf_cfpo.local`: the same as `openrlhf-cfpo local`."""

import sys

from ..cli.main import quiet_startup

quiet_startup()
from .cli import main_local  # noqa: E402

sys.exit(main_local())
