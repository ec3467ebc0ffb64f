"""``python -m bgbench.bench op``: the fused composite op against its references, in one run.

Prints medians and ratios, forward and forward+backward (from given output gradients), at
the training shape ``[128,1,32,32]`` and a large shape ``[64,3,256,256]`` (mask
``[N,1,H,W]``, background ``[N,C,H,W]``):
- fused vs the eager reference (``m*x + (1-m)*b`` and the two means, autograd);
- fused vs ``torch.compile`` of that reference;
- at the training shape, the fused forward+backward's bytes read and written, its speed
  against ``copy_`` of the same total bytes (a 1-read/1-write stream, so a floor, not a
  like-for-like baseline), and the op's own forward and backward called directly, without
  autograd, to show what autograd adds to the call (eager pays that too);
- the large forward (x, m, b read, out written; CUDA: at 64M elements) against
  ``torch.addcmul(b, x, m)``, one elementwise pass that reads the same three tensors (m
  broadcast over channels alike) and writes one of x's shape: the same reads and writes.
  The checked figure writes into existing outputs on both sides (``composite(..., out=...)``
  against ``addcmul(..., out=...)``); the allocating calls are printed beside it;
- CPU only: the numpy core (``bgbench._core``) against numpy + scikit-image for 10,000
  MNIST-size images, at equal thread counts and at the core's threads (``bench core``).
Candidates are timed in interleaved rounds, so on a shared machine they see the same load;
each figure is the median over rounds of the per-call time. Refuses to run on the fallback.
"""

from __future__ import annotations

import argparse
import os

from bgbench.bench._common import check_targets, time_interleaved
from bgbench.bench.core import CORE_TARGETS, bench_core

# The op's speed targets: (label, minimum ratio).
CPU_TARGETS = {"train fwd+bwd vs eager": 4.0, "large fwd+bwd vs eager": 2.0,
               "train fwd+bwd vs compile": 1.5, "large fwd+bwd vs compile": 1.0,
               "large fwd vs addcmul (same reads/writes)": 0.7, **CORE_TARGETS}
CUDA_TARGETS = {"train fwd+bwd vs eager": 2.0, "64M fwd vs addcmul (same reads/writes)": 0.75}


def op_inputs(shape, device, dtype, requires_grad: bool):
    """Seeded ``x [N,C,H,W]``, ``m [N,1,H,W]``, ``b [N,C,H,W]`` and output gradients."""
    import torch

    n, c, h, w = shape
    gen = torch.Generator().manual_seed(0)
    x, m, b = (torch.rand(s, generator=gen).to(device, dtype).requires_grad_(requires_grad)
               for s in (shape, (n, 1, h, w), shape))
    grads = (torch.randn(shape, generator=gen).to(device, dtype),
             torch.randn(n, generator=gen).to(device, dtype),
             torch.randn(n, generator=gen).to(device, dtype))
    return x, m, b, grads


def op_call(fn, x, m, b, grads, backward: bool):
    """A no-argument callable timing ``fn``: forward only, or forward+backward from ``grads``."""
    import torch

    if backward:
        return lambda: torch.autograd.grad(fn(x, m, b), (x, m, b), grads)

    def forward():
        with torch.no_grad():
            return fn(x, m, b)
    return forward


def op_call_into(x, m, b):
    """A no-argument forward of the fused op into outputs allocated once (``out=``)."""
    import torch

    from bgbench import ops

    x, m, b = (t.detach() for t in (x, m, b))
    n = x.shape[0]
    out = (torch.empty_like(x), x.new_empty(n), x.new_empty(n))
    return lambda: ops.composite(x, m, b, out=out)


def op_kernels_call(x, m, b, grads):
    """A no-argument call of the fused forward then its backward op, directly: no autograd."""
    import torch

    x, m, b = (t.detach() for t in (x, m, b))
    ops = torch.ops.bgbench
    return lambda: (ops.composite(x, m, b), ops.composite_backward(*grads, x, m, b))


def compiled_reference():
    """``torch.compile`` of the eager reference, specialised to each shape (its best case)."""
    import torch

    from bgbench import ops

    return torch.compile(ops.composite_reference, dynamic=False)


def _op_candidates(shape, device, dtype, backward: bool, with_compile: bool):
    from bgbench import ops

    x, m, b, grads = op_inputs(shape, device, dtype, backward)
    impls = {"fused": ops.composite, "eager": ops.composite_reference}
    if with_compile:
        impls["compile"] = compiled_reference()
    cands = {name: op_call(fn, x, m, b, grads, backward) for name, fn in impls.items()}
    return cands, (x, m, b, grads)


def copy_call(nbytes: int, device: str, dtype):
    """``copy_`` between two tensors of nbytes / 2 bytes: nbytes read and written in all."""
    import torch

    numel = nbytes // 2 // torch.finfo(dtype).bits * 8
    src = torch.rand(numel, device=device, dtype=dtype)
    dst = torch.empty_like(src)
    return lambda: dst.copy_(src)


def addcmul_calls(x, m, b):
    """``b + x*m`` by ``torch.addcmul``, into an output allocated once and allocating: the
    composite forward's reads (x, m broadcast over channels, b) and write (x's shape)."""
    import torch

    x, m, b = (t.detach() for t in (x, m, b))
    out = torch.empty_like(x)
    return (lambda: torch.addcmul(b, x, m, out=out)), (lambda: torch.addcmul(b, x, m))


def _mb(tensors) -> float:
    return sum(t.numel() * t.element_size() for t in tensors) / 1e6


def bench_op(device: str, rounds: int, with_compile: bool) -> dict[str, float]:
    """Times every op candidate, prints them, returns the ratios checked against targets."""
    import torch

    dtype = torch.float32
    ratios = {}
    if with_compile:
        try:  # inductor needs a C++ compiler (CPU) or triton (CUDA)
            x, m, b, _ = op_inputs((2, 1, 4, 4), device, dtype, False)
            from bgbench import ops

            torch.compile(ops.composite_reference, dynamic=False)(x, m, b)
        except Exception as err:  # noqa: BLE001  (any failure means: no compile figures)
            print(f"torch.compile unavailable, its figures are skipped: {err!r:.200}")
            with_compile = False
    shapes = {"train": (128, 1, 32, 32),
              "large": (64, 3, 256, 256) if device == "cpu" else (64, 1, 1024, 1024)}
    print(f"{'shape':<22}{'pass':<10}{'fused ms':>10}{'eager ms':>10}{'compile ms':>12}"
          f"{'x eager':>9}{'x compile':>11}")
    for key, shape in shapes.items():
        label = key if device == "cpu" or key == "train" else "64M"
        for backward in (False, True):
            cands, tensors = _op_candidates(shape, device, dtype, backward, with_compile)
            block = 0.05 if device == "cpu" else 0.02
            t = time_interleaved(cands, device, rounds, block)
            pass_name = "fwd+bwd" if backward else "fwd"
            vs_e = t["eager"] / t["fused"]
            ratios[f"{label} {pass_name} vs eager"] = vs_e
            comp = f"{t['compile'] * 1e3:12.3f}" if "compile" in t else f"{'-':>12}"
            vs_c = ""
            if "compile" in t:
                ratios[f"{label} {pass_name} vs compile"] = t["compile"] / t["fused"]
                vs_c = f"{t['compile'] / t['fused']:10.2f}x"
            print(f"{str(list(shape)):<22}{pass_name:<10}{t['fused'] * 1e3:10.3f}"
                  f"{t['eager'] * 1e3:10.3f}{comp}{vs_e:8.2f}x{vs_c:>11}")
            if key == "train" and backward:
                # Forward: x, m, b read, out written; backward: g, x, m, b read, gx, gm, gb
                # written. copy_ of the same total bytes is the floor for moving them.
                x, m, b, grads = tensors
                read_mb = _mb((x, m, b, grads[0], x, m, b))
                written_mb = _mb((x, x, m, b))
                nbytes = int(round((read_mb + written_mb) * 1e6))
                tb = time_interleaved({"fused": cands["fused"],
                                       "copy_": copy_call(nbytes, device, dtype),
                                       "kernels": op_kernels_call(x, m, b, grads)}, device,
                                      rounds, block)
                print(f"  train forward+backward reads {read_mb:.1f} MB and writes "
                      f"{written_mb:.1f} MB: fused {tb['fused'] * 1e3:.3f} ms "
                      f"({nbytes / tb['fused'] / 1e9:.1f} GB/s); copy_ of the same total "
                      f"bytes (half read, half written) {nbytes / tb['copy_'] / 1e9:.1f} GB/s: "
                      f"fused is {tb['copy_'] / tb['fused']:.0%} of copy_ speed")
                # What autograd adds (graph, engine, torch.autograd.grad), which the eager
                # reference pays too: it bounds the ratio to eager at this small shape.
                print(f"  of which the op's own forward and backward, called directly without "
                      f"autograd: {tb['kernels'] * 1e3:.3f} ms "
                      f"({nbytes / tb['kernels'] / 1e9:.1f} GB/s, "
                      f"{tb['copy_'] / tb['kernels']:.0%} of copy_); autograd adds "
                      f"{(tb['fused'] - tb['kernels']) * 1e3:.3f} ms")
            if key == "large" and not backward:
                x, m, b = tensors[:3]
                read_mb, written_mb = _mb((x, m, b)), _mb((x,))
                nbytes = (read_mb + written_mb) * 1e6
                addcmul_into, addcmul = addcmul_calls(x, m, b)
                tb = time_interleaved({"fused out=": op_call_into(x, m, b),
                                       "addcmul out=": addcmul_into, "fused": cands["fused"],
                                       "addcmul": addcmul}, device, rounds, block)
                bw = {name: nbytes / t / 1e9 for name, t in tb.items()}
                # Both sides write into existing tensors for the checked figure. Allocating,
                # each pays a page fault and a zeroing per fresh page of its output.
                ratios[f"{label} fwd vs addcmul (same reads/writes)"] = (
                    tb["addcmul out="] / tb["fused out="])
                print(f"  {label} forward reads {read_mb:.0f} MB (x, m, b) and writes "
                      f"{written_mb:.0f} MB; torch.addcmul(b, x, m) reads and writes the same")
                for kind, fused, ref in (("into given outputs (out=)", "fused out=",
                                          "addcmul out="),
                                         ("allocating the output", "fused", "addcmul")):
                    print(f"    {kind}: fused {bw[fused]:.1f} GB/s ({tb[fused] * 1e3:.2f} ms), "
                          f"addcmul {bw[ref]:.1f} GB/s ({tb[ref] * 1e3:.2f} ms): fused is "
                          f"{tb[ref] / tb[fused]:.0%} of addcmul's speed")
    return ratios


def main(argv: list[str] | None = None) -> int:
    """Run the op benchmark and print the figures; returns 1 if a target is missed."""
    parser = argparse.ArgumentParser(prog="python -m bgbench.bench op",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--threads", type=int, default=2,
                        help="CPU threads for torch and the core (default 2, the target's)")
    parser.add_argument("--rounds", type=int, default=9, help="interleaved rounds per figure")
    parser.add_argument("--no-compile", action="store_true",
                        help="skip the torch.compile reference (it takes a while to compile)")
    args = parser.parse_args(argv)

    import torch

    from bgbench import ops

    if not ops.HAVE_EXTENSION:
        raise SystemExit("bgbench._C is not built: refusing to time the pure-torch fallback "
                         "(run `pip install --no-build-isolation -e .`)")
    if args.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: no CUDA device is available")
    torch.set_num_threads(args.threads)
    print(f"bgbench op benchmark: torch {torch.__version__}, device {args.device}"
          + (f" ({torch.cuda.get_device_name()})" if args.device == "cuda" else "")
          + f", torch threads {torch.get_num_threads()}, cores {os.cpu_count()}, "
          f"{torch.__config__.parallel_info().splitlines()[-1].strip()}, "
          f"{args.rounds} interleaved rounds, float32")
    ratios = bench_op(args.device, args.rounds, not args.no_compile)
    if args.device == "cpu":
        ratios.update(bench_core(args.threads, max(3, args.rounds // 2)))
    targets = CPU_TARGETS if args.device == "cpu" else CUDA_TARGETS
    return 1 if check_targets(ratios, targets) else 0
