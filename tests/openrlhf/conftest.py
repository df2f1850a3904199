"""Tiny Hugging Face models for OpenRLHF's own code on CPU, built offline (seconds)."""

import json

import pytest

from openrlhf_cfpo.gpu_smoke import save_tiny_llama  # the 2-layer, 64-wide Llama gpu-smoke also builds (vLLM takes it)


@pytest.fixture(scope="session")
def tiny_openrlhf_models(tmp_path_factory):
    """``(policy, reward, prompts)``: a policy, a model OpenRLHF loads as its reward model (a random
    value head on another tiny Llama), and 8 prompts in OpenRLHF's jsonl layout (key ``input``)."""
    from openrlhf_cfpo.local.embedded.chat import TOPICS, prompt_text

    root = tmp_path_factory.mktemp("tiny_openrlhf")
    prompts = root / "prompts.jsonl"
    prompts.write_text("".join(json.dumps({"input": prompt_text(topic)}) + "\n" for topic in list(TOPICS)[:8]))
    return save_tiny_llama(root / "policy", seed=0), save_tiny_llama(root / "reward", seed=1), str(prompts)


@pytest.fixture
def parse_with_openrlhf(monkeypatch):
    """``argv -> args``: OpenRLHF 0.11.2's own parser and our driver checks on ``train_ppo_ray``'s arguments, stopping
    where Ray would start."""
    pytest.importorskip("openrlhf.trainer.ray", reason="needs the openrlhf extra")
    import ray

    from openrlhf_cfpo.openrlhf import train_ppo_ray

    class Stop(Exception):
        pass

    def parse(argv):
        parsed = []
        check_args = train_ppo_ray.check_args
        monkeypatch.setattr(train_ppo_ray, "check_args", lambda a: parsed.append(a) or check_args(a))
        monkeypatch.setattr(ray, "is_initialized", lambda: False)
        monkeypatch.setattr(ray, "init", lambda *a, **k: (_ for _ in ()).throw(Stop()))
        with pytest.raises(Stop):
            train_ppo_ray.main(list(argv))
        (args,) = parsed
        return args

    return parse
