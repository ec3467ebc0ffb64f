"""A small torch-side check of a trained classifier on the six test backgrounds.

For reporting during development only (the ONNX harness, ``bgbench eval``, is the
benchmark). By default it reads the test split, which training never uses for any choice; ``--on val``
uses the run's held-out validation images instead (the split to tune presets on).

    python -m bgbench.train.evaluate RUN_DIR [--on test|val] [--limit N]
"""

from __future__ import annotations

import argparse
import json
import sys

import numpy as np
import torch
from torch import nn

from bgbench.backgrounds import BACKGROUNDS, apply, background, pad, to_float


@torch.no_grad()
def _accuracy(model: nn.Module, x: np.ndarray, y: np.ndarray, batch: int = 1000) -> float:
    correct = 0
    for lo in range(0, len(x), batch):
        logits = model(torch.from_numpy(x[lo:lo + batch]))
        correct += int((logits.argmax(1).numpy() == y[lo:lo + batch]).sum())
    return correct / len(x)


def background_accuracy(model: nn.Module, images: np.ndarray, labels: np.ndarray
                        ) -> dict[str, float]:
    """Accuracy on clean ``uint8 [N, 28, 28]`` test images and with each of the six
    backgrounds, plus ``background_average`` over the six."""
    model.eval()
    padded = pad(images)
    result = {"clean": _accuracy(model, to_float(padded)[:, None], labels)}
    for name in BACKGROUNDS:
        result[name] = _accuracy(model, apply(padded, background(name)), labels)
    result["background_average"] = float(np.mean([result[n] for n in BACKGROUNDS]))
    return result


def main(argv: list[str] | None = None) -> int:
    """Print the six-background accuracies of a run's classifier as JSON."""
    from bgbench.data import load_numpy
    from bgbench.errors import BgbenchError
    from bgbench.train import load_classifier

    parser = argparse.ArgumentParser(prog="python -m bgbench.train.evaluate")
    parser.add_argument("run_dir")
    parser.add_argument("--on", choices=("test", "val"), default="test",
                        help="test images, or the run's validation images (default: test)")
    parser.add_argument("--limit", type=int, default=0, help="first N images (0: all)")
    parser.add_argument("--data-root", default=None)
    args = parser.parse_args(argv)
    try:
        model, config = load_classifier(args.run_dir)
        if args.on == "test":
            images, labels = load_numpy(config["dataset"], "test", args.data_root)
        else:
            from bgbench.train.data import split_indices

            images, labels = load_numpy(config["dataset"], "train", args.data_root)
            opts = config["options"]
            val, _ = split_indices(len(labels), opts["val_size"], opts["split_seed"])
            images, labels = images[val.numpy()], labels[val.numpy()]
    except BgbenchError as err:
        print(f"error: {err}", file=sys.stderr)
        return err.exit_code
    if args.limit:
        images, labels = images[:args.limit], labels[:args.limit]
    result = background_accuracy(model, images, labels)
    print(json.dumps({"run": args.run_dir, "on": args.on, "method": config["method"],
                      "dataset": config["dataset"], "n": len(labels),
                      **{k: round(v, 4) for k, v in result.items()}}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
