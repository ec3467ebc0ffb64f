"""``python -m bgbench.bench harness``: how fast the evaluation harness is, in one run.

For the paper's VGG-block classifier on the test images it prints:
1. onnxruntime throughput against PyTorch eager inference of the same weights, same threads;
2. the harness's whole evaluation of one model on clean + six backgrounds + 20 noise rates
   (test-set building, session, copies and scoring included) against pure onnxruntime
   inference time for the same images: the harness overhead (the two alternate per test set);
3. images per second, to size runs.
Weights are random (seeded): speed does not depend on them. Exits 1 when the harness
overhead is over its budget (``OVERHEAD_LIMIT``), as ``bench op`` does on a missed target.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np

OVERHEAD_LIMIT = 0.25


def _test_images(dataset: str, n: int, data_root: str | None) -> tuple[np.ndarray, np.ndarray,
                                                                           str]:
    from bgbench.data import load_numpy
    from bgbench.errors import BgbenchError

    try:
        images, labels = load_numpy(dataset, "test", data_root=data_root)
        source = f"{dataset} test set (real data)"
    except BgbenchError as err:
        # Speed depends only on the amount of ink per image, not on what it means.
        rng = np.random.default_rng(0)
        images = np.zeros((n, 28, 28), np.uint8)
        images[:, 6:22, 8:20] = rng.integers(0, 256, (n, 16, 12), dtype=np.uint8)
        labels = rng.integers(0, 10, n)
        source = f"SYNTHETIC images ({err})"
    reps = -(-n // len(images))
    return np.tile(images, (reps, 1, 1))[:n], np.tile(labels, reps)[:n], source


def _best_rates(a, b, n: int, repeats: int) -> tuple[float, float]:
    """Images per second of the fastest of ``repeats`` calls of ``a`` and of ``b``.

    The calls alternate (after one warm-up each) so that load from other processes on a
    shared machine falls on both alike.
    """
    a()
    b()
    times = [(_timed(a), _timed(b)) for _ in range(repeats)]
    return n / min(t[0] for t in times), n / min(t[1] for t in times)


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    """Run the harness benchmark and print the figures; returns 1 if the overhead is over
    budget."""
    from bgbench.harness import default_threads

    parser = argparse.ArgumentParser(prog="python -m bgbench.bench harness",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=10_000, help="test images (default 10000)")
    parser.add_argument("--threads", type=int, default=default_threads(),
                        help="onnxruntime and torch threads (default: cores available)")
    parser.add_argument("--batch-size", type=int, default=500)
    parser.add_argument("--repeats", type=int, default=3, help="throughput repeats (best kept)")
    parser.add_argument("--dataset", default="mnist")
    parser.add_argument("--data-root", default=None)
    args = parser.parse_args(argv)

    import onnx
    import torch

    from bgbench import backgrounds as bgs
    from bgbench.export import build_metadata, to_onnx
    from bgbench.harness import Evaluator, TestSuite, inspect_model, standard_test_sets
    from bgbench.harness.model import open_session
    from bgbench.harness.testsets import to_model_input
    from bgbench.models.classifier import VGGClassifier

    images, labels, source = _test_images(args.dataset, args.images, args.data_root)
    n, threads, bs = len(images), args.threads, args.batch_size
    try:
        from bgbench import _core  # noqa: F401
        core = "compiled bgbench._core"
    except ImportError:
        core = "numpy reference (bgbench._core NOT built: test-set building is slow)"
    print(f"data: {source}; {n} images; threads {threads}; batch size {bs}; "
          f"test-set building: {core}; load average {os.getloadavg()[0]:.1f} "
          f"on {os.cpu_count()} CPUs")

    torch.manual_seed(0)
    model = VGGClassifier().eval()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "vgg.onnx"
        proto = to_onnx(model)
        onnx.helper.set_model_props(proto, build_metadata(args.dataset, "bench", 32))
        onnx.save(proto, str(path), save_as_external_data=False)
        info = inspect_model(path)
        session = open_session(info, ["CPUExecutionProvider"], threads)
        clean = to_model_input(bgs.pad(images), 32)

        def ort_pass(x: np.ndarray = clean) -> None:
            for i in range(0, len(x), bs):
                session.run([info.output_name], {info.input_name: x[i:i + bs]})

        torch.set_num_threads(threads)
        clean_t = torch.from_numpy(clean)

        def torch_pass() -> None:
            with torch.inference_mode():
                for i in range(0, n, bs):
                    model(clean_t[i:i + bs])

        ort_rate, torch_rate = _best_rates(ort_pass, torch_pass, n, args.repeats)
        print("\n1. inference of the VGG-block classifier on the clean images")
        print(f"   onnxruntime (CPUExecutionProvider): {ort_rate:9.0f} images/s")
        print(f"   PyTorch eager (inference_mode):     {torch_rate:9.0f} images/s")
        print(f"   onnxruntime / PyTorch:              {ort_rate / torch_rate:9.2f}x")

        # Harness and pure inference alternate test set by test set, so that load from other
        # processes on a shared machine falls on both sides alike.
        sets = standard_test_sets(noise_sweep=True)
        start = time.perf_counter()
        suite = TestSuite(args.dataset, images, labels, threads=threads)
        suite.build(sets)
        evaluator = Evaluator(info, ["CPUExecutionProvider"], threads, bs)
        setup = time.perf_counter() - start
        scored, pure = 0.0, 0.0
        for i, test_set in enumerate(sets):
            x = to_model_input(suite.composite(test_set), 32)

            def harness(test_set=test_set) -> None:
                evaluator.score(suite, test_set)

            def onnx_only(x=x) -> None:
                ort_pass(x)

            order = (harness, onnx_only) if i % 2 == 0 else (onnx_only, harness)
            seconds = {fn: _timed(fn) for fn in order}
            scored += seconds[harness]
            pure += seconds[onnx_only]
        whole = setup + scored
        total = n * len(sets)
        overhead = whole / pure - 1
        print(f"\n2. whole evaluation: clean + {len(bgs.BACKGROUNDS)} backgrounds + "
              f"{len(bgs.NOISE_RATES)} noise rates = {len(sets)} test sets, {total} images")
        print(f"   harness (build test sets, session, feed, score): {whole:7.1f} s "
              f"(building and session {setup:.1f} s)")
        print(f"   pure onnxruntime inference, same images:         {pure:7.1f} s")
        verdict = "within" if overhead <= OVERHEAD_LIMIT else "OVER"
        print(f"   harness overhead:                                {100 * overhead:7.1f} % "
              f"({verdict} the {100 * OVERHEAD_LIMIT:.0f}% budget)")
        print("\n3. images per second")
        print(f"   harness end to end: {total / whole:9.0f} images/s")
        print(f"   scoring only:       {total / scored:9.0f} images/s")
        print(f"   pure onnxruntime:   {total / pure:9.0f} images/s")
    return 0 if overhead <= OVERHEAD_LIMIT else 1
