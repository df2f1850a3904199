"""Stand-in for `vllm.distributed.device_communicators.pynccl.PyNcclCommunicator`: gloo on the host.

openrlhf/utils/distributed_util.py:25 wraps its StatelessProcessGroup in one and broadcasts every
policy weight through it (ppo_actor.py:436, vllm_worker_wrap.py:46); NCCL needs GPUs, gloo does the
same broadcast between CPU processes.
"""
from datetime import timedelta

import torch
import torch.distributed


class PyNcclCommunicator:
    def __init__(self, group, device=None):
        self.rank, self.world_size, self.device = group.rank, group.world_size, device
        self._gloo = torch.distributed.ProcessGroupGloo(group.store, group.rank, group.world_size, timedelta(seconds=300))

    def broadcast(self, tensor: torch.Tensor, src: int, stream=None) -> None:
        options = torch.distributed.BroadcastOptions()
        options.rootRank, options.rootTensor = src, 0
        self._gloo.broadcast([tensor], options).wait()
