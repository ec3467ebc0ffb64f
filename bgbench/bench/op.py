"""``python -m bgbench.bench op``: the fused composite op against its references, in one run.

Prints medians and ratios, forward and forward+backward (from given output gradients), at
the training shape ``[128,1,32,32]`` and a large shape ``[64,3,256,256]`` (mask
``[N,1,H,W]``, background ``[N,C,H,W]``):
- fused vs the eager reference (``m*x + (1-m)*b`` and the two means, autograd);
- fused vs ``torch.compile`` of that reference;
- at the training shape, the fused forward+backward's bytes per second against ``copy_``, and
  the op's own forward and backward called directly, without autograd, to show what autograd
  adds to the call (eager pays that too);
- the large forward's bytes per second (x, m, b read, out written) against ``copy_`` of the
  same number of bytes, measured in the same run (CUDA: at 64M elements). Like ``copy_``,
  the checked figure writes into an existing tensor (``composite(..., out=...)``); the
  allocating call is printed beside it, with ``clone`` (a copy that allocates) for scale;
- CPU only: the numpy core (``bgbench._core``) against numpy + scikit-image for 10,000
  MNIST-size images.
Candidates are timed in interleaved rounds, so on a shared machine they see the same load;
each figure is the median over rounds of the per-call time. Refuses to run on the fallback.
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable

import numpy as np

# Targets from issue 3 ("Speed"): (label, minimum ratio).
CPU_TARGETS = {"train fwd+bwd vs eager": 4.0, "large fwd+bwd vs eager": 2.0,
               "train fwd+bwd vs compile": 1.5, "large fwd+bwd vs compile": 1.0,
               "large fwd bandwidth vs copy_": 0.7, "core vs numpy+skimage": 20.0}
CUDA_TARGETS = {"train fwd+bwd vs eager": 2.0, "64M fwd bandwidth vs copy_": 0.75}


def _sync(device: str) -> None:
    if device == "cuda":
        import torch

        torch.cuda.synchronize()


def time_interleaved(cands: dict[str, Callable[[], object]], device: str, rounds: int,
                     block_s: float) -> dict[str, float]:
    """Median seconds per call of each candidate, timed in alternating rounds."""
    iters, samples = {}, {name: [] for name in cands}
    for name, fn in cands.items():  # warm up, and size a block to about block_s
        fn()
        _sync(device)
        start = time.perf_counter()
        fn()
        _sync(device)
        iters[name] = max(1, int(block_s / max(time.perf_counter() - start, 1e-7)))
    for _ in range(rounds):
        for name, fn in cands.items():
            _sync(device)
            start = time.perf_counter()
            for _ in range(iters[name]):
                fn()
            _sync(device)
            samples[name].append((time.perf_counter() - start) / iters[name])
    return {name: float(np.median(s)) for name, s in samples.items()}


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


def _copy_candidates(nbytes: int, device: str, dtype):
    """copy_ and clone of a tensor of nbytes / 2 bytes: each reads and writes nbytes in all."""
    import torch

    numel = nbytes // 2 // torch.finfo(dtype).bits * 8
    src = torch.rand(numel, device=device, dtype=dtype)
    dst = torch.empty_like(src)
    return (lambda: dst.copy_(src)), src.clone


def _moved_bytes(x, m, b) -> int:
    return (2 * x.numel() + m.numel() + b.numel()) * x.element_size()


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
                # written. The op's floor is moving these bytes, as fast as copy_ can.
                x, m, b, grads = tensors
                nbytes = (5 * x.numel() + 3 * m.numel() + 3 * b.numel()) * x.element_size()
                copy, _ = _copy_candidates(nbytes, device, dtype)
                tb = time_interleaved({"fused": cands["fused"], "copy_": copy,
                                       "kernels": op_kernels_call(x, m, b, grads)}, device,
                                      rounds, block)
                print(f"  train forward+backward moves {nbytes / 1e6:.1f} MB: fused "
                      f"{nbytes / tb['fused'] / 1e9:.1f} GB/s ({tb['fused'] * 1e3:.3f} ms), "
                      f"copy_ of the same bytes {nbytes / tb['copy_'] / 1e9:.1f} GB/s: fused is "
                      f"{tb['copy_'] / tb['fused']:.0%} of copy_ speed")
                # What autograd adds (graph, engine, torch.autograd.grad), which the eager
                # reference pays too: it bounds the ratio to eager at this small shape.
                print(f"  of which the op's own forward and backward, called directly without "
                      f"autograd: {tb['kernels'] * 1e3:.3f} ms "
                      f"({nbytes / tb['kernels'] / 1e9:.1f} GB/s, "
                      f"{tb['copy_'] / tb['kernels']:.0%} of copy_); autograd adds "
                      f"{(tb['fused'] - tb['kernels']) * 1e3:.3f} ms")
            if key == "large" and not backward:
                nbytes = _moved_bytes(*tensors[:3])
                copy, clone = _copy_candidates(nbytes, device, dtype)
                tb = time_interleaved({"fused out=": op_call_into(*tensors[:3]), "copy_": copy,
                                       "fused": cands["fused"], "clone": clone}, device,
                                      rounds, block)
                bw = {name: nbytes / t / 1e9 for name, t in tb.items()}
                # copy_ writes into an existing tensor, as the op does with out=. Without it
                # the op allocates its output, and fresh pages cost a fault and a zeroing by
                # the kernel each: compare that with clone, which allocates too.
                ratios[f"{label} fwd bandwidth vs copy_"] = bw["fused out="] / bw["copy_"]
                print(f"  {label} forward moves {nbytes / 1e6:.0f} MB; copy_ of the same bytes "
                      f"{bw['copy_']:.1f} GB/s ({tb['copy_'] * 1e3:.2f} ms)")
                print(f"    fused into given outputs (out=): {bw['fused out=']:.1f} GB/s "
                      f"({tb['fused out='] * 1e3:.2f} ms): {bw['fused out='] / bw['copy_']:.0%} "
                      f"of copy_")
                print(f"    fused, allocating its output: {bw['fused']:.1f} GB/s "
                      f"({tb['fused'] * 1e3:.2f} ms): {bw['fused'] / bw['copy_']:.0%} of copy_; "
                      f"{bw['fused'] / bw['clone']:.0%} of clone ({bw['clone']:.1f} GB/s), "
                      f"a copy that allocates too")
    return ratios


def mnist_like(n: int, seed: int = 0) -> np.ndarray:
    """n uint8 [32, 32] images shaped like padded MNIST: ~19% of the central 20x20 set."""
    rng = np.random.default_rng(seed)
    images = np.zeros((n, 32, 32), np.uint8)
    centre = (rng.random((n, 20, 20)) < 0.19) * rng.integers(1, 256, (n, 20, 20))
    images[:, 6:26, 6:26] = centre
    return images


def bench_core(threads: int, rounds: int) -> dict[str, float]:
    """Times the numpy core against the numpy + scikit-image reference; prints them."""
    from bgbench import _core
    from bgbench.backgrounds import DILATION_RADIUS, apply_reference, background

    images, bg = mnist_like(10_000), background("random")
    assert np.array_equal(_core.build_test_set(images, bg, DILATION_RADIUS, threads),
                          apply_reference(images, bg)), "the core does not match the reference"
    t = time_interleaved({
        "core": lambda: _core.build_test_set(images, bg, DILATION_RADIUS, threads),
        "reference": lambda: apply_reference(images, bg)}, "cpu", rounds, 0.05)
    ratio = t["reference"] / t["core"]
    print(f"core, 10,000 x [32, 32] uint8, {threads} threads: core {t['core'] * 1e3:.2f} ms, "
          f"numpy+scikit-image {t['reference'] * 1e3:.1f} ms: {ratio:.1f}x")
    return {"core vs numpy+skimage": ratio}


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
    missed = 0
    print("targets (issue 3):")
    for label, want in targets.items():
        if label not in ratios:
            print(f"  {label:<32} >= {want:<5} not measured")
            continue
        ok = ratios[label] >= want
        missed += not ok
        print(f"  {label:<32} >= {want:<5} got {ratios[label]:6.2f}  {'ok' if ok else 'MISSED'}")
    return 1 if missed else 0
