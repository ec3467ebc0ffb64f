"""The IDX file format of MNIST and Fashion-MNIST (uncompressed or gzip)."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np

_UINT8 = 0x08


def read_idx(path: str | Path) -> np.ndarray:
    """Read a uint8 IDX file (``.gz`` is decompressed) into an array of its stored shape."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        data = f.read()
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] != _UINT8:
        raise ValueError(f"{path}: not a uint8 IDX file (bad magic number)")
    ndim = data[3]
    header = 4 + 4 * ndim
    shape = tuple(int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    expected = header + int(np.prod(shape))
    if len(data) != expected:
        raise ValueError(f"{path}: corrupt IDX file: {len(data)} bytes where its header "
                         f"says {expected} (truncated, or bytes added or deleted)")
    return np.frombuffer(data, np.uint8, offset=header).reshape(shape)


def idx_bytes(array: np.ndarray) -> bytes:
    """Encode a uint8 array as IDX bytes."""
    if array.dtype != np.uint8:
        raise TypeError(f"IDX writer takes uint8 arrays, got {array.dtype}")
    header = bytes([0, 0, _UINT8, array.ndim]) + b"".join(
        int(d).to_bytes(4, "big") for d in array.shape)
    return header + np.ascontiguousarray(array).tobytes()
