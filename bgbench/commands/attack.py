"""``bgbench attack``: the worst-case background search of ONNX classifiers (torch-free).

The threat model and the search are in docs/threat-model.md; the results' ``worst_case``
object in docs/results-schema.md.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from bgbench.commands.eval import FLAGS, add_model_arguments, model_options, recorded_limit
from bgbench.locks import writes

DEFAULT_OUT = "bgbench-attack"


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``attack`` subcommand."""
    from bgbench.attack.protocol import DEFAULT_BUDGET, DEFAULT_SEED, EXPLORE_SHARE, PROTOCOL

    p = subparsers.add_parser(
        "attack", help="search each model's worst backgrounds (universal, worst-of-k, adaptive)",
        description="Search for the backgrounds that fool ONNX classifiers, within bgbench's "
        "threat model (the object is never touched; every background is a member of a "
        "registered family with mean at most 0.5; docs/threat-model.md), with a budget of "
        "background queries per image: the universal worst background of a seeded pool (the "
        "same pool for every model), worst-of-k over the pool's first k members, and an "
        f"adaptive per-image search ({PROTOCOL}) that spends its first {EXPLORE_SHARE:.0%} on "
        "the backgrounds that fooled earlier images and the pool's first members, then "
        "alternates the pool members that fooled the most earlier images of the image's class "
        "with local moves within each family. Writes results.json "
        "(a worst_case object per model) and results.csv; `bgbench merge` joins them with "
        "a `bgbench eval` of the same models. Takes every model and input convention that "
        "`bgbench eval` takes.")
    add_model_arguments(p)
    p.add_argument("--budget", type=int, default=DEFAULT_BUDGET, metavar="B",
                   help=f"background queries per image (default {DEFAULT_BUDGET})")
    p.add_argument("--seed", type=int, default=DEFAULT_SEED, metavar="S",
                   help=f"seed of the pool and of the adaptive moves (default {DEFAULT_SEED})")
    p.add_argument("--out", default=DEFAULT_OUT, metavar="DIR",
                   help=f"where results.json and results.csv go (default ./{DEFAULT_OUT})")
    p.add_argument("--force", action="store_true", help="replace existing results in --out")
    p.set_defaults(func=run)


@writes("attack", lambda args: args.out)
def run(args: argparse.Namespace) -> int:
    """Search, write the results files, print the worst-case table."""
    from bgbench.attack import attack
    from bgbench.attack.table import format_worst_case
    from bgbench.errors import ParameterError
    from bgbench.fileio import refuse_overwrite
    from bgbench.harness import write_results
    from bgbench.harness.results import RESULTS_CSV, RESULTS_JSON, results_document

    out = Path(args.out)
    flags = {**FLAGS, "budget": "--budget", "seed": "--seed"}
    try:
        refuse_overwrite([out / RESULTS_JSON, out / RESULTS_CSV], args.force, parameter="out_dir")
        results = attack(args.models, budget=args.budget, seed=args.seed, **model_options(args))
        limit = recorded_limit(args.limit, results, args.data_root)
        extra = {"limit": limit} if limit else None
        json_path, csv_path = write_results(out, results, force=args.force, extra=extra)
    except ParameterError as err:
        raise err.for_command_line(flags) from None
    print(format_worst_case(results_document(results)["models"]))
    print(f"\nwrote {json_path} and {csv_path}")
    return 0
