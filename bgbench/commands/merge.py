"""``bgbench merge``: several ``bgbench eval`` results directories as one."""

from __future__ import annotations

import argparse

from bgbench.errors import ParameterError
from bgbench.locks import writes


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``merge`` subcommand."""
    p = subparsers.add_parser(
        "merge", help="merge results directories of separate evaluations into one",
        description="Write one results.json and results.csv from several `bgbench eval` "
        "results directories (for example one evaluation per model, run in parallel). They "
        "must come from one bgbench version and set of package versions, and name no model "
        "twice; results of several commits merge where every test set they share was "
        "defined alike (their correct.npz says so), each model keeping its commit. Models "
        "keep the order the directories are given in.")
    p.add_argument("sources", nargs="+", metavar="RESULTS_DIR",
                   help="directories holding results.json and results.csv")
    p.add_argument("--out", required=True, metavar="DIR",
                   help="where the merged results.json and results.csv go")
    p.add_argument("--force", action="store_true", help="overwrite existing results in DIR")
    p.add_argument("--relative-to", default=None, metavar="BASE",
                   help="name each model by its path relative to the directory BASE, e.g. "
                   "models/x.onnx for WORK/models/x.onnx with --relative-to WORK (default: "
                   "the path each evaluation was given)")
    p.set_defaults(func=run)


@writes("merge", lambda args: args.out)
def run(args: argparse.Namespace) -> int:
    """Merge and say where the result went."""
    from bgbench.harness.results import merge_results

    try:
        paths = merge_results(args.sources, args.out, args.force, relative_to=args.relative_to)
    except ParameterError as err:
        raise err.for_command_line({"out_dir": "--out", "sources": "RESULTS_DIR"}) from None
    print(f"merged {len(args.sources)} results into {paths[0]} and {paths[1]}")
    return 0
