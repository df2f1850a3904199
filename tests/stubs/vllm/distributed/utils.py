"""Stand-in for `vllm.distributed.utils.StatelessProcessGroup`, over a torch TCPStore.

openrlhf/utils/distributed_util.py:24 builds it to sync weights from the policy (rank 0) to the
rollout engines; like vLLM's, it lives beside (not in) torch.distributed's default group, which on
the policy side belongs to DeepSpeed.
"""
from dataclasses import dataclass
from datetime import timedelta

import torch.distributed


@dataclass
class StatelessProcessGroup:
    rank: int
    world_size: int
    store: torch.distributed.Store

    @staticmethod
    def create(host: str, port: int, rank: int, world_size: int, data_expiration_seconds: int = 3600,
               store_timeout: int = 300) -> "StatelessProcessGroup":
        store = torch.distributed.TCPStore(host, port, world_size, is_master=rank == 0,
                                           timeout=timedelta(seconds=store_timeout))
        return StatelessProcessGroup(rank=rank, world_size=world_size, store=store)
