"""Intervals, per-image correctness, flip rate, confusion and calibration from one pass."""

from __future__ import annotations

import csv
import json
import math
from dataclasses import astuple

import numpy as np
import pytest
from scipy import stats as sps
from test_harness import make_model, synthetic_data

from bgbench import backgrounds as bgs
from bgbench.errors import BgbenchError
from bgbench.harness import TestSuite, evaluate, evaluate_predictor, merge_results, write_results
from bgbench.harness.bits import CORRECT_FILE, ModelBits, add_sets, read_bits, write_bits
from bgbench.harness.measures import CONFIDENT, ECE_BINS, output_kind
from bgbench.harness.results import OLD_CSV_COLUMNS, read_results
from bgbench.harness.sizes import background_at

N = 240


@pytest.fixture
def suite() -> TestSuite:
    images, labels = synthetic_data(N)
    return TestSuite("mnist", images, labels, threads=1)


# Small random weights, with classes 3-9 (absent from the labels) pushed down: some images
# right, confidences spread over the bins.
WEIGHTS = (0.05 * np.random.default_rng(3).normal(size=(32 * 32, 10))).astype(np.float32)
WEIGHTS[:, 3:] -= 0.01


def composites(suite: TestSuite, name: str) -> np.ndarray:
    """The composites of ``name`` computed here, as float pixels [N, 1024]."""
    inside = bgs.foreground(bgs.pad(suite.images))
    pixels = bgs.pad(suite.images) / np.float32(255)
    bg = pixels if name == "clean" else background_at(name, 32).astype(np.float32)
    return np.where(inside, pixels, bg).reshape(len(suite), -1)


def softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def loop_ece(probs: np.ndarray, labels: np.ndarray, bins: int = ECE_BINS) -> float:
    """ECE written as its definition: bins ((b-1)/B, b/B], weighted |accuracy - confidence|."""
    conf = probs.max(axis=1)
    right = probs.argmax(axis=1) == labels
    total = 0.0
    for b in range(1, bins + 1):
        inside = (conf > (b - 1) / bins) & (conf <= b / bins)
        if inside.any():
            total += inside.sum() / len(labels) * abs(right[inside].mean() - conf[inside].mean())
    return total


def test_flip_rate_confusion_and_calibration_equal_independent_computations(tmp_path, suite):
    model = make_model(tmp_path / "linear.onnx", weights=WEIGHTS)
    [result] = evaluate(model, threads=1, batch_size=64, suites={"mnist": suite})
    assert result.output_kind == "logits"
    labels = suite.labels
    clean_logits = composites(suite, "clean") @ WEIGHTS
    clean_pred = clean_logits.argmax(1)
    clean_right = clean_pred == labels
    assert 0 < clean_right.sum() < N
    for t in result.test_sets:
        logits = composites(suite, t.test_set.name) @ WEIGHTS
        pred = logits.argmax(1)
        m = t.measures
        assert np.array_equal(t.correct, pred == labels)
        if t.test_set.name == "clean":
            assert m.flip_rate is None and m.flipped is None
        else:
            assert m.flipped == np.sum(clean_right & (pred != clean_pred))
            assert m.flip_rate == pytest.approx(m.flipped / clean_right.sum())
        for i in range(10):
            assert m.confusion[i].tolist() == [int(np.sum((labels == i) & (pred == j)))
                                               for j in range(10)]
        present = [i for i in range(10) if np.any(labels == i)]
        assert [a for a in m.per_class_accuracy if a is not None] == pytest.approx(
            [np.mean(pred[labels == i] == i) for i in present])
        probs = softmax(logits.astype(np.float64))
        cal = m.calibration
        assert cal.ece == pytest.approx(loop_ece(probs, labels), abs=1e-6)
        onehot = np.eye(10)[labels]
        assert cal.brier == pytest.approx(np.mean(((probs - onehot) ** 2).sum(1)), abs=1e-6)
        assert cal.confident_wrong == pytest.approx(
            np.mean((pred != labels) & (probs.max(1) >= CONFIDENT)))


def test_corner_model_flips_every_clean_right_image_where_the_corner_turns_white(tmp_path,
                                                                                suite):
    [result] = evaluate(make_model(tmp_path / "corner.onnx"), threads=1, suites={"mnist": suite})
    for t in result.test_sets[1:]:
        white = bgs.background(t.test_set.name)[0, 0] == 1
        assert t.measures.flip_rate == (1.0 if white else 0.0), t.test_set.name


def predictor_result(suite, transform):
    """An in-process linear model whose outputs are ``transform(logits)``."""
    def predict(x):
        return transform(x.reshape(len(x), -1) @ WEIGHTS)

    return evaluate_predictor(predict, "mnist", layout="flat", suites={"mnist": suite},
                              threads=1, backgrounds=["stripes", "clock"])


def test_probabilities_are_used_as_they_are_and_logits_through_softmax(suite):
    from_logits = predictor_result(suite, lambda z: z)
    from_probs = predictor_result(suite, lambda z: softmax(z.astype(np.float64)))
    assert (from_logits.output_kind, from_probs.output_kind) == ("logits", "probabilities")
    for a, b in zip(from_logits.test_sets, from_probs.test_sets, strict=True):
        assert astuple(a.measures.calibration) == pytest.approx(astuple(b.measures.calibration))
        assert a.n_correct == b.n_correct


def test_an_output_that_is_neither_is_scored_for_accuracy_only(tmp_path, suite):
    sigmoid = predictor_result(suite, lambda z: 1 / (1 + np.exp(-z)))
    logits = predictor_result(suite, lambda z: z)
    assert sigmoid.output_kind == "neither"
    assert [t.n_correct for t in sigmoid.test_sets] == [t.n_correct for t in logits.test_sets]
    assert all(t.measures.calibration is None for t in sigmoid.test_sets)
    write_results(tmp_path, [sigmoid])
    entry = read_results(tmp_path)["models"][0]
    assert entry["output_kind"] == "neither"
    assert all(m["ece"] is None and m["brier"] is None and m["confident_wrong"] is None
               for m in entry["measures"].values())
    rows = list(csv.DictReader((tmp_path / "results.csv").open()))
    assert all(r["ece"] == r["brier"] == r["confident_wrong"] == "" for r in rows)
    assert all(r["flip_rate"] != "" for r in rows if r["test_set"] != "clean")


def test_output_kind_rules():
    assert output_kind([np.array([[0.2, 0.8]]), np.array([[1.0, 0.0]])]) == "probabilities"
    assert output_kind([np.array([[0.2, 0.3]])]) == "neither"
    assert output_kind([np.array([[0.2, 0.8]]), np.array([[-1.0, 2.0]])]) == "logits"


def wilson_by_roots(k: int, n: int) -> tuple[float, float]:
    z = sps.norm.ppf(0.975)
    phat = k / n
    a, b, c = 1 + z * z / n, -(2 * phat + z * z / n), phat * phat
    root = math.sqrt(max(0.0, b * b - 4 * a * c))
    return (-b - root) / (2 * a), (-b + root) / (2 * a)


def test_every_csv_row_and_json_accuracy_carries_its_wilson_interval(tmp_path, suite):
    models = [make_model(tmp_path / "a.onnx"), make_model(tmp_path / "b.onnx", weights=WEIGHTS)]
    results = evaluate(models, noise_sweep=True, threads=1, suites={"mnist": suite})
    write_results(tmp_path / "out", results)
    rows = list(csv.DictReader((tmp_path / "out" / "results.csv").open()))
    assert len(rows) == 2 * (7 + len(bgs.NOISE_RATES))
    for r in rows:
        low, high = wilson_by_roots(int(r["n_correct"]), int(r["n_images"]))
        assert (float(r["ci_low"]), float(r["ci_high"])) == pytest.approx((low, high),
                                                                          abs=1e-12)
    doc = read_results(tmp_path / "out")
    for entry in doc["models"]:
        n = entry["n_images"]
        for which in ("accuracy", "noise_sweep"):
            assert set(entry["intervals"][which]) == set(entry[which])
            for key, acc in entry[which].items():
                ci = entry["intervals"][which][key]
                assert (ci["ci_low"], ci["ci_high"]) == pytest.approx(
                    wilson_by_roots(round(acc * n), n), abs=1e-12)


def test_correct_npz_round_trips_without_pickles_and_takes_other_sets(tmp_path, suite):
    [result] = evaluate(make_model(tmp_path / "b.onnx", weights=WEIGHTS), threads=1,
                        suites={"mnist": suite})
    write_results(tmp_path / "out", [result])
    with np.load(tmp_path / "out" / CORRECT_FILE, allow_pickle=False) as npz:
        assert all(npz[k].dtype == np.uint8 for k in npz.files)
    [bits] = read_bits(tmp_path / "out").values()
    assert (bits.model, bits.n_images, bits.input_size, bits.limit) == (result.model, N, 32, None)
    for t in result.test_sets:
        assert np.array_equal(bits.sets[t.test_set.label], t.correct)
        assert bits.definitions[t.test_set.label] == t.definition
    worst = np.zeros(N, bool)
    worst[:7] = True
    add_sets(tmp_path / "out", result.model, {"worst-case/adaptive": (worst, "search v1")})
    again = read_bits(tmp_path / "out")[result.model]
    assert np.array_equal(again.sets["worst-case/adaptive"], worst)
    assert again.definitions["worst-case/adaptive"] == "search v1"
    with pytest.raises(BgbenchError, match="already has the set worst-case/adaptive"):
        add_sets(tmp_path / "out", result.model, {"worst-case/adaptive": (worst, "x")})
    with pytest.raises(BgbenchError, match="holds no model nowhere.onnx"):
        add_sets(tmp_path / "out", "nowhere.onnx", {"s": (worst, "x")})
    with pytest.raises(BgbenchError, match="must be bool"):
        again.add("short", worst[:5], "x")
    with pytest.raises(BgbenchError, match="given twice"):
        write_bits(tmp_path / "twice", [ModelBits("m", None, "mnist", 32, None, 3)] * 2)


def make_old(directory):
    """Turn a results directory into what bgbench wrote before intervals and measures."""
    doc = json.loads((directory / "results.json").read_text())
    for m in doc["models"]:
        for key in ("intervals", "measures", "output_kind"):
            del m[key]
    (directory / "results.json").write_text(json.dumps(doc))
    rows = list(csv.DictReader((directory / "results.csv").open()))
    with (directory / "results.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, OLD_CSV_COLUMNS, extrasaction="ignore", lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    (directory / CORRECT_FILE).unlink()
    return rows


def test_merge_carries_bits_and_gives_older_results_their_intervals_only(tmp_path, suite):
    models = [make_model(tmp_path / "a.onnx"), make_model(tmp_path / "b.onnx", weights=WEIGHTS)]
    for model, name in zip(models, "ab", strict=True):
        write_results(tmp_path / name, evaluate([model], threads=1, suites={"mnist": suite}))
    merge_results([tmp_path / "a", tmp_path / "b"], tmp_path / "merged")
    assert set(read_bits(tmp_path / "merged")) == {str(m) for m in models}
    new_rows = make_old(tmp_path / "a")
    make_old(tmp_path / "b")
    merge_results([tmp_path / "a", tmp_path / "b"], tmp_path / "old")
    assert not (tmp_path / "old" / CORRECT_FILE).exists()
    rows = list(csv.DictReader((tmp_path / "old" / "results.csv").open()))
    a_rows = [r for r in rows if r["model"] == str(models[0])]
    assert [(r["ci_low"], r["ci_high"]) for r in a_rows] == [
        (r["ci_low"], r["ci_high"]) for r in new_rows]
    assert all(r[c] == "" for r in rows for c in ("flip_rate", "ece", "brier",
                                                  "confident_wrong"))
    merged = read_results(tmp_path / "old")
    fresh = read_results(tmp_path / "merged")
    for old, new in zip(merged["models"], fresh["models"], strict=True):
        assert old["intervals"] == new["intervals"]
        assert "measures" not in old and "output_kind" not in old
    # A newer evaluation with per-image results refuses to land over an older one's.
    with pytest.raises(Exception, match="already exist"):
        merge_results([tmp_path / "a"], tmp_path / "merged")


def test_calibration_on_a_hand_worked_example():
    from bgbench.harness.measures import calibration

    probs = np.array([[0.95, 0.05], [0.95, 0.05], [0.6, 0.4], [0.3, 0.7]])
    cal = calibration(probs, np.array([0, 1, 0, 0]))
    # Bins: the two 0.95s together (half right), 0.6 right alone, 0.7 wrong alone.
    assert cal.ece == pytest.approx(0.5 * 0.45 + 0.25 * 0.4 + 0.25 * 0.7)
    assert cal.brier == pytest.approx((0.005 + 1.805 + 0.32 + 0.98) / 4)
    assert cal.confident_wrong == 0.25
