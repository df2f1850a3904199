"""The weight-sync check's verdicts on engine replies built from a real Llama, as vLLM packs it."""

import pytest
import torch

pytest.importorskip("openrlhf.trainer.ray", reason="needs the openrlhf extra")

from openrlhf_cfpo.openrlhf.weight_sync import mismatch_line  # noqa: E402
from openrlhf_cfpo.weight_checksums import checksums  # noqa: E402

PACKED = {"qkv_proj": ["q_proj", "k_proj", "v_proj"], "gate_up_proj": ["gate_proj", "up_proj"]}


@pytest.fixture(scope="module")
def actor(tmp_path_factory):
    from transformers import AutoModelForCausalLM

    from openrlhf_cfpo.gpu_smoke import save_tiny_llama

    path = save_tiny_llama(tmp_path_factory.mktemp("policy"), seed=0)
    return dict(AutoModelForCausalLM.from_pretrained(path, dtype=torch.bfloat16).named_parameters())


def as_vllm_holds_it(params, edit=None):
    """What a vLLM Llama engine would answer: q/k/v and gate/up concatenated, the vocabulary padded to 128 rows."""
    params = {n: p.detach().clone() for n, p in params.items()}
    if edit:
        edit(params)
    engine = {}
    for name, tensor in params.items():
        if ".k_proj." in name or ".v_proj." in name or ".up_proj." in name:
            continue
        if ".q_proj." in name:
            parts = [params[name.replace("q_proj", p)] for p in ("q_proj", "k_proj", "v_proj")]
            engine[name.replace("q_proj", "qkv_proj")] = torch.cat(parts)
        elif ".gate_proj." in name:
            engine[name.replace("gate_proj", "gate_up_proj")] = torch.cat([tensor, params[name.replace("gate", "up")]])
        elif name in ("model.embed_tokens.weight", "lm_head.weight"):
            engine[name] = torch.cat([tensor, tensor.new_zeros(128 - tensor.shape[0], tensor.shape[1])])
        else:
            engine[name] = tensor
    return [
        [{"checksums": {n: tuple(c) for n, c in checksums(engine.items()).items()}, "packed_modules_mapping": PACKED}]
    ]


def sent(actor):
    return checksums(actor.items())


def test_an_engine_that_holds_the_actors_weights_passes(actor):
    assert mismatch_line(sent(actor), as_vllm_holds_it(actor)) is None


def swap_q_and_k_rows(params):
    q, k = params["model.layers.1.self_attn.q_proj.weight"], params["model.layers.1.self_attn.k_proj.weight"]
    q[: k.shape[0]], k[:] = k.clone(), q[: k.shape[0]].clone()


@pytest.mark.parametrize(
    "edit,tensor",
    [
        (lambda p: p["model.layers.0.mlp.down_proj.weight"].zero_(), "model.layers.0.mlp.down_proj.weight"),
        (lambda p: p["model.norm.weight"].fill_(float("nan")), "model.norm.weight"),
        (lambda p: p["lm_head.weight"].copy_(p["lm_head.weight"].flip(0)), "lm_head.weight"),
        (swap_q_and_k_rows, "model.layers.1.self_attn.qkv_proj.weight"),
    ],
)
def test_the_first_tensor_an_engine_holds_otherwise_is_named_in_one_line(actor, edit, tensor):
    line = mismatch_line(sent(actor), as_vllm_holds_it(actor, edit))
    assert line.startswith("[openrlhf-cfpo] vLLM engine 0 does not hold") and f"first difference {tensor}:" in line
    assert "\n" not in line and "--vllm.skip_sync_check" in line


def test_an_engine_parameter_the_actor_never_sent_is_named(actor):
    reply = as_vllm_holds_it(actor)
    reply[0][0]["checksums"]["model.extra.weight"] = (1, 1, 1.0, 1.0, 1.0, 1.0)
    line = mismatch_line(sent(actor), reply)
    assert "first difference model.extra.weight: an engine parameter the trainer did not send" in line
