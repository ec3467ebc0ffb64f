"""Verified, torch-free loading of prepared IDX files."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from bgbench import paths
from bgbench.data.datasets import SHAPES, SPLIT_FILES, DatasetSpec, dataset_spec
from bgbench.data.idx import read_idx
from bgbench.errors import BgbenchError, UsageError


def raw_dir(spec: DatasetSpec, root: str | Path | None = None) -> Path:
    """``ROOT/<Folder>/raw``, where torchvision's dataset classes look for the IDX files."""
    return paths.data_root(root) / spec.folder / "raw"


def array_sha256(array: np.ndarray) -> str:
    """SHA-256 of an array's C-ordered bytes."""
    return hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest()


def verify(spec: DatasetSpec, name: str, array: np.ndarray, origin: str) -> None:
    """Check a decoded array's shape, labels and checksum; raise naming ``origin`` otherwise."""
    if array.dtype != np.uint8 or array.shape != SHAPES[name]:
        raise BgbenchError(f"{origin}: expected uint8 {SHAPES[name]}, "
                           f"got {array.dtype} {array.shape}")
    if "labels" in name and array.max(initial=0) > 9:
        raise BgbenchError(f"{origin}: labels outside 0..9")
    digest = array_sha256(array)
    if digest != spec.sha256[name]:
        raise BgbenchError(f"{origin}: checksum mismatch (sha256 {digest[:16]}..., expected "
                           f"{spec.sha256[name][:16]}...): the file is corrupt or not the "
                           f"official {spec.name} data")


def read_verified(spec: DatasetSpec, path: Path) -> np.ndarray:
    """Read one prepared IDX file and verify it; errors name the file and the fix."""
    try:
        array = read_idx(path)
    except (OSError, ValueError) as err:
        raise BgbenchError(f"{err}; run `bgbench data prepare --dataset {spec.name} --force`"
                           ) from None
    try:
        verify(spec, path.name, array, str(path))
    except BgbenchError as err:
        raise BgbenchError(f"{err}; run `bgbench data prepare --dataset {spec.name} --force`"
                           ) from None
    return array


def load_numpy(dataset: str, split: str, data_root: str | Path | None = None
               ) -> tuple[np.ndarray, np.ndarray]:
    """Images ``uint8 [N, 28, 28]`` and labels ``int64 [N]`` of a prepared split.

    ``split`` is ``train`` (60,000) or ``test`` (10,000). Files are checksum-verified; a
    missing dataset is an error that names ``bgbench data prepare``.
    """
    spec = dataset_spec(dataset)
    if split not in SPLIT_FILES:
        raise UsageError(f"unknown split {split!r}: choose from {', '.join(SPLIT_FILES)}")
    folder = raw_dir(spec, data_root)
    files = [folder / name for name in SPLIT_FILES[split]]
    missing = [p for p in files if not p.is_file()]
    if missing:
        raise BgbenchError(f"{spec.name} is not prepared ({missing[0]} is missing): run "
                           f"`bgbench data prepare --dataset {spec.name} --data-root "
                           f"{paths.data_root(data_root)}`")
    images, labels = (read_verified(spec, p) for p in files)
    return images, labels.astype(np.int64)

