"""What each dataset is: its folder in torchvision's layout, its files and their pinned checksums
(each dataset's record in ``bgbench.records``), and the files' names and shapes."""

from __future__ import annotations

from bgbench import records
from bgbench.errors import UsageError

NUM_CLASSES = 10
SPLIT_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
SHAPES = {
    "train-images-idx3-ubyte": (60000, 28, 28),
    "train-labels-idx1-ubyte": (60000,),
    "t10k-images-idx3-ubyte": (10000, 28, 28),
    "t10k-labels-idx1-ubyte": (10000,),
}
# A dataset's record (``bgbench.records``): its name, title, folder and checksums.
DatasetSpec = records.Dataset
SPECS: dict[str, DatasetSpec] = {d.name: d for d in records.DATASETS}
DATASETS: tuple[str, ...] = tuple(SPECS)


def dataset_spec(name: str) -> DatasetSpec:
    """The spec of ``name`` (one of ``DATASETS``); a clear error otherwise."""
    try:
        return SPECS[name]
    except KeyError:
        raise UsageError(f"unknown dataset {name!r}: choose from {', '.join(DATASETS)}") from None
