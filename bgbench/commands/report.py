"""``bgbench report``: Markdown tables beside the paper's numbers, and PNG figures."""

from __future__ import annotations

import argparse
from pathlib import Path

from bgbench.locks import writes
from bgbench.paths import add_data_root_argument


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``report`` subcommand."""
    p = subparsers.add_parser(
        "report", help="write report.md: tables like the paper's, beside its numbers, and figures",
        description="Write a Markdown report from `bgbench eval` results: Tables 1-3 laid out "
        "like the paper's with its numbers beside ours, every model, and PNG figures (the "
        "background gallery, noise-sweep curves, learned masks and generated backgrounds). "
        "The report's text depends on the results alone; --readme renders the README's results "
        "table from the same results.")
    p.add_argument("results", nargs="+", metavar="RESULTS_DIR",
                   help="folders holding results.json (from `bgbench eval --out`)")
    p.add_argument("--out", default=None, metavar="FILE.md",
                   help="report path (default: report.md in the first RESULTS_DIR); figures go "
                   "in figures/ beside it")
    p.add_argument("--runs", nargs="*", default=[], metavar="DIR",
                   help="training run directories (or folders of them) for the generator figures")
    p.add_argument("--ladder", nargs="*", default=[], metavar="DIR",
                   help="results folders of the ablation ladder's intermediate models "
                   "(bgbench/ladder.py), shown in their own table and kept out of the others")
    p.add_argument("--worst-case", nargs="*", default=[], metavar="DIR", dest="worst_case",
                   help="results folders whose models have a worst-case search (`bgbench "
                   "attack` merged with `bgbench eval`), shown in the worst-case section and "
                   "the README's worst-case column")
    p.add_argument("--force", action="store_true", help="replace an existing report")
    p.add_argument("--readme", default=None, metavar="README.md",
                   help="also put the README's results table and training wall times between "
                   "its results-table markers (the rest of the file is left as it is)")
    add_data_root_argument(p)
    p.set_defaults(func=run)


@writes("report", lambda args: Path(args.out).parent if args.out else args.results[0],
        lambda args: Path(args.readme).parent if args.readme else None)
def run(args: argparse.Namespace) -> int:
    """Write the report and say where it is."""
    from bgbench.errors import ParameterError
    from bgbench.report import update_readme, write_report

    out = Path(args.out) if args.out else Path(args.results[0]) / "report.md"
    # The README first: its markers are the likelier mistake, and a fixed rerun then also
    # rewrites the report, where the other order would need --force for it.
    if args.readme:
        path = update_readme(args.readme, args.results, args.worst_case)
        print(f"updated the results table in {path}")
    try:
        path = write_report(args.results, out, runs=args.runs, force=args.force,
                            data_root=args.data_root, ladder=args.ladder,
                            worst_case=args.worst_case)
    except ParameterError as err:
        raise err.for_command_line() from None
    print(f"wrote {path} (figures in {path.parent / 'figures'})")
    return 0
