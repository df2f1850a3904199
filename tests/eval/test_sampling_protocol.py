"""Both eval backends sample with the protocol's settings only, never the model's generation_config.json.

The vLLM side runs on the real engine in test_vllm_backend.py.
"""

import importlib.util
import json

import pytest
from transformers import GenerationConfig

from openrlhf_cfpo.eval.decoding import Decoding
from openrlhf_cfpo.eval.generation import HFBackend

REASONING = Decoding(max_new_tokens=4, temperature=0.6, top_p=0.95)
# What Qwen2.5-Instruct's generation_config.json sets, and more.
MODEL_DEFAULTS = dict(do_sample=True, temperature=0.7, top_p=0.8, top_k=20, repetition_penalty=1.05, min_p=0.3)


@pytest.fixture
def opinionated_model(make_tiny_model, tmp_path):
    path = make_tiny_model(tmp_path / "m")
    GenerationConfig(bos_token_id=2, eos_token_id=3, pad_token_id=0, **MODEL_DEFAULTS).save_pretrained(path)
    return path


def test_hf_generation_uses_the_protocols_sampling_and_none_of_the_models_defaults(opinionated_model, monkeypatch):
    backend = HFBackend(opinionated_model)
    effective = []
    generate = backend.model.generate

    def recording(**kwargs):
        # The configuration transformers itself builds from what it is given and the model's defaults.
        given = {k: v for k, v in kwargs.items() if k not in ("input_ids", "attention_mask", "generation_config")}
        effective.append(backend.model._prepare_generation_config(kwargs.get("generation_config"), **given)[0])
        return generate(**kwargs)

    monkeypatch.setattr(backend.model, "generate", recording)
    backend.generate([[{"role": "user", "content": "hello"}]], REASONING)
    backend.generate([[{"role": "user", "content": "hello"}]], Decoding(max_new_tokens=3))  # greedy
    sampled, greedy = effective
    assert (sampled.do_sample, sampled.temperature, sampled.top_p) == (True, 0.6, 0.95)
    assert sampled.top_k == 0 and sampled.repetition_penalty == 1.0 and sampled.min_p in (None, 0.0)
    assert greedy.do_sample is False and greedy.repetition_penalty == 1.0 and greedy.min_p is None


def test_results_record_the_backend_and_the_sampling_settings(cli, opinionated_model, fixture_data, tmp_path):
    assert (
        cli(
            "ifeval",
            "--model",
            opinionated_model,
            "--output",
            tmp_path / "run",
            "--data-dir",
            fixture_data,
            "--limit",
            1,
            "--max-new-tokens",
            2,
        )
        == 0
    )
    settings = json.loads((tmp_path / "run/ifeval/results.json").read_text())["settings"]
    assert settings["generation"]["backend"] == ["hf"]
    assert settings["generation"]["other_sampling"] == {"top_k": 0, "min_p": 0.0, "repetition_penalty": 1.0}
    assert settings["decoding"] == {"max_new_tokens": 2, "temperature": 0.0, "top_p": 1.0}


@pytest.mark.parametrize("gpus, warned", [(1, True), (0, False)])
def test_a_gpu_without_vllm_gets_one_warning_line(
    gpus, warned, cli, tiny_model, fixture_data, tmp_path, monkeypatch, capsys
):
    import torch

    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "vllm" else find_spec(name, *a))
    monkeypatch.setattr(torch.cuda, "device_count", lambda: gpus)
    assert (
        cli(
            "ifeval",
            "--model",
            tiny_model,
            "--output",
            tmp_path / "run",
            "--data-dir",
            fixture_data,
            "--limit",
            1,
            "--max-new-tokens",
            2,
        )
        == 0
    )
    warnings = [line for line in capsys.readouterr().err.splitlines() if "warning:" in line]
    assert len(warnings) == int(warned)
    if warned:
        assert "GPU is present but vLLM is not installed" in warnings[0]
