"""The rollout policy is the trained policy: after every DeepSpeed -> vLLM weight sync, each engine is checked.

OpenRLHF 0.11.2 broadcasts the actor's weights into every vLLM engine after each training round
(``ppo_actor.py`` ``broadcast_to_vllm``) and never looks at what arrived. A sync can fail without a word:
vLLM's ``PyNcclCommunicator`` disables itself when NCCL cannot load and its ``broadcast`` then returns at once
(``vllm/distributed/device_communicators/pynccl.py:437-438``), a name or tied-weight mistake loads a tensor into
the wrong parameter. The run then trains on samples of weights it never had, and exits 0.

So, right after the sync, on the actor's rank 0:

1. each synced tensor's :func:`~openrlhf_cfpo.weight_checksums.tensor_checksum` (float64 moments; under ZeRO-3
   each tensor is gathered once more, as the sync itself did);
2. each engine's own checksums of the parameters its model holds, read in the engine's worker by
   :class:`CheckedWorkerWrap` (OpenRLHF's worker extension, one request added) through the engine actor's
   existing ``update_weight`` call;
3. :func:`~openrlhf_cfpo.weight_checksums.first_mismatch` over the two, the actor's tensors grouped as vLLM packs
   them (q/k/v, gate/up). A mismatch stops every actor rank with one line naming the engine, the first tensor that
   differs and the likely causes, before the engine generates the next rollout.

On by default; ``--vllm.skip_sync_check`` turns it off. Engines with tensor parallelism (``--vllm.tensor_parallel_size``
above 1) hold shards, which this check does not compare: it says so once and skips.
"""

from __future__ import annotations

import os
import time

from openrlhf.trainer.ray.vllm_worker_wrap import WorkerWrap

from openrlhf_cfpo.openrlhf.train_ppo_ray import SKIP_SYNC_CHECK_FLAG, StopTraining
from openrlhf_cfpo.weight_checksums import (
    Checksum,
    checksums,
    expected_by_engine_param,
    first_mismatch,
    tensor_checksum,
)

# The name under which the engine actor's update_weight(name, dtype, shape) asks its workers for checksums instead.
CHECKSUM_REQUEST = "__openrlhf_cfpo_weight_checksums__"
# OpenRLHF copies each tensor in the engine's own dtype (vllm_worker_wrap.py:39 asserts it): the values arrive bit for
# bit, and the moments differ only by float64 summation order (about log2(n) * 1e-16 of their scale).
EXACT_COPY_RTOL = 1e-12
OPENRLHF_WORKER_EXTENSION = "openrlhf.trainer.ray.vllm_worker_wrap.WorkerWrap"
WORKER_EXTENSION = f"{__name__}.CheckedWorkerWrap"


class WeightSyncMismatch(StopTraining):
    """An engine's weights after a sync are not the actor's: the run stops before sampling from it."""


class CheckedWorkerWrap(WorkerWrap):
    """OpenRLHF's vLLM worker extension, answering :data:`CHECKSUM_REQUEST` with the checksums of its own weights."""

    def update_weight(self, name, dtype, shape, empty_cache=False):
        if name != CHECKSUM_REQUEST:
            return super().update_weight(name, dtype, shape, empty_cache)
        model = self.model_runner.model
        return {
            "checksums": {n: tuple(c) for n, c in checksums(model.named_parameters()).items()},
            "packed_modules_mapping": {
                k: list(v) for k, v in (getattr(model, "packed_modules_mapping", None) or {}).items()
            },
        }


def with_checked_workers(vllm_engine) -> None:
    """In the driver: ``create_vllm_engines`` builds every engine with :class:`CheckedWorkerWrap` as its worker
    extension (``vllm_engine.py:267`` names OpenRLHF's; ``:301`` calls ``RolloutRayActor.options(...).remote``)."""
    actor_class = vllm_engine.RolloutRayActor
    if getattr(actor_class, "_openrlhf_cfpo_checked", False):
        return

    class ActorWithCheckedWorkers:
        _openrlhf_cfpo_checked = True

        def __init__(self, options=None):
            self._options = options

        def options(self, **options):
            return ActorWithCheckedWorkers(actor_class.options(**options))

        def remote(self, *args, **kwargs):
            if kwargs.get("worker_extension_cls") == OPENRLHF_WORKER_EXTENSION:
                kwargs["worker_extension_cls"] = WORKER_EXTENSION
            return (self._options or actor_class).remote(*args, **kwargs)

        def __getattr__(self, name):
            return getattr(actor_class, name)

    vllm_engine.RolloutRayActor = ActorWithCheckedWorkers()


def check_engines(trainer, sync: int) -> None:
    """Compare every engine's weights with the actor's just after sync number ``sync``; all actor ranks call this."""
    import deepspeed
    import ray
    import torch
    import torch.distributed as dist

    args = trainer.strategy.args
    model = trainer.actor.model.module
    rank0 = dist.get_rank() == 0
    if args.vllm.tensor_parallel_size > 1:
        if rank0 and sync == 1:
            print(
                f"[openrlhf-cfpo] the weight sync check compares whole tensors; engines with "
                f"--vllm.tensor_parallel_size {args.vllm.tensor_parallel_size} hold shards: not checked",
                flush=True,
            )
        return
    started = time.perf_counter()
    sent, problem = {}, None
    for name, param in model.named_parameters():
        if not (param.requires_grad or not getattr(trainer.actor, "is_vlm", False)):
            continue  # what broadcast_to_vllm skips: a VLM's frozen vision tower
        if args.ds.tensor_parallel_size > 1:
            gathered = deepspeed.module_inject.layers.GatherReplacedLayerParams([param], model, enabled=True)
        else:
            gathered = deepspeed.zero.GatheredParameters([param], enabled=args.ds.zero_stage == 3)
        with gathered:
            if rank0:
                sent[name] = tensor_checksum(param.data)
    if rank0:
        replies = ray.get(
            [engine.update_weight.remote(CHECKSUM_REQUEST, dtype=None, shape=None) for engine in trainer.vllm_engines]
        )
        problem = mismatch_line(sent, replies)
    failed = torch.tensor([float(problem is not None)], device=torch.cuda.current_device())
    dist.broadcast(failed, src=0)
    if failed.item():
        raise WeightSyncMismatch(problem or "[openrlhf-cfpo] the weight sync check failed on actor rank 0 (see above)")
    if rank0:
        print(
            f"[openrlhf-cfpo] weight sync {sync} checked in pid {os.getpid()}: {len(sent)} tensors on "
            f"{len(replies)} vLLM engine(s) equal the actor's ({time.perf_counter() - started:.2f} s)",
            flush=True,
        )


def mismatch_line(sent: dict, replies: list) -> str | None:
    """The one error line for the first engine whose weights differ from the actor's ``sent`` checksums, else None.

    ``replies``: per engine, what its workers answered :data:`CHECKSUM_REQUEST` with (one per tensor-parallel rank).
    """
    for index, (reply,) in enumerate(replies):  # one worker per engine: check_engines skips tensor parallelism
        got = {name: Checksum(*values) for name, values in reply["checksums"].items()}
        expected = expected_by_engine_param(sent, reply["packed_modules_mapping"])
        problem = first_mismatch(expected, got, rtol=EXACT_COPY_RTOL)
        if problem:
            return (
                f"[openrlhf-cfpo] vLLM engine {index} does not hold the weights the actor just sent, so the next "
                f"rollout would sample from another policy: first difference {problem}. Likely causes: the weight "
                f"broadcast did nothing (NCCL failed to load: check `python -c 'import torch; "
                f"print(torch.cuda.nccl.version())'` and NCCL_DEBUG=INFO), a parameter name or tied weight the "
                f"engine maps differently, or a vLLM build that repacks weights at load. Stopped before training on "
                f"its samples; {SKIP_SYNC_CHECK_FLAG} turns this check off"
            )
    return None
