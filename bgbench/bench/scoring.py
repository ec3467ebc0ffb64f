"""``python -m bgbench.bench scoring``: what keeping per-image results costs the evaluation.

One ONNX model (default: a published one in ``results/models``) on the same test images,
every set of the paper and extended suites with the noise sweep, scored two ways:

1. argmax only: each batch fed, checked and reduced to its predicted class, then compared
   with the labels (the harness's scoring before it kept outputs);
2. as ``score_all`` does: the same, keeping the outputs, the per-image correctness and the
   composites' fingerprint, then the set's confusion matrix, flip rate and calibration.

The two alternate test set by test set, so that load from other processes on a shared
machine falls on both alike; each round sums the sets. Before timing, ``score_all`` and the
argmax path must give the same counts. Prints the median seconds per round of each and
their ratio; exits 1 when the ratio is over ``RATIO_LIMIT``. Torch-free.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

import numpy as np

from bgbench.backgrounds import BACKGROUNDS

RATIO_LIMIT = 1.10
DEFAULT_MODEL = Path(__file__).resolve().parents[2] / "results" / "models" / (
    "mnist-proposal-seed0.onnx")


def argmax_only(scorer, suite, test_sets) -> tuple[list[int], float | None]:
    """Correct images per set and ``fooled_by_any``, scored as the harness did before it
    kept outputs."""
    counts = []
    clean_correct, fooled = None, np.zeros(len(suite), bool)
    for test_set in test_sets:
        images = suite.composite(test_set, scorer.convention.size)
        preds = np.empty(images.shape[0], np.int64)
        for start in range(0, images.shape[0], scorer.batch_size):
            chunk = images[start:start + scorer.batch_size]
            logits = scorer._checked(scorer.run(scorer.convention.feed(chunk)), chunk.shape[0],
                                     test_set.label)
            preds[start:start + chunk.shape[0]] = logits.argmax(axis=1)
        correct = preds == suite.labels
        if test_set.name == "clean":
            clean_correct = correct
        elif test_set.name in BACKGROUNDS:
            fooled |= ~correct
        counts.append(int(correct.sum()))
    return counts, None if clean_correct is None else float((clean_correct & fooled).mean())


def main(argv: list[str] | None = None) -> int:
    """Time both scoring paths and print medians and their ratio; 1 if over the limit."""
    from bgbench.harness import Evaluator, TestSuite, default_threads, inspect_model, measures
    from bgbench.harness.evaluate import score_all
    from bgbench.harness.testsets import EXTENDED_SUITE, standard_test_sets

    parser = argparse.ArgumentParser(prog="python -m bgbench.bench scoring",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--model", default=str(DEFAULT_MODEL), help="ONNX model to score")
    parser.add_argument("--images", type=int, default=2000, help="test images (default 2000)")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds (default 3)")
    parser.add_argument("--threads", type=int, default=default_threads())
    parser.add_argument("--data-root", default=None)
    args = parser.parse_args(argv)

    from bgbench.bench.harness import _test_images

    info = inspect_model(args.model)
    images, labels, source = _test_images(info.dataset, args.images, args.data_root)
    sets = standard_test_sets(noise_sweep=True, suite=EXTENDED_SUITE)
    suite = TestSuite(info.dataset, images, labels, threads=args.threads)
    suite.build(sets, info.input_size)
    evaluator = Evaluator(info, ["CPUExecutionProvider"], args.threads)
    print(f"model {args.model}; data: {source}; {len(images)} images x {len(sets)} test sets; "
          f"threads {args.threads}; load average {os.getloadavg()[0]:.1f} on "
          f"{os.cpu_count()} CPUs")

    def new() -> tuple[list[int], float | None]:
        results, fooled_by_any = score_all(evaluator, suite, sets)
        return [r.n_correct for r in results], fooled_by_any

    def old() -> tuple[list[int], float | None]:
        return argmax_only(evaluator, suite, sets)

    if new() != old():
        print("the two paths disagree on the counts")
        return 1
    clean_pred = clean_correct = None

    def kept(test_set) -> None:
        nonlocal clean_pred, clean_correct
        result, out = evaluator.score(suite, test_set)
        if test_set.name == "clean":
            clean_pred, clean_correct = out.argmax(axis=1), result.correct
        measures.set_measures(out, suite.labels, measures.output_kind([out]),
                              evaluator.num_classes,
                              None if test_set.name == "clean" else clean_pred, clean_correct)

    def argmax(test_set) -> None:
        argmax_only(evaluator, suite, [test_set])

    names = {argmax: "argmax only", kept: "kept outputs and measures"}
    times: dict[str, list[float]] = {name: [] for name in names.values()}
    for _ in range(args.rounds):
        sums = dict.fromkeys(names.values(), 0.0)
        for i, test_set in enumerate(sets):
            for fn in (argmax, kept) if i % 2 == 0 else (kept, argmax):
                start = time.perf_counter()
                fn(test_set)
                sums[names[fn]] += time.perf_counter() - start
        for name, total in sums.items():
            times[name].append(total)
    medians = {name: statistics.median(t) for name, t in times.items()}
    for name, t in times.items():
        print(f"  {name:27s} median {medians[name]:7.2f} s   (rounds: "
              + ", ".join(f"{x:.2f}" for x in t) + ")")
    ratio = medians["kept outputs and measures"] / medians["argmax only"]
    verdict = "within" if ratio <= RATIO_LIMIT else "OVER"
    print(f"  ratio new / old: {ratio:.3f} ({verdict} the {RATIO_LIMIT:.2f} limit)")
    return 0 if ratio <= RATIO_LIMIT else 1
