"""``GRPOConfig``: TRL 1.16's, plus ``policy_loss_type`` and ``vllm_weight_sync_check``; settings this trainer cannot
honour are refused."""

from __future__ import annotations

from dataclasses import dataclass, field

import trl

from openrlhf_cfpo.losses import DEFAULT_POLICY_LOSS, PolicySurrogate, check_policy_loss_args, trust_region
from openrlhf_cfpo.recipes import TRL_AGGREGATIONS

# TRL loss types that only aggregate the per-token surrogate (the ones this trainer implements; written once, in
# openrlhf_cfpo.recipes, which the train scripts read without importing TRL), and those that bring a surrogate of their
# own (TRL 1.16's grpo_config.py lists all eight in loss_type's help).
AGGREGATIONS = TRL_AGGREGATIONS
OWN_SURROGATE_LOSS_TYPES = ("cispo", "sapo", "luspo", "vespo")


def check_grpo_args(args) -> PolicySurrogate:
    """The surrogate ``args`` select; a setting this adapter does not implement raises one line saying what to do."""
    if args.loss_type in OWN_SURROGATE_LOSS_TYPES:
        raise ValueError(
            f"loss_type={args.loss_type!r} is a surrogate of its own; here the surrogate is policy_loss_type and "
            f"loss_type only aggregates it: use one of {', '.join(AGGREGATIONS)} "
            f"(or trl.GRPOTrainer for {args.loss_type})"
        )
    if args.loss_type not in AGGREGATIONS:
        raise ValueError(
            f"unknown loss_type={args.loss_type!r}: TRL {trl.__version__} has {', '.join(AGGREGATIONS)} "
            f"(aggregations of policy_loss_type, usable here) and {', '.join(OWN_SURROGATE_LOSS_TYPES)} "
            "(surrogates of their own)"
        )
    if args.importance_sampling_level != "token":
        raise ValueError(
            f"importance_sampling_level={args.importance_sampling_level!r} (GSPO) is not supported: policy_loss_type "
            "works on per-token ratios; set importance_sampling_level='token' (or use trl.GRPOTrainer)"
        )
    if args.delta is not None:
        raise ValueError(
            f"delta={args.delta} (two-sided clipping) is not supported: policy_loss_type sets the trust region "
            "by itself; set delta=None (or use trl.GRPOTrainer)"
        )
    return check_policy_loss_args(args.policy_loss_type, *epsilons(args))


def epsilons(args) -> tuple[float, float]:
    """``(eps_low, eps_high)``: TRL's ``epsilon`` below r = 1 (A < 0), ``epsilon_high`` (else ``epsilon``) above."""
    return trust_region(args.epsilon, eps_high=args.epsilon_high)


@dataclass
class GRPOConfig(trl.GRPOConfig):
    """TRL's ``GRPOConfig`` plus ``policy_loss_type`` and ``vllm_weight_sync_check``."""

    policy_loss_type: str = field(
        default=DEFAULT_POLICY_LOSS,
        metadata={
            "help": "Per-token policy surrogate, from openrlhf_cfpo.losses: 'ppo' (default: TRL's clipped surrogate) "
            "or 'cfpo' (Clipping-Free Policy Optimization, arXiv 2601.22801: r*A - |A|/(2*eps)*(r-1)^2). "
            f"`loss_type` then only picks the aggregation ({', '.join(AGGREGATIONS)}); `epsilon` / `epsilon_high` are "
            "the trust-region "
            "widths where A < 0 / A > 0."
        },
    )

    vllm_weight_sync_check: bool = field(
        default=True,
        metadata={
            "help": "After each weight sync into the colocated vLLM (vllm_mode='colocate', one engine per process), "
            "compare per-tensor float64 checksums of the weights sent and of the engine's weights, and stop naming the "
            "first tensor that differs. Costs about one read of the weights on each side per sync; server mode and "
            "vllm_tensor_parallel_size > 1 are not checked."
        },
    )

    def __post_init__(self):
        check_grpo_args(self)
        super().__post_init__()
