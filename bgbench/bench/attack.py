"""``python -m bgbench.bench attack``: the worst-case search's speed against plain evaluation.

On one model and provider, side by side in one run (the two alternate, so load from other
processes on a shared machine falls on both alike): images x queries per second of the whole
search (pool, universal, worst-of-k, adaptive; background drawing, compositing and scoring
included) against ``bgbench eval``'s images per second on the paper's test sets (composites
prebuilt, as ``eval`` times them). Prints the medians and their ratio; exits 1 when the ratio
is below ``RATIO_TARGET``.
"""

from __future__ import annotations

import argparse
import os
import statistics
from pathlib import Path

RATIO_TARGET = 0.8
DEFAULT_MODEL = Path("results/models/mnist-proposal-seed0.onnx")


def main(argv: list[str] | None = None) -> int:
    """Time both, print the figures; 1 if the search is slower than ``RATIO_TARGET``."""
    from bgbench.harness import default_threads

    parser = argparse.ArgumentParser(prog="python -m bgbench.bench attack",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL,
                        help=f"an ONNX classifier (default {DEFAULT_MODEL}, in a clone)")
    parser.add_argument("--images", type=int, default=2000, help="test images (default 2000)")
    parser.add_argument("--budget", type=int, default=20, help="search budget (default 20)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of each (median kept)")
    parser.add_argument("--threads", type=int, default=default_threads())
    parser.add_argument("--data-root", default=None)
    args = parser.parse_args(argv)

    from bgbench.attack.search import search
    from bgbench.bench.harness import _test_images, _timed
    from bgbench.errors import BgbenchError
    from bgbench.harness import Evaluator, TestSuite, inspect_model, standard_test_sets
    from bgbench.harness.evaluate import score_all

    if not args.model.is_file():
        raise BgbenchError(f"{args.model} does not exist; pass --model MODEL.onnx (bgbench's "
                           "published models are in results/models/ of a clone)")
    info = inspect_model(args.model)
    images, labels, source = _test_images(info.dataset, args.images, args.data_root)
    suite = TestSuite(info.dataset, images, labels, threads=args.threads)
    sets = standard_test_sets()
    suite.build(sets, info.input_size)
    evaluator = Evaluator(info, ["CPUExecutionProvider"], args.threads)
    print(f"model {args.model}; data: {source}; {len(suite)} images; budget {args.budget}; "
          f"threads {args.threads}; load average {os.getloadavg()[0]:.1f} on "
          f"{os.cpu_count()} CPUs")

    found = {}

    def run_search() -> None:
        found["wc"] = search(evaluator, suite, args.budget)

    def run_eval() -> None:
        score_all(evaluator, suite, sets)

    run_eval()
    searches, evals = [], []
    for i in range(args.rounds):
        for fn, times in ((run_search, searches), (run_eval, evals))[::1 if i % 2 == 0 else -1]:
            times.append(_timed(fn))
    wc = found["wc"]
    queries = wc.queries["clean"] + wc.queries["pool"] + wc.queries["adaptive"]
    search_rate = queries / statistics.median(searches)
    eval_rate = len(suite) * len(sets) / statistics.median(evals)
    ratio = search_rate / eval_rate
    verdict = "meets" if ratio >= RATIO_TARGET else "MISSES"
    print(f"search: {queries} queries (clean, pool {wc.queries['pool']}, adaptive "
          f"{wc.queries['adaptive']}), median {statistics.median(searches):.2f} s of "
          f"{args.rounds}: {search_rate:9.0f} images x queries/s")
    print(f"eval:   {len(suite) * len(sets)} images ({len(sets)} test sets), median "
          f"{statistics.median(evals):.2f} s of {args.rounds}: {eval_rate:9.0f} images/s")
    print(f"ratio search / eval: {ratio:.2f} ({verdict} the {RATIO_TARGET} target)")
    return 0 if ratio >= RATIO_TARGET else 1
