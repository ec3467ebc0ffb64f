"""``--suite extended``: the extended sets reach any model byte for byte, and are reported apart.

The "checksum" model predicts ``sum(byte_i * w_i) mod 10`` of its input, with per-pixel
weights in {1, 3, 7, 9} (units modulo 10), so a change of any byte by less than 10 changes
its prediction. Labelling the images with the checksums of one extended set's expected
images (``bgbench.extended.extended_test_set`` on the model-size images and object mask)
makes that set score exactly 100% only if every image the model got is the expected one.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from bgbench import backgrounds as bgs
from bgbench import extended as ext
from bgbench.errors import ParameterError
from bgbench.harness import (
    TestSuite,
    evaluate,
    evaluate_predictor,
    format_table,
    results_document,
    write_results,
)
from bgbench.harness.conventions import InputConvention
from bgbench.harness.sizes import background_at, images_at
from bgbench.harness.testsets import CLEAN, NOISE, TestSet, standard_test_sets

N_IMAGES = 60
PAPER_SETS = [CLEAN, *bgs.BACKGROUNDS]


def pixel_weights(size: int) -> np.ndarray:
    return np.random.default_rng(size).choice([1, 3, 7, 9], size * size).astype(np.int64)


def checksum(images_u8: np.ndarray) -> np.ndarray:
    """What the checksum model predicts for each ``uint8 [N, S, S]`` image."""
    n, size = images_u8.shape[0], images_u8.shape[-1]
    return (images_u8.reshape(n, -1).astype(np.int64) @ pixel_weights(size)) % 10


def checksum_model(path, size: int, layout: str, dtype: str) -> str:
    """The checksum model as an ONNX graph, taking ``layout`` input of ``dtype``."""
    shape = InputConvention(size=size, layout=layout).shape(1)
    in_type = TensorProto.UINT8 if dtype == "uint8" else TensorProto.FLOAT
    nodes, inits, x = [], [], "images"
    if dtype == "float32":
        # Pixels in [0, 1] back to bytes: 255 x rounded is exact for x = byte / 255 in float32.
        nodes += [helper.make_node("Mul", ["images", "k255"], ["scaled"]),
                  helper.make_node("Round", ["scaled"], ["rounded"])]
        inits.append(numpy_helper.from_array(np.array(255, np.float32), "k255"))
        x = "rounded"
    nodes += [helper.make_node("Cast", [x], ["bytes"], to=TensorProto.INT64),
              helper.make_node("Reshape", ["bytes", "flat_shape"], ["flat"]),
              helper.make_node("Mul", ["flat", "w"], ["weighted"]),
              helper.make_node("ReduceSum", ["weighted", "axes"], ["total"], keepdims=0),
              helper.make_node("Mod", ["total", "ten"], ["digit"]),
              helper.make_node("OneHot", ["digit", "depth", "on_off"], ["logits"])]
    inits += [numpy_helper.from_array(np.array([-1, size * size], np.int64), "flat_shape"),
              numpy_helper.from_array(pixel_weights(size), "w"),
              numpy_helper.from_array(np.array([1], np.int64), "axes"),
              numpy_helper.from_array(np.array(10, np.int64), "ten"),
              numpy_helper.from_array(np.array([10], np.int64), "depth"),
              numpy_helper.from_array(np.array([0, 1], np.float32), "on_off")]
    graph = helper.make_graph(
        nodes, "checksum", [helper.make_tensor_value_info("images", in_type,
                                                          ["batch", *shape[1:]])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 10])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 9
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return str(path)


def synthetic_images(n: int = N_IMAGES, seed: int = 0) -> np.ndarray:
    """Blobs of random bytes, some touching the image edge (so the 28x28 mask reaches it)."""
    rng = np.random.default_rng(seed)
    images = np.zeros((n, 28, 28), np.uint8)
    images[:, 7:21, 6:22] = rng.integers(0, 256, (n, 14, 16), dtype=np.uint8)
    images[: n // 4, 0, 3:9] = 200
    return images


def expected_sets(images: np.ndarray, size: int) -> dict[str, np.ndarray]:
    """Every test set of ``--suite extended`` as a ``size`` x ``size`` model must see it."""
    clean = images_at(images, size)
    mask = bgs.foreground(clean)
    out = {CLEAN: clean}
    out.update({name: np.where(mask, clean, background_at(name, size) * np.uint8(255))
                for name in bgs.BACKGROUNDS})
    out.update({name: ext.extended_test_set(name, clean, mask) for name in ext.NAMES})
    return out


@pytest.mark.parametrize(("size", "layout", "dtype"), [(32, "nchw", "float32"),
                                                      (28, "nhwc", "uint8"),
                                                      (28, "hw", "float32")])
def test_extended_sets_reach_the_model_exactly(tmp_path, size, layout, dtype):
    images = synthetic_images()
    model = checksum_model(tmp_path / "checksum.onnx", size, layout, dtype)
    expected = expected_sets(images, size)
    sums = {name: checksum(x) for name, x in expected.items()}
    for target in ext.NAMES:
        suite = TestSuite("mnist", images, sums[target], threads=1)
        [result] = evaluate(model, dataset="mnist", suite="extended", threads=1, batch_size=16,
                            suites={"mnist": suite})
        assert result.input_size == size and result.convention.layout == layout
        assert result.extended_accuracy[target] == 1.0, target
        got = {**result.accuracy, **result.extended_accuracy}
        assert list(got) == PAPER_SETS + list(ext.NAMES)
        for name, accuracy in got.items():
            assert accuracy == np.mean(sums[target] == sums[name]), (target, name)


def test_predictor_is_fed_every_extended_set_exactly():
    images = synthetic_images(seed=1)
    suite = TestSuite("mnist", images, np.zeros(N_IMAGES, np.int64), threads=1)
    fed = []

    def predict(x: np.ndarray) -> np.ndarray:
        fed.append(x.copy())
        return np.zeros((len(x), 10), np.float32)

    mean, std = 0.1307, 0.3081
    result = evaluate_predictor(predict, "mnist", input_size=28, layout="flat", mean=mean,
                                std=std, batch_size=25, suite="extended",
                                suites={"mnist": suite})
    convention = InputConvention(size=28, layout="flat", mean=mean, std=std)
    expected = expected_sets(images, 28)
    order = [t.name for t in standard_test_sets(suite="extended")]
    assert order == PAPER_SETS + list(ext.NAMES)
    batches = np.concatenate(fed).reshape(len(order), N_IMAGES, 28 * 28)
    for name, batch in zip(order, batches, strict=True):
        np.testing.assert_array_equal(batch, convention.feed(expected[name]), err_msg=name)
    assert result.suite == "extended"
    assert set(result.extended_accuracy) == set(ext.NAMES)


def test_paper_fields_keep_their_meaning_under_the_extended_suite(tmp_path):
    images = synthetic_images(seed=2)
    labels = checksum(expected_sets(images, 32)["grey-0.5"])
    suites = {"mnist": TestSuite("mnist", images, labels, threads=1)}
    model = checksum_model(tmp_path / "m.onnx", 32, "nchw", "float32")
    [paper] = evaluate(model, dataset="mnist", noise_sweep=True, threads=1, suites=suites)
    [both] = evaluate(model, dataset="mnist", noise_sweep=True, suite="extended", threads=1,
                    suites=suites)
    paper_doc, both_doc = (results_document([r])["models"][0] for r in (paper, both))
    for key in ("accuracy", "background_average", "background_worst", "fooled_by_any",
                "noise_sweep", "n_images"):
        assert both_doc[key] == paper_doc[key], key
    assert list(paper_doc["accuracy"]) == PAPER_SETS
    assert (paper_doc["suite"], paper_doc["extended_accuracy"]) == ("paper", {})
    assert paper_doc["extended_background_average"] is None
    assert paper_doc["extended_photometric_average"] is None
    assert both_doc["suite"] == "extended" and both_doc["extended_accuracy"]["grey-0.5"] == 1.0
    acc = both_doc["extended_accuracy"]
    assert both_doc["extended_background_average"] == pytest.approx(
        np.mean([acc[n] for n in ext.BACKGROUND_SETS]))
    assert both_doc["extended_photometric_average"] == pytest.approx(
        np.mean([acc[n] for n in ext.PHOTOMETRIC_SETS]))
    # The printed paper table (timing aside) is the same; the extended one comes after it.
    both_doc["images_per_second"] = paper_doc["images_per_second"]
    paper_table, both_table = format_table([paper_doc]), format_table([both_doc])
    assert "Extended suite" not in paper_table
    assert both_table.startswith(paper_table + "\n\nExtended suite")


def test_results_files_carry_the_extended_sets(tmp_path):
    images = synthetic_images(seed=3)
    labels = checksum(expected_sets(images, 28)["smooth-8"])
    suites = {"mnist": TestSuite("mnist", images, labels, threads=1)}
    paths = [checksum_model(tmp_path / "a.onnx", 28, "nhwc", "uint8"),
             checksum_model(tmp_path / "b.onnx", 32, "nchw", "float32")]
    results = evaluate(paths, dataset="mnist", suite="extended", threads=1, suites=suites)
    json_path, csv_path = write_results(tmp_path / "out", results)
    doc = json.loads(json_path.read_text())
    rows = list(csv.DictReader(csv_path.open()))
    assert len(rows) == 2 * (len(PAPER_SETS) + len(ext.NAMES))
    table = format_table(doc["models"])
    extended_lines = table.split("\n\nExtended suite")[1].splitlines()
    header = extended_lines[1].split()
    assert header == ["model", "dataset", "method", "size", *ext.BACKGROUND_SETS, "bg-average",
                      *ext.PHOTOMETRIC_SETS, "photometric-average"]
    for entry in doc["models"]:
        assert entry["suite"] == "extended"
        own = [r for r in rows if r["model"] == entry["model"]]
        assert {r["test_set"] for r in own if r["suite"] == "paper"} == set(PAPER_SETS)
        extended_rows = {r["test_set"]: r for r in own if r["suite"] == "extended"}
        assert list(extended_rows) == list(ext.NAMES)
        for name, row in extended_rows.items():
            assert float(row["accuracy"]) == int(row["n_correct"]) / int(row["n_images"])
            assert entry["extended_accuracy"][name] == float(row["accuracy"])
            assert row["input_size"] == str(entry["input_size"])
        stem = Path(entry["model"]).stem
        [line] = [ln.split() for ln in extended_lines[3:] if ln.split()[0] == stem]
        printed = dict(zip(header, line, strict=True))
        for name in ext.NAMES:
            assert float(printed[name]) == pytest.approx(
                100 * entry["extended_accuracy"][name], abs=0.0501)
        assert float(printed["bg-average"]) == pytest.approx(
            100 * entry["extended_background_average"], abs=0.0501)
        assert float(printed["photometric-average"]) == pytest.approx(
            100 * entry["extended_photometric_average"], abs=0.0501)
    native = next(e for e in doc["models"] if e["input_size"] == 28)
    assert native["extended_accuracy"]["smooth-8"] == 1.0


def test_extended_names_never_collide_with_the_papers():
    assert not set(ext.NAMES) & {CLEAN, NOISE, *bgs.BACKGROUNDS}
    assert {TestSet(n).suite for n in ext.NAMES} == {"extended"}
    assert {TestSet(n).suite for n in [CLEAN, *bgs.BACKGROUNDS]} == {"paper"}
    assert TestSet(NOISE, 0.1).suite == "paper"


def test_unknown_suite_is_a_clear_error():
    suites = {"mnist": TestSuite("mnist", synthetic_images(), np.zeros(N_IMAGES, np.int64))}
    with pytest.raises(ParameterError, match="^`suite` must be one of paper, extended, got 'mnist-c'; "
                                         "paper: the paper's six backgrounds"):
        evaluate_predictor(lambda x: np.zeros((len(x), 10)), "mnist", suite="mnist-c",
                           suites=suites)


def test_eval_cli_suite_extended(tmp_path, monkeypatch, capsys):
    import bgbench.data
    from bgbench.cli import main

    images = synthetic_images(seed=4)
    labels = checksum(expected_sets(images, 28)["haze"])
    monkeypatch.setattr(bgbench.data, "load_numpy",
                        lambda dataset, split, data_root=None: (images, labels))
    model = checksum_model(tmp_path / "keras-like.onnx", 28, "nhwc", "float32")
    out = tmp_path / "res"
    code = main(["eval", model, "--dataset", "mnist", "--suite", "extended", "--threads", "1",
                 "--quiet", "--out", str(out)])
    assert code == 0
    printed = capsys.readouterr().out
    [entry] = json.loads((out / "results.json").read_text())["models"]
    assert entry["suite"] == "extended" and entry["extended_accuracy"]["haze"] == 1.0
    assert (entry["input_size"], entry["input"]["layout"]) == (28, "nhwc")
    assert "Extended suite" in printed
    rows = list(csv.DictReader(io.StringIO((out / "results.csv").read_text())))
    assert [r["suite"] for r in rows] == ["paper"] * len(PAPER_SETS) + ["extended"] * len(ext.NAMES)
    with pytest.raises(SystemExit) as exit_info:
        main(["eval", model, "--suite", "imagenet-c", "--out", str(tmp_path / "x")])
    assert exit_info.value.code == 2
    assert "invalid choice: 'imagenet-c'" in capsys.readouterr().err
