"""``bgbench export``: a training run's classifier to one checked, self-contained ONNX file."""

from __future__ import annotations

import argparse
from pathlib import Path

from bgbench.locks import writes
from bgbench.paths import add_data_root_argument


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``export`` subcommand."""
    p = subparsers.add_parser(
        "export", help="export a run's classifier to ONNX (checked against PyTorch)",
        description="Export the classifier of a finished training run with the dynamo exporter "
        "(opset 18, dynamic batch, input 'images', output 'logits', bgbench metadata) and write "
        "it only if onnxruntime matches PyTorch on real test images.")
    p.add_argument("run_dir", metavar="RUN_DIR", help="a finished `bgbench train` run directory")
    p.add_argument("--out", default=None, metavar="FILE.onnx",
                   help="where to write the model (default RUN_DIR/model.onnx)")
    p.add_argument("--parity-images", type=int, default=500, metavar="N",
                   help="test images for the onnxruntime-vs-PyTorch check (default 500)")
    p.add_argument("--force", action="store_true", help="replace an existing file")
    add_data_root_argument(p)
    p.set_defaults(func=run)


@writes("export", lambda args: Path(args.out).parent if args.out else args.run_dir)
def run(args: argparse.Namespace) -> int:
    """Export and report the parity check."""
    from bgbench.errors import ParameterError
    from bgbench.export import PARITY_ATOL, export_run

    try:
        report = export_run(args.run_dir, args.out, force=args.force,
                            n_images=args.parity_images, data_root=args.data_root)
    except ParameterError as err:
        raise err.for_command_line({"n_images": "--parity-images"}) from None
    print(f"wrote {report.path} (onnxruntime vs PyTorch on {report.n_images} test images: "
          f"max abs logit difference {report.max_abs_diff:.1e} <= {PARITY_ATOL:.0e}, "
          "same predictions)")
    return 0
