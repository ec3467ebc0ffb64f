"""``bgbench train``: train one method on one dataset into a run directory.

torch is imported inside ``run`` only, so the CLI (and ``bgbench eval``) loads without it.
"""

from __future__ import annotations

import argparse

from bgbench.paths import add_data_root_argument


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``train`` subcommand."""
    from bgbench.train.config import DATASETS, METHODS, OPTIONS, PRESET_NAMES, PRESETS

    p = subparsers.add_parser(
        "train", help="train a classifier (the method, a baseline or an ablation)",
        description="Train one method on one dataset into RUN_DIR: config.json, metrics.jsonl, "
        "per-stage checkpoints, classifier.pt and done.json. Under torchrun, trains with "
        "DistributedDataParallel. Options left unset take the preset's value "
        "(shown as quick/paper/faithful).",
    )
    p.add_argument("--dataset", required=True, choices=DATASETS)
    p.add_argument("--method", required=True, choices=METHODS)
    p.add_argument("--out", required=True, metavar="RUN_DIR", help="run directory to create")
    p.add_argument("--preset", choices=PRESET_NAMES, default="paper",
                   help="defaults for every option below (default: paper)")
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
    for name, opt in OPTIONS.items():
        values = "/".join(str(PRESETS[preset][name]) for preset in PRESET_NAMES)
        kwargs = {"choices": opt.choices} if opt.choices else {}
        group.add_argument("--" + name.replace("_", "-"), dest=name, type=opt.type,
                           default=None, metavar=None if opt.choices else opt.type.__name__.upper(),
                           help=f"{opt.help} ({values})", **kwargs)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Resolve the configuration and train."""
    from bgbench.train import make_config, train
    from bgbench.train.config import OPTIONS

    overrides = {name: getattr(args, name) for name in OPTIONS}
    config = make_config(args.dataset, args.method, args.preset, args.seed, overrides)
    done = train(config, args.out, device=args.device, resume=args.resume, force=args.force,
                 quiet=args.quiet, data_root=args.data_root)
    if done is not None and not args.quiet:
        print(f"{args.out}: done, validation accuracy {done['val_accuracy']:.4f}")
    return 0
