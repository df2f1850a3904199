"""Forward+backward time of our PolicyLoss (cfpo, ppo) against OpenRLHF 0.11.2's PolicyLoss (ppo).

Same inputs (64 x 1024 tokens, float32), interleaved in one process so that machine noise hits
all three alike; prints the median time of each and the ratios to OpenRLHF's PPO, for each action
mask OpenRLHF may pass: bool, int64 (what OpenRLHF 0.11.2's samples_generator builds) and float, each
as a prefix mask of random lengths (~60% dense), a random 90%-dense mask, and a full one.
Target: cfpo <= 0.8x OpenRLHF's ppo for every mask.

    python benchmarks/bench_policy_loss.py [--batch 64] [--seq 1024] [--repeats 200] [--device cpu]
"""

import argparse
import os
import statistics
import sys
import time

import torch

# The real openrlhf imports on a CPU machine only with the GPU-extension stand-ins on the path.
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "stubs"))


MASK_DTYPES = {"bool": torch.bool, "int64": torch.int64, "float": torch.float32}
DENSITIES = ("prefix", "random90", "full")


def make_inputs(batch, seq, device, density="prefix", dtype=torch.bool, seed=0):
    g = torch.Generator().manual_seed(seed)
    old = -torch.rand(batch, seq, generator=g) * 3
    logp = old + 0.3 * torch.randn(batch, seq, generator=g)
    adv = torch.randn(batch, 1, generator=g).expand(batch, seq).contiguous()
    if density == "prefix":
        lengths = torch.randint(seq // 4, seq + 1, (batch,), generator=g)
        mask = torch.arange(seq)[None, :] < lengths[:, None]
    elif density == "random90":
        mask = torch.rand(batch, seq, generator=g) < 0.9
    else:
        mask = torch.ones(batch, seq, dtype=torch.bool)
    return [t.to(device) for t in (logp, old, adv, mask.to(dtype))]


def time_one(loss_fn, inputs, device):
    logp, old, adv, mask = inputs
    x = logp.clone().requires_grad_(True)
    if device == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    loss = loss_fn(x, old, adv, action_mask=mask)[0]
    loss.backward()
    if device == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - t0


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--seq", type=int, default=1024)
    ap.add_argument("--repeats", type=int, default=200)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = ap.parse_args()

    from openrlhf.models import PolicyLoss as OpenRLHFPolicyLoss

    from openrlhf_cfpo.openrlhf import PolicyLoss

    losses = {
        "openrlhf ppo": OpenRLHFPolicyLoss(policy_loss_type="ppo"),
        "ours ppo": PolicyLoss(policy_loss_type="ppo"),
        "ours cfpo": PolicyLoss(policy_loss_type="cfpo"),
    }
    print(
        f"PolicyLoss forward+backward, {args.batch}x{args.seq} tokens on {args.device}, "
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, median of {args.repeats}"
    )
    print(f"  {'mask':<16} {'openrlhf ppo':>12} {'ours ppo':>9} {'ours cfpo':>10}   cfpo/openrlhf ppo")
    worst = 0.0
    for dtype_name, dtype in MASK_DTYPES.items():
        for density in DENSITIES:
            inputs = make_inputs(args.batch, args.seq, args.device, density, dtype)
            times = {name: [] for name in losses}
            for _ in range(10):  # warm-up
                for fn in losses.values():
                    time_one(fn, inputs, args.device)
            for _ in range(args.repeats):
                for name, fn in losses.items():
                    times[name].append(time_one(fn, inputs, args.device))
            med = {name: statistics.median(ts) for name, ts in times.items()}
            ratio = med["ours cfpo"] / med["openrlhf ppo"]
            worst = max(worst, ratio)
            print(
                f"  {dtype_name + ' ' + density:<16} {med['openrlhf ppo'] * 1e3:9.3f} ms "
                f"{med['ours ppo'] * 1e3:6.3f} ms "
                f"{med['ours cfpo'] * 1e3:7.3f} ms   {ratio:.2f}x"
            )
    print(
        f"worst cfpo / openrlhf ppo = {worst:.2f}x (target <= 0.80x for every mask): "
        f"{'MET' if worst <= 0.8 else 'NOT MET'}"
    )


if __name__ == "__main__":
    main()
