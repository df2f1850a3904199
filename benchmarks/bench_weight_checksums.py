"""What the weight-sync check costs against the sync it checks: per-tensor checksums vs copying the same weights.

The weights of SmolLM2-135M's shapes (30 layers, 576 wide, GQA 9/3 heads, vocabulary 49152; random values) in bf16,
as OpenRLHF syncs them. A sync at the least copies every tensor into the engine's buffer; the check reads every tensor
once more on each side (``openrlhf_cfpo.weight_checksums.checksums``). Interleaved in one process, median of
``--repeats``, at each thread count; prints the ratio check / copy. Not a target: a number for the README.

    python benchmarks/bench_weight_checksums.py [--repeats 5] [--threads 1,2] [--device cpu]
"""

import argparse
import statistics
import time

import torch

from openrlhf_cfpo.weight_checksums import checksums


def smollm2_shaped(dtype, device):
    hidden, inter, heads, kv_heads, layers, vocab = 576, 1536, 9, 3, 30, 49152
    head = hidden // heads
    shapes = {"model.embed_tokens.weight": (vocab, hidden), "model.norm.weight": (hidden,)}
    for i in range(layers):
        p = f"model.layers.{i}."
        shapes.update(
            {
                p + "self_attn.q_proj.weight": (hidden, hidden),
                p + "self_attn.k_proj.weight": (kv_heads * head, hidden),
                p + "self_attn.v_proj.weight": (kv_heads * head, hidden),
                p + "self_attn.o_proj.weight": (hidden, hidden),
                p + "mlp.gate_proj.weight": (inter, hidden),
                p + "mlp.up_proj.weight": (inter, hidden),
                p + "mlp.down_proj.weight": (hidden, inter),
                p + "input_layernorm.weight": (hidden,),
                p + "post_attention_layernorm.weight": (hidden,),
            }
        )
    g = torch.Generator().manual_seed(0)
    return {n: (torch.randn(s, generator=g) * 0.02).to(dtype=dtype, device=device) for n, s in shapes.items()}


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--threads", default="1,2")
    p.add_argument("--device", default="cpu")
    args = p.parse_args()
    weights = smollm2_shaped(torch.bfloat16, args.device)
    buffers = {n: torch.empty_like(w) for n, w in weights.items()}
    n_params = sum(w.numel() for w in weights.values())
    print(f"{len(weights)} tensors, {n_params / 1e6:.1f} M parameters, bf16, {args.device}")
    for threads in map(int, args.threads.split(",")):
        torch.set_num_threads(threads)
        copy_s, check_s = [], []
        for _ in range(args.repeats):
            start = time.perf_counter()
            for n, w in weights.items():
                buffers[n].copy_(w)
            copy_s.append(time.perf_counter() - start)
            start = time.perf_counter()
            checksums(weights.items())
            check_s.append(time.perf_counter() - start)
        copy, check = statistics.median(copy_s), statistics.median(check_s)
        print(
            f"threads {threads}: copy {copy:.3f} s, checksums {check:.3f} s, ratio {check / copy:.1f}x "
            f"(one side; the check runs on the actor and on each engine)"
        )


if __name__ == "__main__":
    main()
