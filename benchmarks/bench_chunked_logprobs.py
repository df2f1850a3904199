"""Peak memory of per-token log-probs + entropy over Llama-3's 128256-token vocabulary: chunked vs naive.

Both variants start from the last hidden states and the LM head and run forward + backward:
naive = full logits -> ``log_softmax`` -> gather / entropy (what a plain implementation does);
chunked = :func:`openrlhf_cfpo.local.logprobs.logprobs_and_entropy_from_hidden`.
Peak memory is the high-water mark of live tensor storage allocated during the call, tracked per
storage in one process with a ``TorchDispatchMode`` (CPU has no allocator statistics; on a GPU,
``torch.cuda.max_memory_allocated`` is printed as well). Target: chunked peak <= 0.5x naive, values
within 1e-5 of a float64 reference.

    python benchmarks/bench_chunked_logprobs.py [--tokens 1024] [--hidden 256] [--chunk 1024]
"""

from __future__ import annotations

import argparse
import time
import weakref

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

from openrlhf_cfpo.local.logprobs import logprobs_and_entropy_from_hidden, naive_logprobs_and_entropy

VOCAB = 128256  # Llama-3


class PeakTensorMemory(TorchDispatchMode):
    """High-water mark of the bytes held by tensor storages created inside the mode."""

    def __init__(self):
        super().__init__()
        self.live = self.peak = 0
        self._seen = set()

    def _free(self, key, nbytes):
        self.live -= nbytes
        self._seen.discard(key)

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in tree_flatten(out)[0]:
            if isinstance(t, torch.Tensor) and t.device.type != "meta":
                st = t.untyped_storage()
                key = id(st)
                if key in self._seen:
                    continue
                self._seen.add(key)
                self.live += st.nbytes()
                self.peak = max(self.peak, self.live)
                weakref.finalize(st, self._free, key, st.nbytes())
        return out


def naive(hidden, weight, labels):
    return naive_logprobs_and_entropy(hidden @ weight.T, labels)


def chunked(hidden, weight, labels, chunk):
    return logprobs_and_entropy_from_hidden(hidden, weight, labels, chunk_size=chunk)


def measure(fn, hidden, weight, labels):
    h = hidden.detach().requires_grad_(True)
    w = weight.detach().requires_grad_(True)
    if torch.cuda.is_available() and h.is_cuda:
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
    t0 = time.perf_counter()
    with PeakTensorMemory() as mem:
        lp, ent = fn(h, w, labels)
        (lp.sum() + 0 * ent.sum()).backward()
    elapsed = time.perf_counter() - t0
    cuda_peak = torch.cuda.max_memory_allocated() - base if h.is_cuda else None
    return lp.detach(), ent.detach(), h.grad, mem.peak, cuda_peak, elapsed


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tokens", type=int, default=1024, help="response tokens in the batch")
    p.add_argument("--hidden", type=int, default=256, help="hidden size (memory of the logits does not depend on it)")
    p.add_argument("--chunk", type=int, default=1024 // 8, help="positions per chunk")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    a = p.parse_args()
    g = torch.Generator().manual_seed(0)
    hidden = torch.randn(a.tokens, a.hidden, generator=g).to(a.device)
    weight = (torch.randn(VOCAB, a.hidden, generator=g) / a.hidden**0.5).to(a.device)
    labels = torch.randint(0, VOCAB, (a.tokens,), generator=g).to(a.device)

    lp_n, ent_n, gh_n, peak_n, cuda_n, t_n = measure(naive, hidden, weight, labels)
    lp_c, ent_c, gh_c, peak_c, cuda_c, t_c = measure(lambda h, w, y: chunked(h, w, y, a.chunk), hidden, weight, labels)

    # Ground truth in float64: both float32 variants are judged against it, not against each other.
    with torch.no_grad():
        lp_t, ent_t = naive_logprobs_and_entropy(hidden.double() @ weight.double().T, labels)

    def err(lp, ent):
        return max((lp.double() - lp_t).abs().max().item(), (ent.double() - ent_t).abs().max().item())

    max_err, naive_err = err(lp_c, ent_c), err(lp_n, ent_n)
    grad_err = (gh_n - gh_c).abs().max().item()
    mib = 2**20
    print(
        f"vocab {VOCAB}, {a.tokens} tokens, hidden {a.hidden}, chunk {a.chunk}, device {a.device}, forward + backward"
    )
    print(f"  naive   peak {peak_n / mib:9.1f} MiB   {t_n:6.2f} s")
    print(f"  chunked peak {peak_c / mib:9.1f} MiB   {t_c:6.2f} s")
    if cuda_n is not None:
        print(f"  cuda max_memory_allocated: naive {cuda_n / mib:.1f} MiB, chunked {cuda_c / mib:.1f} MiB")
    ratio = peak_c / peak_n
    print(f"peak memory ratio chunked/naive = {ratio:.3f} (target <= 0.5): {'PASS' if ratio <= 0.5 else 'FAIL'}")
    print(
        f"max |error| vs float64, log-probs and entropy: chunked {max_err:.2e}, naive {naive_err:.2e}; "
        f"chunked vs naive hidden-grad {grad_err:.2e} (target <= 1e-5): "
        f"{'PASS' if max_err <= 1e-5 and grad_err <= 1e-5 else 'FAIL'}"
    )
    print(f"time ratio chunked/naive = {t_c / t_n:.2f}")


if __name__ == "__main__":
    main()
