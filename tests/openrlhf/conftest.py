"""Tiny Hugging Face models for OpenRLHF's own code on CPU, built offline (seconds)."""
import json

import pytest

from openrlhf_cfpo.gpu_smoke import save_tiny_llama  # the 2-layer, 32-wide Llama gpu-smoke also builds


@pytest.fixture(scope="session")
def tiny_openrlhf_models(tmp_path_factory):
    """``(policy, reward, prompts)``: a policy, a model OpenRLHF loads as its reward model (a random
    value head on another tiny Llama), and 8 prompts in OpenRLHF's jsonl layout (key ``input``)."""
    from openrlhf_cfpo.local.assets import TOPICS, prompt_text

    root = tmp_path_factory.mktemp("tiny_openrlhf")
    prompts = root / "prompts.jsonl"
    prompts.write_text("".join(json.dumps({"input": prompt_text(topic)}) + "\n" for topic in list(TOPICS)[:8]))
    return save_tiny_llama(root / "policy", seed=0), save_tiny_llama(root / "reward", seed=1), str(prompts)
