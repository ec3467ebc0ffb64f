"""``bgbench score``: a trained run's classifier on clean images and the six backgrounds."""

from __future__ import annotations

import argparse
import json

from bgbench.errors import ParameterError
from bgbench.paths import add_data_root_argument
from bgbench.vocab import DEFAULT_SUITE, SUITES, suite_choices_help


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``score`` subcommand."""
    p = subparsers.add_parser(
        "score", help="a trained run's accuracy on its validation split or the test set",
        description="Print, as one JSON line, the accuracy of RUN_DIR's torch classifier on "
        "clean images and on each of the six backgrounds. --on val uses the validation "
        "images the run held out of training (the split to choose options on); the "
        "benchmark is `bgbench eval` on the exported ONNX model.")
    p.add_argument("run_dir", metavar="RUN_DIR", help="a finished `bgbench train` run directory")
    p.add_argument("--on", choices=("val", "test"), default="val",
                   help="the run's validation images or the test images (default: val)")
    p.add_argument("--limit", type=int, default=0, metavar="N",
                   help="the first N images only (default 0: all)")
    p.add_argument("--suite", choices=SUITES, default=DEFAULT_SUITE,
                   help=suite_choices_help())
    p.add_argument("--attack-budget", type=int, default=0, metavar="B",
                   help="also run the worst-case background search (as `bgbench attack`) "
                        "at budget B on the same images (default 0: none)")
    add_data_root_argument(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Score the run and print the result."""
    from bgbench.train.evaluate import score_run

    try:
        result = score_run(args.run_dir, args.on, args.limit, args.data_root, args.suite,
                           args.attack_budget)
    except ParameterError as err:
        raise err.for_command_line() from None
    print(json.dumps({k: round(v, 4) if isinstance(v, float) else v
                      for k, v in result.items()}))
    return 0
