"""CFPO (arXiv 2601.22801) in TRL 1.16's GRPOTrainer, the surrogate taken from :mod:`openrlhf_cfpo.losses`.

Import the two classes from here instead of ``trl``; the one new setting is ``policy_loss_type``::

    from openrlhf_cfpo.trl import GRPOConfig, GRPOTrainer
    args = GRPOConfig(..., policy_loss_type="cfpo")  # default "ppo": TRL's own clipped surrogate

- :mod:`.config`: ``GRPOConfig`` and the checks of settings this trainer does not implement;
- :mod:`.trainer`: ``GRPOTrainer``, whose ``_compute_loss`` is TRL's step for step with the registry's surrogate.
"""

from openrlhf_cfpo.trl.config import AGGREGATIONS, GRPOConfig, check_grpo_args
from openrlhf_cfpo.trl.trainer import GRPOTrainer

__all__ = ["GRPOConfig", "GRPOTrainer", "AGGREGATIONS", "check_grpo_args"]
