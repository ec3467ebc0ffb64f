"""``bgbench compare``: paired counts and exact p-values, and the pairs it refuses."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from scipy import stats as sps
from test_harness import make_model, synthetic_data

from bgbench import backgrounds as bgs
from bgbench.cli import main
from bgbench.errors import BgbenchError
from bgbench.harness import TestSuite, evaluate, write_results
from bgbench.harness.bits import read_bits, write_bits
from bgbench.harness.pairing import pair
from bgbench.harness.results import bits_of

ROOT = Path(__file__).resolve().parents[1]
MODELS = ROOT / "results" / "models"
N = 240


def weights(seed: int) -> np.ndarray:
    w = (0.05 * np.random.default_rng(seed).normal(size=(32 * 32, 10))).astype(np.float32)
    w[:, 3:] -= 0.01
    return w


@pytest.fixture
def suite() -> TestSuite:
    images, labels = synthetic_data(N)
    return TestSuite("mnist", images, labels, threads=1)


def run_json(capsys, *argv) -> dict:
    assert main(["compare", *map(str, argv), "--json"]) == 0
    return json.loads(capsys.readouterr().out)


@pytest.mark.realdata
@pytest.mark.slow
def test_compare_equals_onnxruntime_counts_and_scipy_binomtest(real_data_root, capsys):
    import onnxruntime as ort

    from bgbench.data import load_numpy

    limit = 300
    a, b = MODELS / "mnist-proposal-seed0.onnx", MODELS / "mnist-traditional-seed0.onnx"
    doc = run_json(capsys, a, b, "--dataset", "mnist", "--limit", limit, "--threads", 1,
                   "--data-root", real_data_root)
    images, labels = load_numpy("mnist", "test", data_root=real_data_root)
    images, labels = images[:limit], labels[:limit]
    padded = bgs.pad(images)
    inside = bgs.foreground(padded)
    pixels = padded / np.float32(255)

    def correct(model: Path, name: str) -> np.ndarray:
        session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
        bg = pixels if name == "clean" else bgs.background(name).astype(np.float32)
        x = np.where(inside, pixels, bg)[:, None].astype(np.float32)
        (logits,) = session.run(None, {session.get_inputs()[0].name: x})
        return logits.argmax(1) == labels

    assert [s["label"] for s in doc["sets"]] == ["clean", *bgs.BACKGROUNDS]
    for s in doc["sets"]:
        ra, rb = correct(a, s["label"]), correct(b, s["label"])
        only_a, only_b = int(np.sum(ra & ~rb)), int(np.sum(~ra & rb))
        assert (s["only_a"], s["only_b"]) == (only_a, only_b), s["label"]
        assert (s["correct_a"], s["correct_b"]) == (int(ra.sum()), int(rb.sum()))
        if only_a + only_b:
            want = sps.binomtest(only_a, only_a + only_b, 0.5).pvalue
            assert s["p_value"] == pytest.approx(want, rel=1e-9, abs=1e-300), s["label"]
        else:
            assert s["p_value"] == 1.0
        assert s["ci_low"] <= s["difference"] <= s["ci_high"]


def test_compare_from_stored_results_equals_pairing_the_evaluations(tmp_path, suite, capsys):
    models = [make_model(tmp_path / "a.onnx", weights=weights(1)),
              make_model(tmp_path / "b.onnx", weights=weights(2))]
    results = evaluate(models, threads=1, suites={"mnist": suite})
    write_results(tmp_path / "r", results)
    doc = run_json(capsys, "a.onnx", "b", "--results", tmp_path / "r")
    assert doc["a"]["source"] == doc["b"]["source"] == f"stored in {tmp_path / 'r'}"
    want = pair(bits_of(results[0]), bits_of(results[1]))
    assert doc["sets"] == [p.to_json() for p in want]
    for s, (ta, tb) in zip(doc["sets"], zip(*(r.test_sets for r in results), strict=True),
                           strict=True):
        assert s["only_a"] == int(np.sum(ta.correct & ~tb.correct))
        assert s["only_b"] == int(np.sum(~ta.correct & tb.correct))
    # An .onnx file is found in the results by its SHA-256, whatever its path.
    copy = tmp_path / "elsewhere.onnx"
    copy.write_bytes(models[1].read_bytes())
    assert run_json(capsys, models[0], copy, "--results", tmp_path / "r")["sets"] == doc["sets"]
    assert main(["compare", "a", "b", "--results", str(tmp_path / "r")]) == 0
    text = capsys.readouterr().out
    assert "McNemar p" in text and "clean" in text and "random" in text


def refusal(a_bits, b_bits) -> str:
    with pytest.raises(BgbenchError) as err:
        pair(a_bits, b_bits)
    return str(err.value)


def test_pairs_scored_differently_are_refused_naming_the_difference(tmp_path, suite):
    a = make_model(tmp_path / "a.onnx", weights=weights(1))
    b = make_model(tmp_path / "b.onnx", weights=weights(2))
    [ra, rb] = evaluate([a, b], threads=1, suites={"mnist": suite})
    bits_a, bits_b = bits_of(ra), bits_of(rb)
    assert pair(bits_a, bits_b)
    # Another limit, another number of images.
    images, labels = synthetic_data(N)
    fewer = TestSuite("mnist", images[:100], labels[:100], threads=1)
    [rf] = evaluate([b], threads=1, suites={"mnist": fewer})
    assert "different test-image limits (None and 100)" in refusal(bits_a, bits_of(rf, 100))
    assert "different numbers of test images (240 and 100)" in refusal(bits_a, bits_of(rf))
    # Another input size.
    native = make_model(tmp_path / "n.onnx", size=28,
                        weights=np.zeros((28 * 28, 10), np.float32))
    [rn] = evaluate([native], threads=1, suites={"mnist": suite})
    assert "different input sizes (32 and 28)" in refusal(bits_a, bits_of(rn))
    # Other images under the same set names (other data, or another bgbench's sets).
    other_images, other_labels = synthetic_data(N, seed=5)
    other = TestSuite("mnist", other_images, other_labels, threads=1)
    [ro] = evaluate([b], threads=1, suites={"mnist": other})
    assert "on clean: the test set was not the same images" in refusal(bits_a, bits_of(ro))
    # Another dataset.
    fashion = TestSuite("fashion-mnist", images, labels, threads=1)
    untagged = make_model(tmp_path / "u.onnx", dataset=None, weights=weights(2))
    [rd] = evaluate([untagged], dataset="fashion-mnist", threads=1,
                    suites={"fashion-mnist": fashion})
    assert "different datasets (mnist and fashion-mnist)" in refusal(bits_a, bits_of(rd))
    # No set in common.
    only_clean = bits_of(rb)
    only_clean.sets = {"worst-case/adaptive": only_clean.sets["clean"]}
    only_clean.definitions = {"worst-case/adaptive": "x"}
    assert "share no test set" in refusal(bits_a, only_clean)


def test_compare_refuses_models_without_per_image_results(tmp_path, suite, capsys):
    a = make_model(tmp_path / "a.onnx", weights=weights(1))
    b = make_model(tmp_path / "b.onnx", weights=weights(2))
    write_results(tmp_path / "r", evaluate([a, b], threads=1, suites={"mnist": suite}))
    (tmp_path / "r" / "correct.npz").unlink()
    assert main(["compare", "a", "b", "--results", str(tmp_path / "r")]) == 1
    err = capsys.readouterr().err
    assert "a is in" in err and "without per-image results" in err
    assert main(["compare", "nothing", "b", "--results", str(tmp_path / "r")]) == 1
    assert "nothing is not a file and names no model" in capsys.readouterr().err


def test_a_set_added_by_another_command_is_paired_too(tmp_path, suite):
    from bgbench.harness.bits import add_sets

    a = make_model(tmp_path / "a.onnx", weights=weights(1))
    b = make_model(tmp_path / "b.onnx", weights=weights(2))
    results = evaluate([a, b], threads=1, suites={"mnist": suite})
    write_results(tmp_path / "r", results)
    rng = np.random.default_rng(0)
    for r in results:
        add_sets(tmp_path / "r", r.model,
                 {"worst-case/adaptive": (rng.random(N) < 0.3, "search: 8 restarts")})
    bits = read_bits(tmp_path / "r")
    paired = pair(bits[results[0].model], bits[results[1].model])
    assert paired[-1].label == "worst-case/adaptive"
    write_bits(tmp_path / "copy", bits.values())
    assert set(read_bits(tmp_path / "copy")) == set(bits)


@pytest.mark.realdata
@pytest.mark.slow
def test_a_stored_model_against_one_evaluated_now_on_its_sets_and_limit(real_data_root, tmp_path,
                                                                        capsys):
    a, b = MODELS / "fashion-mnist-proposal-seed0.onnx", MODELS / "fashion-mnist-traditional-seed0.onnx"
    assert main(["eval", str(a), "--backgrounds", "clock,border", "--limit", "120", "--threads",
                 "1", "--out", str(tmp_path / "r"), "--quiet", "--data-root",
                 str(real_data_root)]) == 0
    capsys.readouterr()
    doc = run_json(capsys, a.name, b, "--results", tmp_path / "r", "--threads", 1,
                   "--data-root", real_data_root)
    assert (doc["a"]["source"], doc["b"]["source"]) == (f"stored in {tmp_path / 'r'}",
                                                        "evaluated now")
    assert [s["label"] for s in doc["sets"]] == ["clean", "clock", "border"]
    assert doc["limit"] == 120 and doc["n_images"] == 120
    assert main(["compare", a.name, str(b), "--results", str(tmp_path / "r"), "--limit", "60",
                 "--threads", "1", "--data-root", str(real_data_root)]) == 1
    assert "different test-image limits (120 and 60)" in capsys.readouterr().err
