"""A stage-3 training option: backgrounds that span binary patterns and grey levels, and the
validation check its choices are made with.

``mix_backgrounds`` replaces each sample of f_b's binary backgrounds, independently, by f_b's
soft output (with probability ``soft_share``), by a random smooth grey field (``grey_share``),
or keeps it (the rest). A grey field is a ``g x g`` grid of uniform levels in [0, 1] upsampled
bilinearly to the image size, with ``g`` drawn from ``grids`` per sample (``g = 1`` is a
constant level). With both shares 0, the default, it returns the binary backgrounds themselves
and draws nothing from the generator, so training stays bit-identical.

``extended_accuracy`` and ``python -m bgbench.train.bg_mix RUN_DIR`` measure a trained
classifier on the run's held-out **validation** images under the extended suite's generators
(and the paper's six backgrounds), never on a test set: the split to choose the shares on.
The grey fields overlap the extended suite's grey, ramp-like and smooth backgrounds by design,
so that suite measures coverage of the family trained on, not generalisation beyond it.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from bgbench import extended
from bgbench.backgrounds import foreground, pad

BINARY, SOFT, GREY = 0, 1, 2
GREY_GRIDS: tuple[int, ...] = (1, 2, 4, 8)


@dataclass(frozen=True)
class BackgroundMix:
    """One draw of the mix for ``n`` samples: ``kind [n]`` (``BINARY``, ``SOFT`` or ``GREY``)
    and the grey fields ``[n, 1, S, S]`` (used where ``kind`` is ``GREY``)."""

    kind: Tensor
    grey: Tensor

    def rows(self, index: Tensor | slice) -> BackgroundMix:
        """The draw of the selected samples (e.g. one process's shard of a global batch)."""
        return BackgroundMix(self.kind[index], self.grey[index])


def draw_mix(n: int, size: int, generator: torch.Generator, soft_share: float = 0.0,
             grey_share: float = 0.0, grids: tuple[int, ...] = GREY_GRIDS) -> BackgroundMix | None:
    """Draw the mix for ``n`` backgrounds of ``size x size`` on the CPU; None when both shares
    are 0 (nothing is drawn).

    The same amount of randomness is drawn whatever the shares, so one seed gives the same
    grey fields for every share.
    """
    _check_shares(soft_share, grey_share)
    if not grids or any(int(g) != g or not 1 <= g <= size for g in grids):
        raise ValueError(f"grey grid sizes must be integers in [1, {size}], got {grids}")
    if soft_share == 0 and grey_share == 0:
        return None
    u = torch.rand(n, generator=generator)
    kind = torch.full((n,), BINARY, dtype=torch.int64)
    kind[u >= 1 - soft_share - grey_share] = SOFT
    kind[u >= 1 - grey_share] = GREY
    choice = torch.randint(0, len(grids), (n,), generator=generator)
    grey = torch.empty(n, 1, size, size)
    for i, g in enumerate(grids):
        levels = torch.rand(n, 1, g, g, generator=generator)
        field = F.interpolate(levels, size=(size, size), mode="bilinear", align_corners=False)
        grey[choice == i] = field[choice == i]
    return BackgroundMix(kind, grey)


def apply_mix(b_binary: Tensor, b_soft: Tensor, mix: BackgroundMix | None) -> Tensor:
    """``[n, 1, S, S]`` backgrounds: per sample ``b_binary``, ``b_soft`` or the grey field, as
    ``mix`` says (``b_binary`` itself when ``mix`` is None). Gradients reach ``b_binary`` and
    ``b_soft`` through the samples that use them."""
    if mix is None:
        return b_binary
    if b_binary.shape != b_soft.shape or b_binary.shape != mix.grey.shape:
        raise ValueError(f"binary {list(b_binary.shape)}, soft {list(b_soft.shape)} and mix "
                         f"{list(mix.grey.shape)} backgrounds must have one shape")
    kind = mix.kind.to(b_binary.device)[:, None, None, None]
    grey = mix.grey.to(device=b_binary.device, dtype=b_binary.dtype)
    return torch.where(kind == BINARY, b_binary, torch.where(kind == SOFT, b_soft, grey))


def mix_backgrounds(b_binary: Tensor, b_soft: Tensor, generator: torch.Generator,
                    soft_share: float = 0.0, grey_share: float = 0.0,
                    grids: tuple[int, ...] = GREY_GRIDS) -> Tensor:
    """``apply_mix`` of a fresh ``draw_mix`` for one process's batch ``[n, 1, S, S]``."""
    mix = draw_mix(b_binary.shape[0], b_binary.shape[-1], generator, soft_share, grey_share,
                   grids)
    return apply_mix(b_binary, b_soft, mix)


def _check_shares(soft_share: float, grey_share: float) -> None:
    for name, share in (("soft_share", soft_share), ("grey_share", grey_share)):
        if not 0.0 <= share <= 1.0:
            raise ValueError(f"{name} must be in [0, 1], got {share}")
    if soft_share + grey_share > 1.0:
        raise ValueError(f"soft_share + grey_share must be at most 1 (the rest stays binary), "
                         f"got {soft_share} + {grey_share}")


@torch.no_grad()
def _accuracy(model: nn.Module, images_u8: np.ndarray, labels: np.ndarray, batch: int) -> float:
    correct = 0
    for lo in range(0, len(labels), batch):
        x = torch.from_numpy(images_u8[lo:lo + batch, None].astype(np.float32) / np.float32(255))
        correct += int((model(x).argmax(1).numpy() == labels[lo:lo + batch]).sum())
    return correct / len(labels)


def extended_accuracy(model: nn.Module, images: np.ndarray, labels: np.ndarray,
                      batch: int = 1000) -> dict[str, float]:
    """Accuracy of a 32x32 classifier on ``uint8 [N, 28, 28]`` images under every extended set,
    plus ``extended_background_average`` and ``extended_photometric_average``."""
    if images.dtype != np.uint8 or images.ndim != 3 or images.shape[1:] != (28, 28):
        raise ValueError(f"images must be uint8 [N, 28, 28], got {images.dtype} {list(images.shape)}")
    model.eval()
    padded = np.ascontiguousarray(pad(images))
    mask = foreground(padded)
    result = {name: _accuracy(model, extended.extended_test_set(name, padded, mask), labels, batch)
              for name in extended.NAMES}
    result["extended_background_average"] = float(
        np.mean([result[n] for n in extended.BACKGROUND_SETS]))
    result["extended_photometric_average"] = float(
        np.mean([result[n] for n in extended.PHOTOMETRIC_SETS]))
    return result


def main(argv: list[str] | None = None) -> int:
    """Print a run's validation accuracy (clean, six backgrounds, extended suite) as JSON."""
    from bgbench.data import load_numpy
    from bgbench.errors import BgbenchError
    from bgbench.train import load_classifier
    from bgbench.train.data import split_indices
    from bgbench.train.evaluate import background_accuracy

    parser = argparse.ArgumentParser(
        prog="python -m bgbench.train.bg_mix",
        description="A run's classifier on its validation images: clean, the paper's six "
                    "backgrounds and the extended suite.")
    parser.add_argument("run_dir")
    parser.add_argument("--limit", type=int, default=0, help="first N validation images (0: all)")
    parser.add_argument("--data-root", default=None)
    args = parser.parse_args(argv)
    if args.limit < 0:
        parser.error(f"--limit must be >= 0, got {args.limit}")
    try:
        model, config = load_classifier(args.run_dir)
        images, labels = load_numpy(config["dataset"], "train", args.data_root)
        opts = config["options"]
        val, _ = split_indices(len(labels), opts["val_size"], opts["split_seed"])
        images, labels = images[val.numpy()], labels[val.numpy()]
    except BgbenchError as err:
        print(f"error: {err}", file=sys.stderr)
        return err.exit_code
    if args.limit:
        images, labels = images[:args.limit], labels[:args.limit]
    result = {**background_accuracy(model, images, labels),
              **extended_accuracy(model, images, labels)}
    print(json.dumps({"run": args.run_dir, "on": "val", "method": config["method"],
                      "dataset": config["dataset"], "n": len(labels),
                      **{k: round(v, 4) for k, v in result.items()}}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
