"""Two models on the same images, set by set: discordant counts, exact McNemar p-values, the
difference of accuracies with its 95% interval, and Holm's correction over the sets paired.

Pairs come from per-image correctness (``bgbench.harness.bits.ModelBits``), and only from
models scored alike: same dataset, test-image limit, number of images, input size and, per
set, the same definition (the composites and labels fed).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from bgbench.errors import BgbenchError
from bgbench.harness.bits import ModelBits
from bgbench.harness.stats import holm, mcnemar_p, paired_difference, wilson

ALPHA = 0.05


@dataclass(frozen=True)
class PairedSet:
    """Models A and B on one test set: ``only_a`` images right by A alone, ``only_b`` by B
    alone; ``difference`` is A's accuracy minus B's, with its 95% interval; ``holm_p`` is the
    p-value adjusted over every set of the comparison."""

    label: str
    n_images: int
    correct_a: int
    correct_b: int
    only_a: int
    only_b: int
    p_value: float
    holm_p: float
    difference: float
    ci_low: float
    ci_high: float

    @property
    def accuracy_a(self) -> float:
        """A's accuracy on the set."""
        return self.correct_a / self.n_images

    @property
    def accuracy_b(self) -> float:
        """B's accuracy on the set."""
        return self.correct_b / self.n_images

    @property
    def significant(self) -> bool:
        """Whether the difference is significant at ``ALPHA`` after Holm's correction."""
        return self.holm_p <= ALPHA

    def to_json(self) -> dict[str, object]:
        """The set as ``bgbench compare --json`` writes it."""
        low_a, high_a = wilson(self.correct_a, self.n_images)
        low_b, high_b = wilson(self.correct_b, self.n_images)
        return {**asdict(self), "accuracy_a": self.accuracy_a, "ci_a": [low_a, high_a],
                "accuracy_b": self.accuracy_b, "ci_b": [low_b, high_b],
                "significant": self.significant}


def check_pairable(a: ModelBits, b: ModelBits) -> None:
    """Raise, naming the difference, unless ``a`` and ``b`` were scored on the same images in
    the same way (the sets' definitions are checked by ``pair``)."""
    for what, x, y in (("datasets", a.dataset, b.dataset),
                       ("test-image limits", a.limit, b.limit),
                       ("numbers of test images", a.n_images, b.n_images),
                       ("input sizes", a.input_size, b.input_size)):
        if x != y:
            raise BgbenchError(f"cannot pair {a.model} and {b.model}: they were scored with "
                               f"different {what} ({x} and {y}); evaluate both the same way "
                               "(same dataset and --limit; models of one input size)")


def common_sets(a: ModelBits, b: ModelBits) -> list[str]:
    """The set labels both models have, in A's order."""
    return [label for label in a.sets if label in b.sets]


def pair(a: ModelBits, b: ModelBits, labels: list[str] | None = None) -> list[PairedSet]:
    """A against B on ``labels`` (default: every set both have), Holm-corrected over them."""
    check_pairable(a, b)
    labels = common_sets(a, b) if labels is None else labels
    if not labels:
        raise BgbenchError(f"cannot pair {a.model} and {b.model}: they share no test set "
                           f"({', '.join(a.sets) or 'none'} against "
                           f"{', '.join(b.sets) or 'none'})")
    rows = []
    for label in labels:
        if a.definitions[label] != b.definitions[label]:
            raise BgbenchError(f"cannot pair {a.model} and {b.model} on {label}: the test set "
                               "was not the same images for both (its definition differs: "
                               "another bgbench or other data built it); evaluate both with "
                               "one bgbench on one data root")
        x, y = a.sets[label], b.sets[label]
        both = int(np.count_nonzero(x & y))
        only_a = int(np.count_nonzero(x & ~y))
        only_b = int(np.count_nonzero(~x & y))
        neither = a.n_images - both - only_a - only_b
        diff, low, high = paired_difference(both, only_a, only_b, neither)
        rows.append((label, both, only_a, only_b, mcnemar_p(only_a, only_b), diff, low, high))
    adjusted = holm([r[4] for r in rows])
    return [PairedSet(label, a.n_images, both + only_a, both + only_b, only_a, only_b, p, h,
                      diff, low, high)
            for (label, both, only_a, only_b, p, diff, low, high), h
            in zip(rows, adjusted, strict=True)]
