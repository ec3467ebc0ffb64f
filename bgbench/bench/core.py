"""``python -m bgbench.bench core``: the numpy core against numpy + scikit-image, torch-free.

Builds one test set (dilate each image's foreground by a disk, composite the random
background outside it) for 10,000 MNIST-size images with ``bgbench._core`` at 1 thread and
at ``--threads``, and with the single-threaded numpy/scipy reference. The speed-up is
stated at equal thread counts (1 vs 1) and, labelled as such, with the core's threads
against the reference's one.
"""

from __future__ import annotations

import argparse

import numpy as np

from bgbench.bench._common import check_targets, time_interleaved

N_IMAGES = 10_000


def mnist_like(n: int, seed: int = 0) -> np.ndarray:
    """n uint8 [32, 32] images shaped like padded MNIST: ~19% of the central 20x20 set."""
    rng = np.random.default_rng(seed)
    images = np.zeros((n, 32, 32), np.uint8)
    centre = (rng.random((n, 20, 20)) < 0.19) * rng.integers(1, 256, (n, 20, 20))
    images[:, 6:26, 6:26] = centre
    return images


def core_label(threads: int) -> str:
    """The name of the core's speed-up with ``threads`` threads against the reference's 1."""
    return f"core vs numpy+skimage, {threads} vs 1 thread{'s' * (threads > 1)}"


# Minimum speed-ups of the core over the reference.
CORE_TARGETS = {core_label(1): 20.0, core_label(2): 20.0}


def bench_core(threads: int, rounds: int) -> dict[str, float]:
    """Times the core (1 thread and ``threads``) against the reference; prints the figures
    and returns the speed-ups by ``core_label``. Raises if the core's output differs."""
    from bgbench import _core
    from bgbench.backgrounds import DILATION_RADIUS, apply_reference, background

    images, bg = mnist_like(N_IMAGES), background("random")
    expected = apply_reference(images, bg)
    counts = sorted({1, threads})
    for n in counts:
        if not np.array_equal(_core.build_test_set(images, bg, DILATION_RADIUS, n), expected):
            raise RuntimeError(f"the core at {n} threads does not match the reference")
    cands = {n: (lambda n=n: _core.build_test_set(images, bg, DILATION_RADIUS, n))
             for n in counts}
    t = time_interleaved({"reference": lambda: apply_reference(images, bg),
                          **{f"core {n}": fn for n, fn in cands.items()}}, "cpu", rounds, 0.05)
    print(f"test set of {N_IMAGES:,} x [32, 32] uint8: numpy+scikit-image (1 thread) "
          f"{t['reference'] * 1e3:.1f} ms")
    ratios = {}
    for n in counts:
        ratios[core_label(n)] = t["reference"] / t[f"core {n}"]
        print(f"  core, {n} thread{'s' * (n > 1)}: {t[f'core {n}'] * 1e3:.2f} ms: "
              f"{ratios[core_label(n)]:.1f}x ({n} vs 1 thread{'s' * (n > 1)})")
    return ratios


def main(argv: list[str] | None = None) -> int:
    """Run the core benchmark and print the figures; returns 1 if a target is missed."""
    parser = argparse.ArgumentParser(prog="python -m bgbench.bench core",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=2,
                        help="the core's threads beside its 1-thread figure (default 2)")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds")
    args = parser.parse_args(argv)
    try:
        from bgbench import _core  # noqa: F401
    except ImportError:
        raise SystemExit("bgbench._core is not built (run `pip install --no-build-isolation "
                         "-e .`)") from None
    return 1 if check_targets(bench_core(args.threads, args.rounds), CORE_TARGETS) else 0
