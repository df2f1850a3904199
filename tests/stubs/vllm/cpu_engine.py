"""Stand-in for vLLM's ``AsyncEngineArgs`` / ``AsyncLLMEngine``: Hugging Face generation on the host.

OpenRLHF 0.11.2's own rollout actor (``RolloutRayActor``, openrlhf/trainer/ray/vllm_engine.py) runs
unchanged on top of it: it builds the engine from engine args (vllm_engine.py:63-64), generates one
completion per request (vllm_engine.py:167-177, read by openrlhf/utils/agent.py's executors), counts
unfinished requests (vllm_engine.py:181), sleeps and wakes, and forwards the weight sync to its
worker extension (``collective_rpc``, vllm_engine.py:107-125). The worker side of that sync is done
here as openrlhf/trainer/ray/vllm_worker_wrap.py does it, but on the host: WorkerWrap.update_weight
allocates the incoming weight with ``device="cuda"`` (vllm_worker_wrap.py:40).

``openrlhf_on_cpu.apply()`` exports the two classes as ``vllm.AsyncEngineArgs`` and
``vllm.AsyncLLMEngine``. Logprobs (the train/rollout IS correction) are not implemented.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Dict, List, Optional

import torch

TAG = "[vllm-cpu-stand-in]"


@dataclass
class CompletionOutput:
    index: int
    text: str
    token_ids: List[int]
    finish_reason: str  # "stop" (EOS, kept in token_ids as vLLM does) or "length"
    logprobs: Optional[list] = None


@dataclass
class RequestOutput:
    request_id: str
    prompt_token_ids: List[int]
    outputs: List[CompletionOutput]
    finished: bool = True


class AsyncEngineArgs:
    def __init__(self, model: str, dtype: str = "auto", seed: int = 0, tensor_parallel_size: int = 1,
                 **kwargs: Any) -> None:
        if tensor_parallel_size != 1:
            raise NotImplementedError(f"{TAG} one process per engine: --vllm.tensor_parallel_size 1")
        self.model, self.dtype, self.seed = model, dtype, seed
        self.extra = kwargs  # max_model_len, enforce_eager, gpu_memory_utilization, ...: nothing to tune here


class _OutputProcessor:
    def __init__(self) -> None:
        self.unfinished = 0

    def get_num_unfinished_requests(self) -> int:
        return self.unfinished


class AsyncLLMEngine:
    @classmethod
    def from_engine_args(cls, engine_args: AsyncEngineArgs) -> "AsyncLLMEngine":
        return cls(engine_args)

    def __init__(self, engine_args: AsyncEngineArgs) -> None:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        dtype = {"auto": None, "bfloat16": torch.bfloat16, "float16": torch.float16, "float32": torch.float32}
        self.dtype = dtype[engine_args.dtype] or torch.float32
        self.model = AutoModelForCausalLM.from_pretrained(engine_args.model, dtype=self.dtype).eval()
        self.tokenizer = AutoTokenizer.from_pretrained(engine_args.model)
        self.output_processor = _OutputProcessor()
        self._sleeping = False
        self._group = None
        self._weights_received = 0
        torch.manual_seed(engine_args.seed)

    # ---- generation (vllm_engine.py:167-177) ----

    async def generate(self, prompt: Dict[str, Any], sampling_params, request_id: str):
        if sampling_params.logprobs is not None:
            raise NotImplementedError(f"{TAG} no logprobs: keep --algo.advantage.is_correction_level off")
        self.output_processor.unfinished += 1
        try:
            yield self._generate(prompt["prompt_token_ids"], sampling_params, request_id)
        finally:
            self.output_processor.unfinished -= 1

    @torch.no_grad()
    def _generate(self, prompt_token_ids: List[int], params, request_id: str) -> RequestOutput:
        eos = self.tokenizer.eos_token_id
        sample = params.temperature > 0
        output = self.model.generate(
            torch.tensor([prompt_token_ids]),
            attention_mask=torch.ones(1, len(prompt_token_ids), dtype=torch.long),
            do_sample=sample,
            temperature=params.temperature if sample else None,
            top_p=params.top_p if sample else None,
            top_k=params.top_k if sample and params.top_k > 0 else None,
            max_new_tokens=params.max_tokens,
            min_new_tokens=params.min_tokens or None,
            eos_token_id=eos,
            pad_token_id=self.tokenizer.pad_token_id,
        )
        token_ids = output[0, len(prompt_token_ids):].tolist()
        finish_reason = "length"
        if eos in token_ids:
            token_ids, finish_reason = token_ids[: token_ids.index(eos) + 1], "stop"
        text = self.tokenizer.decode(token_ids, skip_special_tokens=params.skip_special_tokens)
        return RequestOutput(request_id, list(prompt_token_ids), [CompletionOutput(0, text, token_ids, finish_reason)])

    # ---- the weight sync (vllm_engine.py:107-125 -> vllm_worker_wrap.py) ----

    async def collective_rpc(self, method: str, args=(), kwargs=None):
        return [getattr(self, f"_worker_{method}")(*args, **(kwargs or {}))]

    def _worker_init_process_group(self, master_address, master_port, rank_offset, world_size, group_name,
                                   backend="nccl", use_ray=False):
        from openrlhf.utils.distributed_util import stateless_init_process_group

        if use_ray:
            raise NotImplementedError(f"{TAG} weight sync over vLLM's stateless group only: drop --vllm.sync_with_ray")
        # One worker per engine: its rank in the sync group is the offset the policy gave it.
        self._group = stateless_init_process_group(master_address, master_port, rank_offset, world_size, "cpu")

    def _worker_update_weight(self, name, dtype, shape, empty_cache=False):
        assert dtype == self.dtype, f"mismatch dtype: src {dtype}, dst {self.dtype}"
        weight = torch.empty(shape, dtype=dtype)
        self._group.broadcast(weight, src=0)
        self.model.get_parameter(name).data.copy_(weight)
        self._weights_received += 1
        if empty_cache:  # OpenRLHF marks the last weight of a sync this way
            print(f"{TAG} pid {os.getpid()}: received {self._weights_received} policy weights", flush=True)
            self._weights_received = 0

    def _worker_update_weight_cuda_ipc(self, *args, **kwargs):
        raise NotImplementedError(f"{TAG} CUDA IPC needs GPUs: keep --train.colocate_all off")

    # ---- engine state ----

    async def is_sleeping(self) -> bool:
        return self._sleeping

    async def sleep(self, level: int = 1) -> None:
        self._sleeping = True

    async def wake_up(self, tags=None) -> None:
        self._sleeping = False

    async def reset_prefix_cache(self) -> None:
        pass

    async def pause_generation(self, mode: str = "keep") -> None:
        pass

    async def resume_generation(self) -> None:
        pass
