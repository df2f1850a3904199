"""CFPO in verl 0.9.1: registers the ``cfpo`` policy loss (``actor_rollout_ref.actor.policy_loss.loss_mode=cfpo``).

This package is the ``verl.plugins`` entry point ``cfpo`` (setup.py). ``import verl`` loads that entry-point
group in every process it runs in (the driver and each Ray worker), so installing ``openrlhf-cfpo[verl]`` is
all a run needs: no user code, no ``external_lib``. Importing this package registers the loss (the adapter is
:mod:`openrlhf_cfpo.verl.policy_loss`) and logs one WARNING line per process, so a run's log shows that CFPO
was loaded. ``VERL_USE_EXTERNAL_PLUGINS=none`` (or a list without ``cfpo``) switches the entry point off;
``VERL_USE_EXTERNAL_MODULES=openrlhf_cfpo.verl`` loads it regardless.

verl's plugin loader swallows a plugin's exceptions at DEBUG level. So any failure here is logged at ERROR,
with its traceback, before it is raised: a broken install shows in the log, and a run that asks for
``loss_mode=cfpo`` then stops at verl's "Unsupported loss mode: cfpo" instead of training with another loss.
"""

import logging

VERL_VERSION = "0.9.1"  # the release this adapter is written and tested against (setup.py's `verl` extra)

logger = logging.getLogger(__name__)

try:
    import verl

    from openrlhf_cfpo.verl.policy_loss import LOSS_MODE, compute_policy_loss_cfpo, register

    register()
except Exception:
    logger.exception(
        "openrlhf_cfpo could not register the 'cfpo' policy loss in verl (it needs verl==%s: pip install "
        "'openrlhf-cfpo[verl]'); loss_mode=cfpo is unavailable in this process",
        VERL_VERSION,
    )
    raise

logger.warning(
    "openrlhf_cfpo: registered policy loss %r in verl %s (actor_rollout_ref.actor.policy_loss.loss_mode=%s)%s",
    LOSS_MODE,
    verl.__version__,
    LOSS_MODE,
    "" if verl.__version__ == VERL_VERSION else f"; written for verl {VERL_VERSION}, check the loss signature",
)

__all__ = ["LOSS_MODE", "compute_policy_loss_cfpo", "register"]
