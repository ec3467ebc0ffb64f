"""What one evaluation pass measures beside accuracy, from the outputs it already has.

- the kind of output a model gives (``output_kind``): logits, probabilities, or neither;
- per test set, the confusion matrix (rows: true class, columns: predicted class), hence the
  per-class accuracy;
- the flip rate: of the images a model gets right clean, the share whose prediction changes
  under a test set (the background-only analogue of ImageNet-P's flip rate);
- calibration (``calibration``): expected calibration error over ``ECE_BINS`` equal-width
  confidence bins, the multi-class Brier score, and the share of images answered wrongly
  with confidence at least ``CONFIDENT``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

LOGITS, PROBABILITIES, NEITHER = "logits", "probabilities", "neither"
OUTPUT_KINDS = (LOGITS, PROBABILITIES, NEITHER)
ECE_BINS = 15
CONFIDENT = 0.9
# How far a row of a probability output may sum from 1 (float16 and float32 softmax round).
SUM_TOLERANCE = 1e-2


def output_kind(outputs: Iterable[np.ndarray]) -> str:
    """``probabilities`` when every row of every output is a distribution over the classes,
    ``neither`` when every value lies in [0, 1] but some row does not sum to 1 (scores whose
    softmax would be another model's probabilities), else ``logits``."""
    distributions, unit = True, True
    for out in outputs:
        if not out.size:
            continue
        in_unit = bool((out.min() >= 0) and (out.max() <= 1 + SUM_TOLERANCE))
        unit &= in_unit
        distributions &= in_unit and bool(
            np.all(np.abs(out.sum(axis=1, dtype=np.float64) - 1) <= SUM_TOLERANCE))
    if distributions:
        return PROBABILITIES
    return NEITHER if unit else LOGITS


def probabilities(outputs: np.ndarray, kind: str) -> np.ndarray | None:
    """Class probabilities ``float [N, C]`` from a model's outputs of ``kind``: the softmax of
    logits, probabilities renormalised, None for an output that is neither."""
    if kind == NEITHER:
        return None
    x = outputs.astype(np.float64, copy=False)
    if kind == LOGITS:
        x = np.exp(x - x.max(axis=1, keepdims=True))
    return x / x.sum(axis=1, keepdims=True)


@dataclass(frozen=True)
class Calibration:
    """Calibration of one model on one test set."""

    ece: float
    brier: float
    confident_wrong: float


def calibration(probs: np.ndarray, labels: np.ndarray) -> Calibration:
    """ECE (``ECE_BINS`` bins ``((b-1)/B, b/B]`` of the top probability), Brier score (mean of
    the squared distance of the probabilities from the one-hot label, 0..2) and the share of
    images wrong with a top probability of at least ``CONFIDENT``."""
    n = len(labels)
    rows = np.arange(n)
    pred = probs.argmax(axis=1)
    confidence = probs[rows, pred]
    right = pred == labels
    bins = np.clip(np.ceil(confidence * ECE_BINS).astype(np.int64) - 1, 0, ECE_BINS - 1)
    # |B|/n |conf(B) - acc(B)| is |sum over B of (confidence - right)| / n.
    gap = np.bincount(bins, weights=confidence - right, minlength=ECE_BINS)
    ece = float(np.abs(gap).sum() / n)
    brier = float(np.mean(np.einsum("ij,ij->i", probs, probs) - 2 * probs[rows, labels] + 1))
    confident_wrong = float(np.mean(~right & (confidence >= CONFIDENT)))
    return Calibration(ece, brier, confident_wrong)


def confusion(pred: np.ndarray, labels: np.ndarray, classes: int) -> np.ndarray:
    """``int64 [C, C]``: images of true class ``i`` (row) predicted as class ``j`` (column)."""
    return np.bincount(labels * classes + pred, minlength=classes * classes).reshape(
        classes, classes)


def per_class_accuracy(matrix: np.ndarray) -> list[float | None]:
    """Accuracy on each true class (None for a class with no test image)."""
    totals = matrix.sum(axis=1)
    return [float(matrix[i, i] / t) if t else None for i, t in enumerate(totals)]


@dataclass(frozen=True)
class SetMeasures:
    """What one model's outputs on one test set show besides accuracy.

    ``flipped`` counts the images right on clean whose prediction differs here, out of
    ``clean_correct`` (both None on clean itself, or without a clean set); ``calibration`` is
    None when the output is ``neither`` logits nor probabilities.
    """

    output_kind: str
    confusion: np.ndarray
    flipped: int | None
    clean_correct: int | None
    calibration: Calibration | None

    @property
    def flip_rate(self) -> float | None:
        """``flipped / clean_correct`` (None without a clean set, or no image right on it)."""
        if self.flipped is None or not self.clean_correct:
            return None
        return self.flipped / self.clean_correct

    @property
    def per_class_accuracy(self) -> list[float | None]:
        """Accuracy per true class (``per_class_accuracy`` of the confusion matrix)."""
        return per_class_accuracy(self.confusion)


def set_measures(outputs: np.ndarray, labels: np.ndarray, kind: str, classes: int,
                 clean_pred: np.ndarray | None, clean_correct: np.ndarray | None
                 ) -> SetMeasures:
    """The measures of one test set from the model's ``outputs`` ``[N, classes]`` of ``kind``;
    ``clean_pred`` and ``clean_correct`` are the clean set's (None for clean itself)."""
    pred = outputs.argmax(axis=1)
    flipped = base = None
    if clean_pred is not None and clean_correct is not None:
        flipped = int(np.count_nonzero(clean_correct & (pred != clean_pred)))
        base = int(np.count_nonzero(clean_correct))
    probs = probabilities(outputs, kind)
    return SetMeasures(kind, confusion(pred, labels, classes), flipped, base,
                       None if probs is None else calibration(probs, labels))
