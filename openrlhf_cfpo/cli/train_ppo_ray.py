"""`python -m openrlhf_cfpo.cli.train_ppo_ray`: the public entry point (:mod:`openrlhf_cfpo.openrlhf.train_ppo_ray`)."""

import sys

from openrlhf_cfpo.openrlhf.train_ppo_ray import main

if __name__ == "__main__":
    sys.exit(main())
