"""CFPO in OpenRLHF 0.11.2: the drop-in ``PolicyLoss`` and the entry point that puts it in every Ray worker.

    python -m openrlhf_cfpo.cli.train_ppo_ray <any OpenRLHF 0.11.2 flag> --actor.policy_loss_type cfpo

- :mod:`.policy_loss`: ``PolicyLoss``, a drop-in for ``openrlhf.models.PolicyLoss``;
- :mod:`.train_ppo_ray`: how it reaches every process of a run, top to bottom (entry point, driver checks,
  the Ray worker hook, the patched ``ppo_actor``).

Importing this package imports neither openrlhf, Ray nor torch; ``PolicyLoss`` loads on first access.
"""

__all__ = ["PolicyLoss", "PolicyLossOutput", "is_correction"]


def __getattr__(name):
    if name in __all__:
        from openrlhf_cfpo.openrlhf import policy_loss

        return getattr(policy_loss, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
