"""MNIST and Fashion-MNIST: offline preparation into torchvision's layout and verified loading.

This package never imports torch; ``bgbench.data.torch_data`` holds the torch loader.
"""

from bgbench.data.datasets import DATASETS, NUM_CLASSES, SPECS, DatasetSpec, dataset_spec
from bgbench.data.load import load_numpy, raw_dir

__all__ = ["DATASETS", "NUM_CLASSES", "SPECS", "DatasetSpec", "dataset_spec", "load_numpy",
           "raw_dir"]
