"""How a model of each supported input size sees the test sets (the size rules).

A 32x32 model sees the paper's composites: the 28x28 test image zero-padded to 32x32, with
the background drawn at 32x32 (rule ``paper-32``). A 28x28 model must not see a crop of
those, which would cut away the 2-px border, part of the clock and a quarter of every noise
background. Under rule ``native-28`` it sees the dataset's own 28x28 pixels, the object mask
is computed on those pixels, and each background is drawn at 28x28 so that it keeps its
pattern at the digit's pixel scale and its share of set pixels within 10% of the 32x32
share (each background record's ``draw_28``, ``bgbench.backgrounds.BACKGROUNDS``;
why each looks as it does: docs/onnx-contract.md).
"""

from __future__ import annotations

import numpy as np

from bgbench import backgrounds as bgs
from bgbench.errors import ParameterError

DATASET_SIZE = bgs.DATASET_SIZE
SIZE_RULES: dict[int, str] = {bgs.SIZE: "paper-32", DATASET_SIZE: "native-28"}
INPUT_SIZES: tuple[int, ...] = tuple(SIZE_RULES)


def check_input_size(size: int) -> None:
    """Raise a clear error unless ``size`` is one of ``INPUT_SIZES``."""
    if size not in SIZE_RULES:
        supported = " and ".join(f"{s}x{s}" for s in INPUT_SIZES)
        raise ParameterError("input_size", f"must be one of {', '.join(map(str, INPUT_SIZES))}: "
                             f"the test sets exist at {supported}", size)


def size_rule(size: int) -> str:
    """The name of the rule that builds the test sets a ``size`` x ``size`` model sees."""
    check_input_size(size)
    return SIZE_RULES[size]


def images_at(images: np.ndarray, size: int) -> np.ndarray:
    """Dataset images ``uint8 [N, 28, 28]`` as the model's clean input ``[N, size, size]``."""
    check_input_size(size)
    return bgs.pad(images) if size == bgs.SIZE else images


def background_at(name: str, size: int) -> np.ndarray:
    """The named background as binary ``uint8 [size, size]`` under ``size_rule(size)``."""
    check_input_size(size)
    record = bgs.paper_background(name)
    return record.draw() if size == bgs.SIZE else record.draw_28()


def noise_at(rate: float, size: int) -> np.ndarray:
    """The noise background of ``rate`` as binary ``uint8 [size, size]``."""
    check_input_size(size)
    return bgs.noise(rate, size)
