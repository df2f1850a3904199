"""Cheap per-tensor checksums that tell whether an inference engine holds the trainer's weights after a sync.

A weight sync (TRL's colocated ``load_weights``, OpenRLHF's DeepSpeed -> vLLM ``update_weight``) can fail silently:
a load that skips a tensor, a renamed or re-laid-out parameter, a packed copy the load does not refresh. Comparing
the tensors themselves would need both copies in one place; comparing a few float64 moments of each tensor, computed
where it lives, costs a few copies' worth of memory traffic on each side and catches what a silent failure leaves
behind: a stale, zeroed, NaN, permuted, transposed or swapped tensor.

Engines fuse some trainer tensors into one parameter along dim 0 (vLLM: ``q_proj``, ``k_proj``, ``v_proj`` ->
``qkv_proj``; ``gate_proj``, ``up_proj`` -> ``gate_up_proj``; a model class says which in its
``packed_modules_mapping``). Every moment here is additive over such a concatenation (the row-weighted one with an
offset), so the trainer side is grouped with :func:`expected_by_engine_param` instead of concatenating tensors::

    hf = {name: tensor_checksum(p) for name, p in trainer_model.named_parameters()}
    engine = {name: tensor_checksum(p) for name, p in vllm_model.named_parameters()}
    problem = first_mismatch(expected_by_engine_param(hf, type(vllm_model).packed_modules_mapping), engine,
                             rtol=sync_rtol(trainer_dtype, engine_dtype))

Framework-free (torch only). Not covered: tensor-parallel shards (compare per shard instead), experts stacked along a
new dim (MoE ``w13``/``w2``), quantized engine weights.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import NamedTuple

import torch

__all__ = [
    "Checksum",
    "tensor_checksum",
    "checksums",
    "concat_rows",
    "engine_param_name",
    "expected_by_engine_param",
    "first_mismatch",
    "sync_rtol",
]


class Checksum(NamedTuple):
    """Moments of a tensor ``t`` seen as a matrix ``t.reshape(rows, -1)`` (a 0-d tensor is 1 x 1), in float64.

    ``col_weighted`` = sum_ij (j + 1) t_ij and ``row_weighted`` = sum_ij (i + 1) t_ij see a permutation or a
    transpose that the plain sums do not; ``rows`` and ``numel`` give the scale :func:`first_mismatch` tolerates.
    """

    rows: int
    numel: int
    total: float
    total_sq: float
    col_weighted: float
    row_weighted: float


@torch.no_grad()
def tensor_checksum(t: torch.Tensor) -> Checksum:
    """The :class:`Checksum` of ``t``, computed where ``t`` lives.

    One float64 copy of ``t``, then two reads of it: a matrix product gives each row's sum and column-weighted
    sum, a dot product the sum of squares. Float64 throughout, so its own rounding (~1e-16) is far below any
    dtype's a sync goes through, and :func:`first_mismatch` can hold a float32 sync to float32's epsilon.
    """
    m = t.detach().reshape(t.shape[0] if t.dim() else 1, -1).to(torch.float64)
    rows, cols = m.shape
    weights = torch.stack(
        [
            torch.ones(cols, dtype=torch.float64, device=m.device),
            torch.arange(1, cols + 1, dtype=torch.float64, device=m.device),
        ],
        dim=1,
    )
    row_sums, row_col_weighted = (m @ weights).unbind(1)
    flat = m.reshape(-1)
    return Checksum(
        rows=rows,
        numel=m.numel(),
        total=row_sums.sum().item(),
        total_sq=torch.dot(flat, flat).item(),
        col_weighted=row_col_weighted.sum().item(),
        row_weighted=torch.dot(row_sums, torch.arange(1, rows + 1, dtype=torch.float64, device=m.device)).item(),
    )


def checksums(named_tensors: Iterable[tuple[str, torch.Tensor]]) -> dict[str, Checksum]:
    """``{name: tensor_checksum(t)}``; a name seen twice (a tied weight yielded again) keeps its first tensor."""
    out: dict[str, Checksum] = {}
    for name, t in named_tensors:
        if name not in out:
            out[name] = tensor_checksum(t)
    return out


def concat_rows(parts: Sequence[Checksum]) -> Checksum:
    """The :class:`Checksum` of ``torch.cat(parts, dim=0)`` from the parts' checksums (same trailing shape)."""
    rows = numel = 0
    total = total_sq = col_weighted = row_weighted = 0.0
    for p in parts:
        # rows i of this part sit at i + rows-so-far in the concatenation: sum (i + 1 + off) t_ij adds off * total
        row_weighted += p.row_weighted + rows * p.total
        rows += p.rows
        numel += p.numel
        total += p.total
        total_sq += p.total_sq
        col_weighted += p.col_weighted
    return Checksum(rows, numel, total, total_sq, col_weighted, row_weighted)


def engine_param_name(name: str, packed_modules_mapping: Mapping[str, Sequence[str]]) -> tuple[str, int]:
    """``(engine parameter name, position in its packed parameter)`` of a trainer tensor's ``name``.

    ``model.layers.0.self_attn.k_proj.weight`` with vLLM's ``{"qkv_proj": ["q_proj", "k_proj", "v_proj"]}`` gives
    ``("model.layers.0.self_attn.qkv_proj.weight", 1)``; a name no mapping covers is kept, at position 0.
    """
    parts = name.split(".")
    for packed, members in packed_modules_mapping.items():
        for position, member in enumerate(members):
            if member in parts[:-1]:
                i = parts.index(member)
                return ".".join([*parts[:i], packed, *parts[i + 1 :]]), position
    return name, 0


def expected_by_engine_param(
    hf_checksums: Mapping[str, Checksum], packed_modules_mapping: Mapping[str, Sequence[str]]
) -> dict[str, Checksum]:
    """The checksum each engine parameter should have, from the trainer's per-tensor ones (keyed by engine name).

    Tensors packed into one engine parameter are concatenated in ``packed_modules_mapping``'s order (q, k, v),
    whatever order they came in. Names the engine renames otherwise (a model's ``hf_to_vllm_mapper``) must be
    mapped by the caller first.
    """
    groups: dict[str, dict[int, Checksum]] = {}
    for name, checksum in hf_checksums.items():
        engine_name, position = engine_param_name(name, packed_modules_mapping)
        group = groups.setdefault(engine_name, {})
        if position in group:
            raise ValueError(f"two trainer tensors map to position {position} of engine parameter {engine_name!r}")
        group[position] = checksum
    return {name: concat_rows([group[i] for i in sorted(group)]) for name, group in groups.items()}


def sync_rtol(*dtypes: torch.dtype) -> float:
    """The tolerance for a sync through the given dtypes: the coarsest one's machine epsilon (its rounding bound)."""
    return max(torch.finfo(d).eps for d in dtypes)


def _scale(a: Checksum, b: Checksum) -> tuple[float, float]:
    """Bounds on sum_ij |t_ij| and on sum_ij t_ij^2 for either tensor (Cauchy-Schwarz: sum |t| <= sqrt(n sum t^2))."""
    total_sq = max(abs(a.total_sq), abs(b.total_sq))
    return (max(a.numel, b.numel) * total_sq) ** 0.5, total_sq


def _moment_mismatch(expected: Checksum, got: Checksum, rtol: float) -> str | None:
    abs_bound, sq_bound = _scale(expected, got)
    cols = max(expected.numel // max(expected.rows, 1), got.numel // max(got.rows, 1))
    # Rounding each element by a relative delta <= rtol moves each moment by at most rtol times these.
    tolerances = {
        "total": abs_bound,
        "total_sq": 2 * sq_bound,
        "col_weighted": cols * abs_bound,
        "row_weighted": max(expected.rows, got.rows) * abs_bound,
    }
    for field, scale in tolerances.items():
        e, g = getattr(expected, field), getattr(got, field)
        if not (abs(e - g) <= rtol * scale):  # NaN on either side fails here too
            return f"{field} {g:.6g} != expected {e:.6g}"
    return None


def first_mismatch(expected: Mapping[str, Checksum], got: Mapping[str, Checksum], rtol: float) -> str | None:
    """``None`` when every tensor agrees, else ``"NAME: what differs"`` for the first one (in ``expected``'s order).

    ``rtol``: the relative rounding each element may have taken on the way (0 for a bitwise copy; see
    :func:`sync_rtol`); the tolerance on each moment is ``rtol`` times a bound on what such rounding can move it by,
    so a correct sync never fails. It is a worst-case bound: the check catches lost, zeroed, NaN, permuted, swapped or
    grossly stale tensors, not one small optimizer step missed. A name on one side only is a mismatch. An engine
    parameter with extra zero rows (vLLM pads the vocabulary to a multiple of 64) has the same moments and passes.
    """
    for name, e in expected.items():
        if name not in got:
            return f"{name}: sent by the trainer, but the engine has no such parameter"
        problem = _moment_mismatch(e, got[name], rtol)
        if problem:
            return f"{name}: {problem}"
    for name in got:
        if name not in expected:
            return f"{name}: an engine parameter the trainer did not send"
    return None
