"""openrlhf_cfpo.weight_checksums: what a silent weight-sync failure leaves behind is seen; a correct sync passes."""

import pytest
import torch

from openrlhf_cfpo.weight_checksums import (
    checksums,
    concat_rows,
    engine_param_name,
    expected_by_engine_param,
    first_mismatch,
    sync_rtol,
    tensor_checksum,
)

VLLM_LLAMA = {"qkv_proj": ["q_proj", "k_proj", "v_proj"], "gate_up_proj": ["gate_proj", "up_proj"]}
ATTN = "model.layers.0.self_attn"


def llama_layer(seed=0, kv_rows=4):
    """A Llama layer's trainer tensors (GQA: k and v have fewer rows than q), as named_parameters names them."""
    g = torch.Generator().manual_seed(seed)
    shapes = {
        f"{ATTN}.q_proj.weight": (8, 6),
        f"{ATTN}.k_proj.weight": (kv_rows, 6),
        f"{ATTN}.v_proj.weight": (kv_rows, 6),
        f"{ATTN}.o_proj.weight": (6, 8),
        "model.layers.0.mlp.gate_proj.weight": (10, 6),
        "model.layers.0.mlp.up_proj.weight": (10, 6),
        "model.layers.0.input_layernorm.weight": (6,),
    }
    return {name: torch.randn(shape, generator=g) for name, shape in shapes.items()}


def engine_copy(hf):
    """The engine's parameters after a correct sync: q/k/v and gate/up concatenated along dim 0, in that order."""
    engine = {
        name: t.clone() for name, t in hf.items() if not any(p in name for p in ("q_", "k_", "v_", "gate_", "up_"))
    }
    engine[f"{ATTN}.qkv_proj.weight"] = torch.cat([hf[f"{ATTN}.{p}_proj.weight"] for p in "qkv"])
    engine["model.layers.0.mlp.gate_up_proj.weight"] = torch.cat(
        [hf[f"model.layers.0.mlp.{p}_proj.weight"] for p in ("gate", "up")]
    )
    return engine


def mismatch(hf, engine, rtol=sync_rtol(torch.float32)):
    return first_mismatch(expected_by_engine_param(checksums(hf.items()), VLLM_LLAMA), checksums(engine.items()), rtol)


def test_a_packed_parameter_checksum_is_the_concatenation_of_its_parts_in_mapping_order():
    hf = llama_layer()
    shuffled = dict(reversed(list(hf.items())))  # v before k before q: the mapping's order wins
    expected = expected_by_engine_param(checksums(shuffled.items()), VLLM_LLAMA)
    assert set(expected) == set(engine_copy(hf))
    qkv = tensor_checksum(torch.cat([hf[f"{ATTN}.{p}_proj.weight"] for p in "qkv"]))
    assert expected[f"{ATTN}.qkv_proj.weight"] == pytest.approx(qkv, rel=1e-12)
    assert concat_rows([tensor_checksum(hf[f"{ATTN}.o_proj.weight"])]) == tensor_checksum(hf[f"{ATTN}.o_proj.weight"])


def test_trainer_names_map_to_the_engine_parameter_and_position_they_load_into():
    assert engine_param_name(f"{ATTN}.k_proj.weight", VLLM_LLAMA) == (f"{ATTN}.qkv_proj.weight", 1)
    assert engine_param_name("model.layers.3.mlp.up_proj.bias", VLLM_LLAMA) == (
        "model.layers.3.mlp.gate_up_proj.bias",
        1,
    )
    assert engine_param_name("model.embed_tokens.weight", VLLM_LLAMA) == ("model.embed_tokens.weight", 0)


def test_a_correct_sync_passes_even_through_bf16_rounding():
    hf = llama_layer()
    assert mismatch(hf, engine_copy(hf)) is None
    rounded = {n: t.to(torch.bfloat16) for n, t in engine_copy(hf).items()}
    assert mismatch(hf, rounded, rtol=sync_rtol(torch.float32, torch.bfloat16)) is None


@pytest.mark.parametrize(
    "damage,field",
    [
        (lambda t: t[torch.randperm(t.shape[0], generator=torch.Generator().manual_seed(1))], "row_weighted"),
        (lambda t: t[:, torch.randperm(t.shape[1], generator=torch.Generator().manual_seed(1))], "col_weighted"),
        (lambda t: t.T.contiguous(), None),
        (torch.zeros_like, "total"),
        (lambda t: t.index_put((torch.tensor([2]), torch.tensor([3])), torch.tensor(float("nan"))), "total"),
        (lambda t: t * (1 + 1e-3), None),
    ],
)
def test_a_permuted_transposed_zeroed_nan_or_stale_tensor_is_named(damage, field):
    hf = llama_layer()
    engine = engine_copy(hf)
    name = f"{ATTN}.o_proj.weight"
    engine[name] = damage(engine[name])
    problem = mismatch(hf, engine)
    assert problem is not None and problem.startswith(f"{name}: ")
    assert field is None or problem.split(": ")[1].startswith(field)


def test_a_square_tensor_transposed_is_seen():
    t = torch.randn(6, 6, generator=torch.Generator().manual_seed(0))
    assert first_mismatch({"w": tensor_checksum(t)}, {"w": tensor_checksum(t.T)}, 1e-7) is not None


def test_q_and_k_swapped_inside_qkv_is_seen():
    hf = llama_layer(kv_rows=8)  # q and k of the same shape: only their order tells them apart
    engine = engine_copy(hf)
    engine[f"{ATTN}.qkv_proj.weight"] = torch.cat([hf[f"{ATTN}.{p}_proj.weight"] for p in "kqv"])
    assert mismatch(hf, engine).startswith(f"{ATTN}.qkv_proj.weight: row_weighted")


def test_a_tensor_on_one_side_only_is_named():
    hf = llama_layer()
    engine = engine_copy(hf)
    del engine["model.layers.0.input_layernorm.weight"]
    assert mismatch(hf, engine).startswith("model.layers.0.input_layernorm.weight: sent by the trainer")
    engine = engine_copy(hf)
    engine["lm_head.weight"] = torch.ones(3, 6)
    assert mismatch(hf, engine) == "lm_head.weight: an engine parameter the trainer did not send"


def test_zero_rows_padding_the_engine_vocabulary_pass():
    embed = torch.randn(50, 6, generator=torch.Generator().manual_seed(0))
    padded = torch.cat([embed, torch.zeros(14, 6)])
    assert first_mismatch({"e": tensor_checksum(embed)}, {"e": tensor_checksum(padded)}, 1e-7) is None


def test_a_tied_weight_yielded_twice_counts_once():
    t = torch.randn(4, 3)
    assert checksums([("e", t), ("e", torch.zeros(4, 3))]) == {"e": tensor_checksum(t)}
