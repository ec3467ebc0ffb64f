"""``bgbench train``: train one method on one dataset into a run directory.

torch is imported inside ``run`` only, so the CLI (and ``bgbench eval``) loads without it.
Library errors name parameters; ``run`` rewords them in this command's flags.
"""

from __future__ import annotations

import argparse

from bgbench.errors import ParameterError
from bgbench.locks import writes
from bgbench.paths import add_data_root_argument
from bgbench.train.config import option_help
from bgbench.vocab import DATASETS, DEFAULT_PRESET, METHODS, PRESETS, preset_choices_help


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``train`` subcommand."""
    p = subparsers.add_parser(
        "train", help="train a classifier (the method, a baseline or an ablation)",
        description="Train one method on one dataset into RUN_DIR: config.json, metrics.jsonl, "
        "per-stage checkpoints, classifier.pt and done.json. Under torchrun, trains with "
        "DistributedDataParallel. Options left unset take the preset's value "
        f"(shown as {'/'.join(PRESETS)}).",
    )
    p.add_argument("--dataset", required=True, choices=DATASETS)
    p.add_argument("--method", required=True, choices=METHODS)
    p.add_argument("--out", required=True, metavar="RUN_DIR", help="run directory to create")
    p.add_argument("--preset", default=DEFAULT_PRESET, metavar="{" + ",".join(PRESETS) + "}",
                   help=f"defaults for every option below: {preset_choices_help()} "
                   f"(default: {DEFAULT_PRESET})")
    p.add_argument("--seed", type=int, default=0, help="training seed (default: 0)")
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu",
                   help="where to train; cuda without a GPU is an error (default: cpu)")
    p.add_argument("--resume", action="store_true",
                   help="continue RUN_DIR from its last completed epoch")
    p.add_argument("--force", action="store_true", help="delete RUN_DIR and start over")
    p.add_argument("--quiet", action="store_true",
                   help="no progress bar: one log line per epoch")
    add_data_root_argument(p)
    group = p.add_argument_group("training options")
    for name, (kind, meta, defaults) in option_help().items():
        choices = {"choices": meta["choices"]} if meta["choices"] else {}
        group.add_argument("--" + name.replace("_", "-"), dest=name, type=kind, default=None,
                           metavar=None if choices else kind.__name__.upper(),
                           help=f"{meta['help']} ({defaults})", **choices)
    p.set_defaults(func=run)


# Locked here too, before torch loads, so a second writer is refused at once.
@writes("train", lambda args: args.out)
def run(args: argparse.Namespace) -> int:
    """Resolve the configuration and train."""
    from bgbench.train import make_config, train

    overrides = {name: getattr(args, name) for name in option_help()}
    try:
        config = make_config(args.dataset, args.method, args.preset, args.seed, overrides)
        done = train(config, args.out, device=args.device, resume=args.resume,
                     force=args.force, quiet=args.quiet, data_root=args.data_root)
    except ParameterError as err:
        raise err.for_command_line() from None
    if done is not None and not args.quiet:
        print(f"{args.out}: done, validation accuracy {done['val_accuracy']:.4f}")
    return 0
