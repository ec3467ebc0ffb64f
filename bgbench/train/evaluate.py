"""A trained run's torch classifier on clean images and the six test backgrounds (and the
extended suite, on request), on the run's validation split or the test set (``bgbench
score``).

For choosing options on the validation split, which training holds out of every run;
``bgbench eval`` on the exported ONNX model is the benchmark.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from bgbench import extended
from bgbench.backgrounds import BACKGROUNDS, SIZE
from bgbench.errors import ParameterError
from bgbench.harness.testsets import CLEAN, Composites, TestSet, to_model_input
from bgbench.train.accuracy import count_correct
from bgbench.vocab import DEFAULT_SUITE, EXTENDED_SUITE, SUITES

SPLITS = ("val", "test")


def _set_accuracy(model: nn.Module, composites: Composites, labels: np.ndarray,
                  names: list[str] | tuple[str, ...]) -> dict[str, float]:
    """Accuracy of ``model`` on each named test set of ``composites`` (built by the harness
    at 32x32, the size of bgbench's classifiers), with ``labels`` ``[N]``."""
    y = torch.from_numpy(np.asarray(labels)).long()
    result = {}
    for name in names:
        x = to_model_input(composites.composite(TestSet(name), SIZE), SIZE)
        result[name] = count_correct(model, torch.from_numpy(x), y) / len(y)
    return result


def background_accuracy(model: nn.Module, images: np.ndarray, labels: np.ndarray
                        ) -> dict[str, float]:
    """Accuracy on clean ``uint8 [N, 28, 28]`` images and with each of the six backgrounds,
    plus ``background_average`` over the six."""
    result = _set_accuracy(model, Composites(images), labels, (CLEAN, *BACKGROUNDS))
    result["background_average"] = float(np.mean([result[n] for n in BACKGROUNDS]))
    return result


def extended_accuracy(model: nn.Module, images: np.ndarray, labels: np.ndarray
                      ) -> dict[str, float]:
    """Accuracy on ``uint8 [N, 28, 28]`` images under every extended-suite set, plus
    ``extended_background_average`` and ``extended_photometric_average``."""
    result = _set_accuracy(model, Composites(images), labels, extended.NAMES)
    for key, names in (("extended_background_average", extended.BACKGROUND_SETS),
                       ("extended_photometric_average", extended.PHOTOMETRIC_SETS)):
        result[key] = float(np.mean([result[n] for n in names]))
    return result


def score_run(run_dir: str | Path, on: str = "test", limit: int = 0,
              data_root: str | Path | None = None, suite: str = DEFAULT_SUITE) -> dict[str, Any]:
    """``background_accuracy`` of a finished run's classifier on its validation images
    (``on="val"``, the split it was trained without) or the test images, first ``limit``
    only if given; with the run, split, method, dataset and image count. ``suite="extended"``
    adds ``extended_accuracy``."""
    from bgbench.data import load_numpy
    from bgbench.train.data import split_indices
    from bgbench.train.run import load_classifier
    from bgbench.train.run_config import RunConfig

    if on not in SPLITS:
        raise ParameterError(f"`on` must be one of {', '.join(SPLITS)}, got {on!r}")
    if suite not in SUITES:
        raise ParameterError(f"`suite` must be one of {', '.join(SUITES)}, got {suite!r}")
    if limit < 0:
        raise ParameterError(f"`limit` must be non-negative (0: all), got {limit}")
    model, record = load_classifier(run_dir)
    config = RunConfig.from_dict(record)
    if on == "test":
        images, labels = load_numpy(config.dataset, "test", data_root)
    else:
        images, labels = load_numpy(config.dataset, "train", data_root)
        opts = config.options
        val, _ = split_indices(len(labels), opts.val_size, opts.split_seed)
        images, labels = images[val.numpy()], labels[val.numpy()]
    if limit:
        images, labels = images[:limit], labels[:limit]
    result = background_accuracy(model, images, labels)
    if suite == EXTENDED_SUITE:
        result.update(extended_accuracy(model, images, labels))
    return {"run": str(run_dir), "on": on, "method": config.method,
            "dataset": config.dataset, "n": len(labels), **result}
