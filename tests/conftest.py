"""Shared fixtures. Real-data tests skip where the datasets are not prepared, unless
BGBENCH_REQUIRE_DATA=1 (CI), where a missing dataset fails them instead."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def real_data_root() -> Path:
    """The prepared data root (``$BGBENCH_DATA`` or the default), with both datasets in it."""
    from bgbench.data import DATASETS, dataset_spec, raw_dir
    from bgbench.paths import data_root

    root = data_root()
    missing = [d for d in DATASETS
               if not all((raw_dir(dataset_spec(d), root) / f).is_file()
                          for f in dataset_spec(d).files)]
    if missing:
        message = f"{', '.join(missing)} not prepared in {root}: run `bgbench data prepare`"
        if os.environ.get("BGBENCH_REQUIRE_DATA") == "1":
            pytest.fail(message)
        pytest.skip(message)
    return root


@pytest.fixture()
def one_torch_thread():
    """Run a test with one torch thread, restoring the count after."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
