"""The test sets a 28x28 model sees (rule native-28): every background present, pinned."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from onnx_linear import linear_onnx

from bgbench import backgrounds as bgs
from bgbench.errors import ParameterError
from bgbench.harness import TestSuite, evaluate
from bgbench.harness.sizes import (
    INPUT_SIZES,
    background_at,
    check_input_size,
    noise_at,
    size_rule,
)
from bgbench.harness.testsets import TestSet

# Pixels set in each background at 28x28 (the 32x32 counts are pinned in test_backgrounds).
NATIVE_28_COUNTS = {"stripes": 159, "board": 392, "border": 192, "circles": 96, "clock": 176,
                    "random": 196}


def share(image: np.ndarray) -> float:
    return float(image.mean())


def test_size_rules_and_supported_sizes():
    assert INPUT_SIZES == (32, 28)
    assert (size_rule(32), size_rule(28)) == ("paper-32", "native-28")
    with pytest.raises(ParameterError, match="^`input_size` must be one of 32, 28: the test sets "
                                           "exist at 32x32 and 28x28, got 24$"):
        check_input_size(24)


@pytest.mark.parametrize("name", list(bgs.BACKGROUNDS))
def test_each_background_keeps_its_share_at_28(name):
    bg28 = background_at(name, 28)
    assert bg28.shape == (28, 28) and bg28.dtype == np.uint8
    assert set(np.unique(bg28)) <= {0, 1}
    assert int(bg28.sum()) == NATIVE_28_COUNTS[name]
    assert share(bg28) == pytest.approx(share(bgs.background(name)), rel=0.10)
    np.testing.assert_array_equal(background_at(name, 32), bgs.background(name))


def test_every_noise_rate_keeps_its_share_at_28():
    for rate in bgs.NOISE_RATES:
        np.testing.assert_array_equal(noise_at(rate, 32), bgs.noise(rate))
        # One definition at every size: at 32 it is the paper's noise, pixel for pixel.
        np.testing.assert_array_equal(bgs.noise(rate, 32), bgs.noise(rate))
        assert int(noise_at(rate, 28).sum()) == int(28 * 28 * rate)
        if rate:
            assert share(noise_at(rate, 28)) == pytest.approx(share(bgs.noise(rate)), rel=0.10)
    np.testing.assert_array_equal(background_at("random", 28), noise_at(bgs.RANDOM_FRACTION, 28))


def test_patterns_survive_at_28():
    from skimage.measure import euler_number, label

    # Periodic patterns keep the pixels a 32x32 model sees around the digit.
    for name in ("stripes", "board"):
        np.testing.assert_array_equal(background_at(name, 28), bgs.background(name)[2:30, 2:30])
    # The border is a 2-px band on every side of the image.
    border = background_at("border", 28)
    for band in (border[:2, 2:-2], border[-2:, 2:-2], border[2:-2, :2], border[2:-2, -2:]):
        assert band.all()
    assert not border[2:-2, 2:-2].any()
    # Four closed circles (one hole each), and the clock's rings and ticks hold the same
    # number of holes as at 32x32.
    circles = background_at("circles", 28)
    assert label(circles, connectivity=2).max() == 4
    assert euler_number(circles, connectivity=2) == euler_number(bgs.circles(), connectivity=2) == 0
    assert euler_number(background_at("clock", 28), connectivity=2) == euler_number(
        bgs.clock(), connectivity=2)


def test_native_28_composites_use_the_dataset_pixels():
    rng = np.random.default_rng(3)
    images = np.zeros((50, 28, 28), np.uint8)
    images[:, 1:27, 5:20] = rng.integers(0, 256, (50, 26, 15), dtype=np.uint8)
    suite = TestSuite("mnist", images, np.zeros(50, np.int64), threads=1)
    np.testing.assert_array_equal(suite.composite(TestSet("clean"), 28), images)
    np.testing.assert_array_equal(suite.object_mask(28), bgs.foreground(images))
    for name in bgs.BACKGROUNDS:
        expected = np.where(bgs.foreground(images), images, background_at(name, 28) * 255)
        np.testing.assert_array_equal(suite.composite(TestSet(name), 28), expected, name)
    np.testing.assert_array_equal(suite.composite(TestSet("noise", 0.5), 28),
                                  np.where(bgs.foreground(images), images,
                                           noise_at(0.5, 28) * 255))


@pytest.mark.parametrize("size", [32, 28])
def test_unlabelled_composites_are_the_suites(size):
    from bgbench.errors import BgbenchError
    from bgbench.harness import Composites

    rng = np.random.default_rng(4)
    images = np.zeros((20, 28, 28), np.uint8)
    images[:, 6:22, 8:20] = rng.integers(0, 256, (20, 16, 12), dtype=np.uint8)
    composites = Composites(images, threads=1)
    suite = TestSuite("mnist", images, np.zeros(20, np.int64), threads=1)
    for test_set in (TestSet("clean"), TestSet("border"), TestSet("noise", 0.3), TestSet("haze")):
        got = composites.composite(test_set, size)
        assert got.dtype == np.uint8 and got.shape == (20, size, size)
        np.testing.assert_array_equal(got, suite.composite(test_set, size), test_set.label)
    with pytest.raises(BgbenchError, match=r"^blank images must be uint8 \[N, 28, 28\]"):
        Composites(np.zeros((1, 32, 32), np.uint8), name="blank")


def ring_model(path, size: int = 28):
    """Class 1 when any pixel of the outer 2-px ring is set, class 0 otherwise."""
    ring = np.ones((size, size), bool)
    ring[2:-2, 2:-2] = False
    weights = np.zeros((size * size, 10), np.float32)
    weights[ring.ravel(), 1] = 1.0
    bias = np.full(10, -1.0, np.float32)
    # A set pixel is at least 1/255 in [0, 1]: the ring's sum beats 0.001 exactly when one is.
    bias[:2] = (0.001, 0.0)
    linear_onnx(path, weights, bias, size)
    return path, ring


def ring_set(images: np.ndarray, ring: np.ndarray) -> np.ndarray:
    return (images[:, ring] > 0).any(axis=1)


def test_28x28_ring_model_sees_the_border(tmp_path):
    rng = np.random.default_rng(0)
    images = np.zeros((200, 28, 28), np.uint8)
    images[:, 6:22, 6:22] = rng.integers(0, 256, (200, 16, 16), dtype=np.uint8)
    images[:20, 0, 10] = 200  # a few digits touch the edge
    labels = rng.choice([0, 1], size=200, p=[0.7, 0.3]).astype(np.int64)
    suite = TestSuite("mnist", images, labels, threads=1)
    path, ring = ring_model(tmp_path / "ring.onnx")
    [result] = evaluate(path, dataset="mnist", threads=1, suites={"mnist": suite})
    assert result.accuracy["border"] == pytest.approx(np.mean(labels == 1))
    assert result.accuracy["clean"] == pytest.approx(np.mean(labels == ring_set(images, ring)))
    assert np.mean(labels == 1) != pytest.approx(np.mean(labels == 0))


@pytest.mark.realdata
def test_28x28_ring_model_on_mnist_border(tmp_path, real_data_root, capsys):
    from bgbench.cli import main
    from bgbench.data import load_numpy

    path, ring = ring_model(tmp_path / "ring.onnx")
    out = tmp_path / "res"
    code = main(["eval", str(path), "--dataset", "mnist", "--limit", "1000", "--backgrounds",
                 "border", "--threads", "1", "--quiet", "--data-root", str(real_data_root),
                 "--out", str(out)])
    assert code == 0
    [entry] = json.loads((out / "results.json").read_text())["models"]
    images, labels = (a[:1000] for a in load_numpy("mnist", "test", real_data_root))
    assert entry["accuracy"]["border"] == pytest.approx(np.mean(labels == 1))
    assert entry["accuracy"]["clean"] == pytest.approx(np.mean(labels == ring_set(images, ring)))
    assert (entry["input_size"], entry["size_rule"]) == (28, "native-28")
    rows = list(csv.DictReader((out / "results.csv").open()))
    assert all((r["input_size"], r["size_rule"]) == ("28", "native-28") for r in rows)
