"""Minimal stand-in for vLLM: what `openrlhf.trainer.ray` imports at module load, and an offline `LLM` that
records how it is driven (for `openrlhf_cfpo.eval`'s vLLM backend)."""
import os

from .sampling_params import SamplingParams  # noqa: F401

__version__ = "0.29.0"


class _Engine:
    """`LLM.llm_engine`: takes requests and finishes one per `step()`, the latest added first (so answers finish
    out of the order they were asked in); each answer names the prompt length and seed it answered."""

    def __init__(self):
        self.queue, self.added, self.steps = [], [], 0

    def add_request(self, request_id, prompt, params):
        assert isinstance(request_id, str)
        self.queue.append((request_id, prompt, params))
        self.added.append((request_id, prompt, params, self.steps))  # and how many steps had run when it came

    def has_unfinished_requests(self):
        return bool(self.queue)

    def step(self):
        from .cpu_engine import CompletionOutput, RequestOutput

        self.steps += 1
        request_id, prompt, params = self.queue.pop()
        ids = prompt["prompt_token_ids"]
        text = f" answer to {len(ids)} tokens with seed {params.seed} "
        return [RequestOutput(request_id, ids, [CompletionOutput(0, text, [], "stop")], finished=True)]


class LLM:
    """Stand-in for vLLM's offline `LLM`: no model, no GPU. `LLM.made` holds every instance, with the arguments it
    was built with and the multiprocessing method vLLM would have started its processes with."""

    made: list = []

    def __init__(self, model, **kwargs):
        self.model, self.kwargs = model, kwargs
        self.multiproc_method = os.environ.get("VLLM_WORKER_MULTIPROC_METHOD", "fork")  # vllm/envs.py: fork unless set
        self.llm_engine = _Engine()
        LLM.made.append(self)


from . import inputs, utils  # noqa: E402,F401
