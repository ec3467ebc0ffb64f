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


def worst_case_accuracy(model: nn.Module, dataset: str, images: np.ndarray,
                        labels: np.ndarray, budget: int, split: str = "val",
                        seed: int | None = None) -> dict[str, Any]:
    """The worst-case search (``bgbench.attack``, budget ``budget``) of ``model`` on
    ``uint8 [N, 28, 28]`` images of ``split``: ``worst_case_universal``, ``_adaptive``,
    ``_worst_of_K`` for each K, the universal background's family, and per family
    ``worst_case_family_NAME`` (right on clean and under every pool member of the family)."""
    from bgbench.attack.api import attack_predictor
    from bgbench.attack.search import DEFAULT_SEED
    from bgbench.harness.testsets import TestSuite

    device = next(model.parameters()).device

    def predict(batch: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return model(torch.from_numpy(batch).to(device)).float().cpu().numpy()

    model.eval()
    suite = TestSuite(dataset, images, labels, split=split)
    wc = attack_predictor(predict, dataset, budget=budget,
                          seed=DEFAULT_SEED if seed is None else seed,
                          suites={dataset: suite}).worst_case
    out: dict[str, Any] = {"worst_case_budget": budget,
                           "worst_case_universal": wc.universal_accuracy,
                           "worst_case_universal_family": wc.universal["family"],
                           "worst_case_adaptive": wc.adaptive_accuracy}
    out.update({f"worst_case_worst_of_{k}": wc.accuracy(n) for k, n in wc.worst_of_k.items()})
    out.update({f"worst_case_family_{name}": wc.accuracy(f["worst_of_pool_n_correct"])
                for name, f in wc.per_family.items()})
    return out


def score_run(run_dir: str | Path, on: str = "test", limit: int = 0,
              data_root: str | Path | None = None, suite: str = DEFAULT_SUITE,
              attack_budget: int = 0) -> dict[str, Any]:
    """``background_accuracy`` of a finished run's classifier on its validation images
    (``on="val"``, the split it was trained without) or the test images, first ``limit``
    only if given; with the run, split, method, dataset and image count. ``suite="extended"``
    adds ``extended_accuracy``; ``attack_budget`` above 0 adds ``worst_case_accuracy`` at
    that budget."""
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
    if attack_budget < 0:
        raise ParameterError(f"`attack_budget` must be non-negative (0: no search), "
                             f"got {attack_budget}")
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
    if attack_budget:
        result.update(worst_case_accuracy(model, config.dataset, images, labels, attack_budget,
                                          on))
    return {"run": str(run_dir), "on": on, "method": config.method,
            "dataset": config.dataset, "n": len(labels), **result}
