"""``bgbench backgrounds``: list and draw the paper's six test backgrounds."""

from __future__ import annotations

import argparse
from pathlib import Path

from bgbench.errors import ParameterError, UsageError
from bgbench.fileio import refuse_overwrite
from bgbench.paths import add_data_root_argument
from bgbench.vocab import DEFAULT_SUITE, EXTENDED_SUITE, SUITES


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``backgrounds`` subcommand and its ``list`` and ``show`` actions."""
    parser = sub.add_parser("backgrounds", help="list or draw the six test backgrounds",
                            description="The paper's six synthetic test backgrounds, or with --suite "
                                        "extended bgbench's extended suite.")
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    lst = actions.add_parser("list", help="name, pixels set and checksum of each background "
                                         "(extended suite: name, kind and definition)")
    _add_suite_argument(lst)
    lst.set_defaults(func=run_list)
    show = actions.add_parser(
        "show", help="draw the gallery PNG",
        description="Draw each background alone and applied to test images of each dataset.")
    show.add_argument("--out", required=True, metavar="FILE.png")
    show.add_argument("--datasets", default="mnist,fashion-mnist",
                      help="comma-separated datasets to draw samples from (default: both)")
    show.add_argument("--samples", type=int, default=3, help="test images per dataset")
    show.add_argument("--force", action="store_true", help="overwrite an existing FILE.png")
    _add_suite_argument(show)
    add_data_root_argument(show)
    show.set_defaults(func=run_show)


def _add_suite_argument(parser: argparse.ArgumentParser) -> None:
    """``--suite``: the paper's six backgrounds, or bgbench's extended suite."""
    parser.add_argument("--suite", choices=SUITES, default=DEFAULT_SUITE,
                        help="the paper's six backgrounds (default) or the extended suite of "
                             "grey, smooth and photometric test sets (docs/extended-suite.md)")


def run_list(args: argparse.Namespace) -> int:
    """Print each background's name, pixels set and checksum prefix."""
    import hashlib

    from bgbench.backgrounds import BACKGROUNDS, background

    if args.suite == EXTENDED_SUITE:
        return _list_extended()
    print(f"{'name':<8} {'pixels':>6}  sha256[:16]")
    for name in BACKGROUNDS:
        bg = background(name)
        print(f"{name:<8} {int(bg.sum()):>6}  {hashlib.sha256(bg.tobytes()).hexdigest()[:16]}")
    return 0


def _list_extended() -> int:
    from bgbench import extended

    print(f"{'name':<11} {'kind':<11}  definition")
    for name in extended.NAMES:
        print(f"{name:<11} {extended.kind(name):<11}  {extended.definition(name)}")
    return 0


def run_show(args: argparse.Namespace) -> int:
    """Draw the gallery PNG of the backgrounds alone and applied to test images."""
    from bgbench.data import dataset_spec, load_numpy
    from bgbench.gallery import draw_gallery

    out = Path(args.out)
    if out.suffix.lower() != ".png":
        raise UsageError(f"--out must name a .png file, got {out}")
    try:
        refuse_overwrite(out, args.force)
    except ParameterError as err:
        raise err.for_command_line() from None
    if args.samples < 1:
        raise UsageError("--samples must be at least 1")
    names = [d.strip() for d in args.datasets.split(",") if d.strip()]
    for name in names:
        dataset_spec(name)
    samples = {name: load_numpy(name, "test", args.data_root)[0][:args.samples]
               for name in names}
    print(f"wrote {draw_gallery(out, samples, suite=args.suite)}")
    return 0
