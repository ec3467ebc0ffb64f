"""``bgbench reproduce``: the paper's experiments end to end, resumable."""

from __future__ import annotations

import argparse

from bgbench.errors import ParameterError
from bgbench.locks import writes
from bgbench.paths import add_data_root_argument
from bgbench.train.config import PRECISIONS
from bgbench.vocab import DATASETS, DEFAULT_PRESET, MAIN_METHODS, METHODS, PRESETS, listed


def _budget(text: str) -> int:
    """``--attack-budget``: a non-negative integer."""
    try:
        budget = int(text)
    except ValueError:
        budget = -1
    if budget < 0:
        raise argparse.ArgumentTypeError(f"must be a non-negative integer (0: no worst-case "
                                         f"search), got {text!r}")
    return budget


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``reproduce`` subcommand."""
    from bgbench.attack.protocol import DEFAULT_BUDGET, REPRODUCE_BUDGETS

    quick_budget = REPRODUCE_BUDGETS["quick"]
    p = subparsers.add_parser(
        "reproduce", help="prepare data, train, export, evaluate and report every method",
        description="Prepare the data, train each (dataset, method, seed) into "
        "OUT/runs/<dataset>-<method>-seed<N>, export it to OUT/models/, evaluate all models "
        "(clean, six backgrounds, noise sweep, extended suite) into OUT/evals/, search each "
        "model's worst-case backgrounds (`bgbench attack`) into OUT/attacks/, merge both into "
        "OUT/results/ and write OUT/report.md. "
        "Re-running skips finished work and resumes unfinished training.")
    p.add_argument("--preset", default=DEFAULT_PRESET, metavar="{" + ",".join(PRESETS) + "}",
                   help=f"training preset (default {DEFAULT_PRESET}: a minute or two per method "
                   "and dataset on 2 CPU cores, training and evaluation); see `bgbench train "
                   "--help`")
    p.add_argument("--datasets", default="all", metavar="LIST",
                   help=f"comma-separated: {','.join(DATASETS)} (default all)")
    p.add_argument("--methods", default="all", metavar="LIST",
                   help=f"comma-separated: {','.join(METHODS)} (default all)")
    p.add_argument("--seeds", default="0", metavar="LIST",
                   help="comma-separated training seeds (default 0); robustness varies a lot "
                   "between seeds, so compare methods over several")
    p.add_argument("--ablation-seeds", default=None, metavar="LIST",
                   help=f"seeds for {listed([m for m in METHODS if m not in MAIN_METHODS])} "
                   "(default: --seeds), e.g. fewer than for the "
                   f"{listed(MAIN_METHODS)} runs the comparison rests on")
    p.add_argument("--out", default="bgbench-reproduce", metavar="DIR",
                   help="where everything goes (default ./bgbench-reproduce)")
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu", help="training device")
    p.add_argument("--providers", default="cpu", metavar="LIST",
                   help="onnxruntime execution providers for evaluation (default cpu)")
    p.add_argument("--threads", type=int, default=None, metavar="N",
                   help="evaluation threads (default: the cores available)")
    p.add_argument("--limit", type=int, default=None, metavar="N",
                   help="evaluate on the first N test images only (smoke tests)")
    p.add_argument("--attack-budget", type=_budget, default=None, metavar="B",
                   help="background queries per image of each model's worst-case search "
                   f"(default {DEFAULT_BUDGET}; {quick_budget} for the quick preset, a smoke "
                   "check; 0: no search)")
    p.add_argument("--precision", choices=PRECISIONS, default="fp32",
                   help="training precision of every run, as `bgbench train --precision` "
                   "(default fp32)")
    p.add_argument("--train-args", default="", metavar="'ARGS'",
                   help="extra `bgbench train` options for every run, quoted, e.g. "
                   "'--batch-size 64'")
    add_data_root_argument(p)
    p.set_defaults(func=run)


@writes("reproduce", lambda args: args.out)
def run(args: argparse.Namespace) -> int:
    """Run what is not done yet and say where the report is."""
    from bgbench.reproduce import plan_from_args, reproduce

    try:
        plan = plan_from_args(args)
    except ParameterError as err:
        raise err.for_command_line() from None
    plan.train_args = ["--precision", args.precision, *plan.train_args]
    report = reproduce(plan)
    print(f"\nreport: {report}")
    return 0
