"""How a batch of test images is turned into a model's input: layout, dtype and value scaling.

Composites are ``uint8 [B, S, S]`` pixels. A float model gets ``(pixel / 255 * scale - mean)
/ std`` as float32; a uint8 model gets the pixels themselves. The layout is one of
``nchw`` ``[B, 1, S, S]``, ``nhwc`` ``[B, S, S, 1]``, ``hw`` ``[B, S, S]`` or ``flat``
``[B, S*S]`` (row-major, as ``reshape`` flattens an image).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from bgbench.harness.params import ParameterError
from bgbench.harness.sizes import check_input_size
from bgbench.vocab import LAYOUTS

DTYPES = ("float32", "uint8")


@dataclass(frozen=True)
class InputConvention:
    """What one model expects; ``scale``, ``mean`` and ``std`` apply to float32 input only."""

    size: int
    layout: str = "nchw"
    dtype: str = "float32"
    scale: float = 1.0
    mean: float = 0.0
    std: float = 1.0

    def shape(self, batch: int) -> tuple[int, ...]:
        """The input shape for ``batch`` images."""
        s = self.size
        return {"nchw": (batch, 1, s, s), "nhwc": (batch, s, s, 1), "hw": (batch, s, s),
                "flat": (batch, s * s)}[self.layout]

    def feed(self, batch_u8: np.ndarray) -> np.ndarray:
        """``uint8 [B, S, S]`` pixels as this model's input array."""
        if batch_u8.dtype != np.uint8 or batch_u8.shape[1:] != (self.size, self.size):
            raise ValueError(f"expected uint8 [B, {self.size}, {self.size}] pixels, got "
                             f"{batch_u8.dtype} {list(batch_u8.shape)}")
        shape = self.shape(batch_u8.shape[0])
        if self.dtype == "uint8":
            return np.ascontiguousarray(batch_u8).reshape(shape)
        out = np.empty(batch_u8.shape, np.float32)
        # Multiply before dividing so that scale 255 gives the integer pixels exactly and
        # scale 1 gives exactly pixel / 255 (what bgbench's own models were trained on).
        np.multiply(batch_u8, np.float32(self.scale), out=out, dtype=np.float32)
        np.divide(out, np.float32(255), out=out)
        if self.mean != 0.0:
            np.subtract(out, np.float32(self.mean), out=out)
        if self.std != 1.0:
            np.divide(out, np.float32(self.std), out=out)
        return out.reshape(shape)

    def to_json(self) -> dict[str, Any]:
        """The convention as recorded with a result (scaling fields are null for uint8 input)."""
        doc = asdict(self)
        if self.dtype == "uint8":
            doc.update(scale=None, mean=None, std=None)
        return doc


def make_convention(size: int, layout: str = "nchw", dtype: str = "float32",
                    input_scale: float | None = None, mean: float | None = None,
                    std: float | None = None) -> InputConvention:
    """Check the choices and build the convention; ``None`` scaling values mean the defaults."""
    check_input_size(size)
    if layout not in LAYOUTS:
        raise ParameterError("layout", f"must be one of {', '.join(LAYOUTS)}", layout)
    if dtype not in DTYPES:
        raise ParameterError("input_dtype", f"must be one of {', '.join(DTYPES)}", dtype)
    given = {name: value for name, value in
             (("input_scale", input_scale), ("mean", mean), ("std", std)) if value is not None}
    if dtype == "uint8":
        if given:
            first = next(iter(given))
            raise ParameterError(first, "does not apply to a uint8 input", given[first],
                                 "a uint8 model gets the raw pixels 0..255; drop "
                                 + ", ".join(f"{{{name}}}" for name in given))
        return InputConvention(size=size, layout=layout, dtype=dtype)
    for name, value in given.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise ParameterError(name, "must be a finite number", value)
    if given.get("input_scale", 1.0) <= 0:
        raise ParameterError("input_scale", "must be positive", input_scale,
                             "1 for pixels in [0, 1], 255 for raw pixel values")
    if given.get("std", 1.0) <= 0:
        raise ParameterError("std", "must be positive", std)
    return InputConvention(size=size, layout=layout, dtype=dtype,
                           scale=float(given.get("input_scale", 1.0)),
                           mean=float(given.get("mean", 0.0)), std=float(given.get("std", 1.0)))
