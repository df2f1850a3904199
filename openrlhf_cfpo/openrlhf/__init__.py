"""CFPO in OpenRLHF 0.11.2: the drop-in ``PolicyLoss``, the Ray worker hook, and ``train_ppo_ray`` with cfpo.

    python -m openrlhf_cfpo.cli.train_ppo_ray <any OpenRLHF 0.11.2 flag> --actor.policy_loss_type cfpo

- :mod:`.policy_loss`: ``PolicyLoss``, a drop-in for ``openrlhf.models.PolicyLoss``;
- :mod:`.workers`: the ``worker_process_setup_hook`` that makes it the one every Ray worker builds;
- :mod:`.train_ppo_ray`: OpenRLHF's own entry point with ``cfpo`` accepted and checked in the driver.

Importing this package imports neither openrlhf nor Ray.
"""
from openrlhf_cfpo.openrlhf.policy_loss import PolicyLoss, is_correction

__all__ = ["PolicyLoss", "is_correction"]
