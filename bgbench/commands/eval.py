"""``bgbench eval``: onnxruntime accuracy of ONNX classifiers on clean and background test sets
(the paper's, and with ``--suite extended`` bgbench's extended suite as well).

Never imports torch: the harness runs on inference boxes that have none.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bgbench.backgrounds import BACKGROUNDS
from bgbench.locks import writes
from bgbench.paths import add_data_root_argument
from bgbench.vocab import DATASETS, DEFAULT_SUITE, EXTENDED_SUITE, LAYOUTS, SUITES, suite_choices_help

if TYPE_CHECKING:
    from bgbench.harness import ModelResult

DEFAULT_OUT = "bgbench-results"

# Library parameter names as this command spells them, for errors about their values.
# Parameters whose flag is not simply ``--name`` (underscores as dashes).
FLAGS = {"out_dir": "--out"}


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``eval`` subcommand."""
    p = subparsers.add_parser(
        "eval", help="evaluate ONNX classifiers on clean, the six backgrounds and the noise sweep",
        description="Evaluate ONNX classifiers with onnxruntime on the clean test set, the six "
        "backgrounds of the paper, (with --noise-sweep) the 20 noise rates and (with --suite "
        "extended) bgbench's extended suite; write results.json and results.csv and print a "
        "table like the paper's Table 1 (the noise sweep and the extended suite get tables of "
        "their own). Models may "
        "take 32x32 or 28x28 images as [N,1,S,S], [N,S,S,1], [N,S,S] or [N,S*S], float or "
        "uint8 (docs/onnx-contract.md).")
    add_model_arguments(p)
    p.add_argument("--backgrounds", default="all", metavar="all|LIST",
                   help=f"comma-separated backgrounds ({','.join(BACKGROUNDS)}) or all "
                   f"(default); --suite {EXTENDED_SUITE} runs whole")
    p.add_argument("--suite", choices=SUITES, default=DEFAULT_SUITE,
                   help=f"{suite_choices_help()}; the extended suite's sets are reported in "
                   "their own fields and table")
    p.add_argument("--noise-sweep", action="store_true",
                   help="also evaluate the random background at the 20 noise rates (Table 2)")
    p.add_argument("--out", default=DEFAULT_OUT, metavar="DIR",
                   help=f"where results.json and results.csv go (default ./{DEFAULT_OUT})")
    p.add_argument("--force", action="store_true", help="replace existing results in --out")
    p.set_defaults(func=run)


def add_model_arguments(p: argparse.ArgumentParser) -> None:
    """The models and how to feed them: the arguments ``eval`` and ``attack`` share."""
    p.add_argument("models", nargs="+", metavar="MODEL.onnx", help="ONNX classifiers")
    p.add_argument("--dataset", choices=DATASETS, default=None,
                   help="test set for models without bgbench.dataset metadata")
    p.add_argument("--providers", default="cpu", metavar="LIST",
                   help="comma-separated execution providers, e.g. cpu or cuda "
                   "(cuda needs onnxruntime-gpu: pip install 'bgbench[gpu]'); default cpu")
    p.add_argument("--provider-option", action="append", default=[],
                   metavar="[PROVIDER:]KEY=VALUE", dest="provider_options",
                   help="an execution provider option, e.g. device_id=0 or "
                   "cuda:cudnn_conv_algo_search=HEURISTIC (repeatable; without PROVIDER: for "
                   "the first provider); recorded with the results")
    p.add_argument("--threads", type=int, default=None, metavar="N",
                   help="onnxruntime intra-op threads and test-set building threads "
                   "(default: the cores available)")
    p.add_argument("--batch-size", type=int, default=None, metavar="N",
                   help="images per onnxruntime call (default 500, or the batch size the "
                   "model's graph fixes)")
    p.add_argument("--limit", type=int, default=None, metavar="N",
                   help="use only the first N test images (quick checks; results say so; "
                   "an N of at least the test set's size uses it all, a full evaluation)")
    p.add_argument("--layout", default="auto", choices=("auto", *LAYOUTS),
                   help="input layout: [N,1,S,S], [N,S,S,1], [N,S,S] or [N,S*S] "
                   "(default: detected from the input shape)")
    p.add_argument("--input-scale", type=float, default=None, metavar="S",
                   help="a float input gets (pixel/255*S - mean)/std: S is 1 (default) for "
                   "pixels in [0, 1], 255 for raw pixel values")
    p.add_argument("--mean", type=float, default=None, metavar="M",
                   help="subtracted after scaling (default 0), e.g. 0.1307 for MNIST")
    p.add_argument("--std", type=float, default=None, metavar="S",
                   help="divides after the mean (default 1), e.g. 0.3081 for MNIST")
    p.add_argument("--output", default=None, metavar="NAME",
                   help="the output holding logits or probabilities [N, classes] (default: the "
                   "only float output of that shape)")
    p.add_argument("--quiet", action="store_true",
                   help="no progress (default: a bar per model on a terminal, else a line)")
    add_data_root_argument(p)


def model_options(args: argparse.Namespace) -> dict[str, Any]:
    """The keyword arguments of ``evaluate`` (and ``attack``) from ``add_model_arguments``."""
    from bgbench.harness import Progress

    return dict(dataset=args.dataset,
                providers=[p.strip() for p in args.providers.split(",") if p.strip()],
                provider_options=args.provider_options, threads=args.threads,
                batch_size=args.batch_size, data_root=args.data_root, limit=args.limit,
                layout=args.layout, output=args.output, input_scale=args.input_scale,
                mean=args.mean, std=args.std, progress=Progress(quiet=args.quiet))


def parse_backgrounds(text: str) -> list[str] | None:
    """``all`` -> None (every background); else the comma-separated names (at least one)."""
    from bgbench.errors import UsageError

    if text.strip() == "all":
        return None
    names = [name.strip() for name in text.split(",") if name.strip()]
    if not names:
        raise UsageError(f"--backgrounds names no background, got {text!r}; give all or a "
                         "comma-separated list such as border,clock")
    return names


def recorded_limit(limit: int | None, results: list[ModelResult], data_root: str | None
                   ) -> int | None:
    """The ``limit`` results.json records: ``limit`` where it left test images out, None where
    every model saw its whole test set, so that the results are a full evaluation's (and
    merge with one). Notes on stderr a limit that left nothing out."""
    import sys

    from bgbench.data import load_numpy

    if limit is None:
        return None
    sizes = {r.dataset: len(load_numpy(r.dataset, "test", data_root=data_root)[1])
             for r in results}
    if any(limit < size for size in sizes.values()):
        return limit
    print(f"bgbench: --limit {limit} is not below the test set's "
          f"{max(sizes.values())} images: all of them were used, recorded as a full evaluation",
          file=sys.stderr)
    return None


@writes("eval", lambda args: args.out)
def run(args: argparse.Namespace) -> int:
    """Evaluate, write the results files, print the table."""
    from bgbench.errors import ParameterError
    from bgbench.fileio import refuse_overwrite
    from bgbench.harness import evaluate, format_table, write_results
    from bgbench.harness.results import RESULTS_CSV, RESULTS_JSON, results_document

    out = Path(args.out)
    try:
        # Checked before the evaluation so a long run is not wasted.
        refuse_overwrite([out / RESULTS_JSON, out / RESULTS_CSV], args.force, parameter="out_dir")
    except ParameterError as err:
        raise err.for_command_line(FLAGS) from None
    try:
        results = evaluate(args.models, backgrounds=parse_backgrounds(args.backgrounds),
                           noise_sweep=args.noise_sweep, suite=args.suite, **model_options(args))
        limit = recorded_limit(args.limit, results, args.data_root)
        extra = {"limit": limit} if limit else None
        json_path, csv_path = write_results(out, results, force=args.force, extra=extra)
    except ParameterError as err:
        raise err.for_command_line(FLAGS) from None
    print(format_table(results_document(results)["models"]))
    print(f"\nwrote {json_path} and {csv_path}")
    return 0
