"""Input conventions: the published MNIST model behind input adapters scores as itself.

Each adapter is a small ONNX graph merged in front of results/models/mnist-proposal-seed0.onnx
that turns another convention (NHWC, flat, [N,H,W], [0, 255], uint8, mean/std, batch 1) back
into the model's own ``[batch, 1, 32, 32]`` input in [0, 1].
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from bgbench.errors import ParameterError, UsageError
from bgbench.harness import TestSuite, evaluate, inspect_model
from bgbench.harness.conventions import InputConvention, make_convention

PUBLISHED = Path(__file__).resolve().parents[1] / "results" / "models" / "mnist-proposal-seed0.onnx"
LIMIT = 300
SLACK = 2  # images per test set whose prediction may flip with float rounding
MEAN, STD = 0.1307, 0.3081
FLOAT, UINT8 = TensorProto.FLOAT, TensorProto.UINT8


def const(name: str, value) -> onnx.TensorProto:
    return numpy_helper.from_array(np.asarray(value), name)


# name: (input type, input shape, adapter nodes from "x" to "adapted", initializers, options)
ADAPTERS = {
    "nhwc": (FLOAT, ["batch", 32, 32, 1],
             [helper.make_node("Transpose", ["x"], ["adapted"], perm=[0, 3, 1, 2])], [], {}),
    "flat": (FLOAT, ["batch", 1024], [helper.make_node("Reshape", ["x", "shape"], ["adapted"])],
             [const("shape", np.array([-1, 1, 32, 32], np.int64))], {}),
    "hw": (FLOAT, ["batch", 32, 32], [helper.make_node("Unsqueeze", ["x", "axes"], ["adapted"])],
           [const("axes", np.array([1], np.int64))], {}),
    "raw255": (FLOAT, ["batch", 1, 32, 32], [helper.make_node("Div", ["x", "k"], ["adapted"])],
               [const("k", np.float32(255))], {"input_scale": 255.0}),
    "uint8": (UINT8, ["batch", 1, 32, 32],
              [helper.make_node("Cast", ["x"], ["xf"], to=FLOAT),
               helper.make_node("Div", ["xf", "k"], ["adapted"])],
              [const("k", np.float32(255))], {}),
    "meanstd": (FLOAT, ["batch", 1, 32, 32],
                [helper.make_node("Mul", ["x", "std"], ["xs"]),
                 helper.make_node("Add", ["xs", "mean"], ["adapted"])],
                [const("std", np.float32(STD)), const("mean", np.float32(MEAN))],
                {"mean": MEAN, "std": STD}),
    "batch1": (FLOAT, [1, 1, 32, 32], [helper.make_node("Identity", ["x"], ["adapted"])], [], {}),
}
DETECTED = {"nhwc": "nhwc", "flat": "flat", "hw": "hw", "raw255": "nchw", "uint8": "nchw",
            "meanstd": "nchw", "batch1": "nchw"}


def adapted_model(tmp_path: Path, name: str) -> Path:
    """The published model with the named adapter in front; no bgbench metadata."""
    elem, shape, nodes, inits, _ = ADAPTERS[name]
    original = onnx.load(str(PUBLISHED))
    graph = helper.make_graph(nodes, f"adapter_{name}",
                              [helper.make_tensor_value_info("x", elem, shape)],
                              [helper.make_tensor_value_info("adapted", FLOAT,
                                                             ["batch", 1, 32, 32])], inits)
    adapter = helper.make_model(graph, opset_imports=list(original.opset_import))
    adapter.ir_version = original.ir_version
    merged = onnx.compose.merge_models(adapter, original, io_map=[("adapted", "images")],
                                       prefix1="adapter_")
    del merged.metadata_props[:]
    onnx.checker.check_model(merged)
    path = tmp_path / f"{name}.onnx"
    onnx.save(merged, str(path))
    return path


@pytest.fixture(scope="module")
def mnist_suite(real_data_root) -> TestSuite:
    from bgbench.data import load_numpy

    images, labels = load_numpy("mnist", "test", real_data_root)
    return TestSuite("mnist", images[:LIMIT], labels[:LIMIT], threads=2)


@pytest.fixture(scope="module")
def original_counts(mnist_suite) -> dict[str, int]:
    [result] = evaluate(PUBLISHED, threads=2, suites={"mnist": mnist_suite})
    return {r.test_set.name: r.n_correct for r in result.test_sets}


@pytest.mark.realdata
@pytest.mark.parametrize("name", list(ADAPTERS))
def test_adapted_model_scores_as_the_original(tmp_path, name, mnist_suite, original_counts):
    path = adapted_model(tmp_path, name)
    options = ADAPTERS[name][4]
    [result] = evaluate(path, dataset="mnist", threads=2, suites={"mnist": mnist_suite},
                        **options)
    got = {r.test_set.name: r.n_correct for r in result.test_sets}
    assert got.keys() == original_counts.keys()
    for test_set, want in original_counts.items():
        assert abs(got[test_set] - want) <= SLACK, (name, test_set, got[test_set], want)
    assert all(r.n_images == LIMIT for r in result.test_sets)
    assert result.convention.layout == DETECTED[name]
    assert result.convention.dtype == ("uint8" if name == "uint8" else "float32")
    assert result.fixed_batch == (1 if name == "batch1" else None)
    assert result.batch_size == (1 if name == "batch1" else 500)


@pytest.mark.realdata
def test_flags_reach_the_model_and_are_recorded(tmp_path, real_data_root):
    from bgbench.cli import main

    path = adapted_model(tmp_path, "meanstd")
    out = tmp_path / "res"
    code = main(["eval", str(path), "--dataset", "mnist", "--limit", "200", "--backgrounds",
                 "board", "--layout", "nchw", "--mean", str(MEAN), "--std", str(STD),
                 "--threads", "1", "--quiet", "--data-root", str(real_data_root),
                 "--out", str(out)])
    assert code == 0
    [entry] = json.loads((out / "results.json").read_text())["models"]
    assert entry["input"] == {"size": 32, "layout": "nchw", "dtype": "float32", "scale": 1.0,
                              "mean": MEAN, "std": STD, "fixed_batch": None}
    assert entry["output"] == "logits" and entry["batch_size"] == 500
    assert (entry["input_size"], entry["size_rule"]) == (32, "paper-32")
    assert entry["accuracy"]["clean"] > 0.9


def test_feed_values_and_layouts():
    pixels = np.arange(2 * 28 * 28, dtype=np.int64).reshape(2, 28, 28).astype(np.uint8)
    default = InputConvention(size=28).feed(pixels)
    assert default.shape == (2, 1, 28, 28) and default.dtype == np.float32
    np.testing.assert_array_equal(default[:, 0], pixels / np.float32(255))
    raw = make_convention(28, "nhwc", input_scale=255).feed(pixels)
    np.testing.assert_array_equal(raw[..., 0], pixels.astype(np.float32))  # exact integers
    normed = make_convention(28, "flat", mean=0.5, std=0.25).feed(pixels)
    np.testing.assert_allclose(normed, ((pixels / 255 - 0.5) / 0.25).reshape(2, -1), atol=1e-6)
    as_bytes = make_convention(28, "hw", "uint8").feed(pixels)
    assert as_bytes.dtype == np.uint8 and np.array_equal(as_bytes, pixels)


BAD_CHOICES = {
    "uint8 with mean": (dict(dtype="uint8", mean=0.1), "`mean` does not apply to a uint8 input"),
    "zero std": (dict(std=0.0), "`std` must be positive, got 0.0"),
    "negative scale": (dict(input_scale=-1.0), "`input_scale` must be positive"),
    "nan mean": (dict(mean=float("nan")), "`mean` must be a finite number"),
    "bad layout": (dict(layout="chw"), "`layout` must be one of nchw, nhwc, hw, flat"),
}


@pytest.mark.parametrize("case", list(BAD_CHOICES))
def test_impossible_choices_are_errors(case):
    kwargs, message = BAD_CHOICES[case]
    with pytest.raises(UsageError, match=message):
        make_convention(28, **kwargs)


def make_io_model(path: Path, in_shape, elem=FLOAT, outputs=None) -> Path:
    """A graph whose logits are the mean of its input times ones; outputs as asked."""
    nodes = [helper.make_node("ReduceMean", ["x"], ["m"], keepdims=0, axes=None),
             helper.make_node("Reshape", ["m", "col"], ["c"]),
             helper.make_node("Mul", ["c", "ones"], ["logits"])]
    if elem != FLOAT:
        nodes.insert(0, helper.make_node("Cast", ["images"], ["x"], to=FLOAT))
    else:
        nodes.insert(0, helper.make_node("Identity", ["images"], ["x"]))
    inits = [const("col", np.array([-1, 1], np.int64)), const("ones", np.ones(10, np.float32))]
    outs = outputs or [("logits", FLOAT, ["batch", 10])]
    for out_name, _, _ in outs:
        if out_name != "logits":
            nodes.append(helper.make_node("Identity", ["logits"], [out_name]))
    graph = helper.make_graph(nodes, "io", [helper.make_tensor_value_info("images", elem,
                                                                          in_shape)],
                              [helper.make_tensor_value_info(n, t, s) for n, t, s in outs], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 9
    onnx.save(model, str(path))
    return path


@pytest.mark.parametrize("shape,layout,size", [
    (["N", 1, 28, 28], "nchw", 28), (["N", 28, 28, 1], "nhwc", 28), (["N", 32, 32], "hw", 32),
    (["N", 784], "flat", 28), (["N", 1024], "flat", 32), (["N", "c", 32, 32], "nchw", 32),
])
def test_layout_and_size_are_detected(tmp_path, shape, layout, size):
    info = inspect_model(make_io_model(tmp_path / "m.onnx", shape), "mnist")
    assert (info.convention.layout, info.input_size) == (layout, size)


@pytest.mark.parametrize("shape,message", [
    (["N", 3, 32, 32], "3 channels cannot be fed"),
    (["N", 900], "a flat input must hold 1024 .32x32. or 784 .28x28. pixels"),
    (["N", 1, 30, 30], "30x30 images are not supported; the test sets exist at 32x32 and 28x28"),
    (["N", 1, "h", "w"], "image dimensions must be fixed numbers"),
])
def test_unusable_input_shapes_are_errors(tmp_path, shape, message):
    with pytest.raises(Exception, match=message) as info:
        inspect_model(make_io_model(tmp_path / "m.onnx", shape), "mnist")
    assert "\n" not in str(info.value)


def test_layout_flag_must_fit_the_input(tmp_path):
    path = make_io_model(tmp_path / "m.onnx", ["N", 1, 28, 28])
    with pytest.raises(Exception, match="which is not nhwc"):
        inspect_model(path, "mnist", layout="nhwc")
    assert inspect_model(path, "mnist", layout="nchw").convention.layout == "nchw"


def test_output_selection(tmp_path):
    label_and_probs = [("label", TensorProto.INT64, ["batch"]),
                       ("logits", FLOAT, ["batch", 10])]
    path = make_io_model(tmp_path / "a.onnx", ["N", 784], outputs=label_and_probs)
    assert inspect_model(path, "mnist").output_name == "logits"
    two = [("logits", FLOAT, ["batch", 10]), ("probabilities", FLOAT, ["batch", 10])]
    path = make_io_model(tmp_path / "b.onnx", ["N", 784], outputs=two)
    with pytest.raises(ParameterError, match="`output` must be given: .* has 2 float outputs shaped "
                                         r"\[batch, classes\]; name one of logits, probabilities"):
        inspect_model(path, "mnist")
    assert inspect_model(path, "mnist", output="probabilities").output_name == "probabilities"
    with pytest.raises(ParameterError, match="`output` names no output of .*, got 'prob'; its outputs "
                                         "are logits"):
        inspect_model(path, "mnist", output="prob")
    with pytest.raises(Exception, match=r"output label \(INT64 \['batch'\]\) is not a float tensor"):
        inspect_model(make_io_model(tmp_path / "c.onnx", ["N", 784], outputs=label_and_probs),
                      "mnist", output="label")


def test_sequence_output_names_the_zipmap_fix(tmp_path):
    path = make_io_model(tmp_path / "m.onnx", ["N", 784])
    model = onnx.load(str(path))
    seq = helper.make_tensor_sequence_value_info("probs", FLOAT, None)
    model.graph.node.append(helper.make_node("SequenceConstruct", ["logits"], ["probs"]))
    del model.graph.output[:]
    model.graph.output.append(seq)
    onnx.save(model, str(path))
    with pytest.raises(Exception, match=r"options=\{'zipmap': False\}"):
        inspect_model(path, "mnist")
