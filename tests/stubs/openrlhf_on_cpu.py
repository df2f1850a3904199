"""Test-only patches that let OpenRLHF 0.11.2's own training code run in CPU-only processes.

DeepSpeed picks its CPU accelerator by itself (``DS_ACCELERATOR=cpu``) and gloo; what is left are
OpenRLHF's direct calls into ``torch.cuda``, two DeepSpeed ops that DeepSpeed would JIT-compile on
first use (about 70 s on 2 cores), and vLLM's engine, for which ``vllm/cpu_engine.py`` stands in.
:func:`apply` answers each of them, by the line that needs it; nothing here changes what OpenRLHF
computes. Every patch is applied when (and only when) its module is imported, so a process that
never imports it (a Ray helper, a rollout engine without DeepSpeed) pays nothing.

Never imported by the package. A test process calls :func:`apply`; the Ray workers of a CPU
end-to-end run get it from ``openrlhf_cpu_site/sitecustomize.py``.
"""
from __future__ import annotations

import sys

from openrlhf_cfpo.openrlhf.train_ppo_ray import patch_on_import

HOST = "cpu"
_applied = False


def apply() -> None:
    """Patch torch.cuda, OpenRLHF, DeepSpeed and the vLLM stand-in, each on import. Idempotent."""
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
    patch_on_import("vllm", _cpu_engine)


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


def _no_shared_memory_comm_op(ds_comm_torch) -> None:
    # openrlhf/utils/deepspeed/deepspeed.py:100 calls deepspeed.init_distributed, whose
    # TorchBackend compiles a shared-memory all-reduce op for the CPU accelerator on first use.
    # Each DeepSpeed group here has world size 1: nothing to share; DeepSpeed then uses plain gloo.
    ds_comm_torch.build_shm_op = lambda: None


def _cpu_engine(vllm) -> None:
    # openrlhf/trainer/ray/vllm_engine.py:63-64 builds its engine with vllm.AsyncEngineArgs and
    # vllm.AsyncLLMEngine.from_engine_args; on CPU that engine is Hugging Face generation.
    from vllm import cpu_engine

    for name in ("AsyncEngineArgs", "AsyncLLMEngine"):
        if not hasattr(vllm, name):
            setattr(vllm, name, getattr(cpu_engine, name))


