"""Group baselines by OpenRLHF's estimator names: the advantage of each of a prompt's samples from the others.

The paper pairs CFPO with two of them (section 3.2): group-relative advantages for reasoning (eq. 9, OpenRLHF's
``group_norm``) and leave-one-out advantages for alignment (eq. 10, ``rloo``). Torch-free at import, so the
OpenRLHF driver can check its flags against :data:`GROUP_BASELINE_ESTIMATORS` before anything heavy loads.
"""

from __future__ import annotations


def rloo(r, n):
    """Eq. (10): ``R_i - mean_{j != i} R_j``, ``r`` of shape (prompts, n)."""
    return r - (r.sum(-1, keepdim=True) - r) / (n - 1)


def reinforce_baseline(r, n):
    """REINFORCE++-baseline: ``R_i - mean_j R_j`` (OpenRLHF whitens the resulting advantages afterwards)."""
    return r - r.mean(-1, keepdim=True)


def group_norm(r, n):
    """Eq. (9): ``(R_i - mean_j R_j) / std_j R_j`` (unbiased std as ``torch.std``, +1e-9 as OpenRLHF)."""
    return (r - r.mean(-1, keepdim=True)) / (r.std(-1, keepdim=True) + 1e-9)


GROUP_BASELINES = {"rloo": rloo, "reinforce_baseline": reinforce_baseline, "group_norm": group_norm}
# Every OpenRLHF estimator whose baseline needs >= 2 samples per prompt (dr_grpo: OpenRLHF's, not implemented here).
GROUP_BASELINE_ESTIMATORS = (*GROUP_BASELINES, "dr_grpo")


def group_baseline(rewards, n_samples_per_prompt: int, estimator: str):
    """The shaped scalar reward of each sample; ``rewards`` is (num_prompts * n,), each prompt's n consecutive."""
    if estimator not in GROUP_BASELINES:
        raise ValueError(f"unknown advantage estimator {estimator!r}; choose one of {', '.join(GROUP_BASELINES)}")
    r = rewards.float().reshape(-1, n_samples_per_prompt)
    return GROUP_BASELINES[estimator](r, n_samples_per_prompt).reshape(-1)
