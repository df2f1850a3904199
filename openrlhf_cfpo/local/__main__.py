"""`python -m openrlhf_cfpo.local`: the same as `openrlhf-cfpo local`."""
import sys

from .cli import main_local

sys.exit(main_local())
