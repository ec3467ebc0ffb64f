"""Never a silently wrong number: bad outputs and impossible flags stop ``bgbench eval``.

Each case runs the real command in process on synthetic test images and checks the exit
code, the one-line message and that nothing was written.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import bgbench.data
from bgbench.cli import main

N_IMAGES = 240


@pytest.fixture(autouse=True)
def synthetic_mnist(monkeypatch):
    rng = np.random.default_rng(0)
    images = np.zeros((N_IMAGES, 28, 28), np.uint8)
    images[:, 8:20, 8:20] = rng.integers(0, 256, (N_IMAGES, 12, 12), dtype=np.uint8)
    labels = rng.integers(0, 10, N_IMAGES).astype(np.int64)
    monkeypatch.setattr(bgbench.data, "load_numpy",
                        lambda dataset, split, data_root=None: (images, labels))
    return images, labels


def linear_model(path: Path, *, batch="batch", elem=TensorProto.FLOAT, scale: float = 1.0,
                 classes: int = 10, declared: int = 10, first_row_only: bool = False) -> Path:
    """``logits = flatten(x) @ W * scale`` with fixed random weights; options break it."""
    weights = np.random.default_rng(1).normal(size=(1024, classes)).astype(np.float32)
    nodes = [helper.make_node("Cast", ["images"], ["x"], to=TensorProto.FLOAT),
             helper.make_node("Reshape", ["x", "flat_shape"], ["flat"]),
             helper.make_node("MatMul", ["flat", "W"], ["mm"]),
             helper.make_node("Mul", ["mm", "k"], ["scaled"])]
    if first_row_only:
        nodes.append(helper.make_node("Slice", ["scaled", "zero", "one", "zero"], ["logits"]))
    else:
        nodes.append(helper.make_node("Identity", ["scaled"], ["logits"]))
    inits = [numpy_helper.from_array(np.array([-1, 1024], np.int64), "flat_shape"),
             numpy_helper.from_array(weights, "W"),
             numpy_helper.from_array(np.array(scale, np.float32), "k"),
             numpy_helper.from_array(np.array([0], np.int64), "zero"),
             numpy_helper.from_array(np.array([1], np.int64), "one")]
    graph = helper.make_graph(
        nodes, "linear", [helper.make_tensor_value_info("images", elem, [batch, 1, 32, 32])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", declared])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 9
    onnx.save(model, str(path))
    return path


def eval_cli(tmp_path: Path, models: list[Path], *flags: str) -> int:
    return main(["eval", *map(str, models), "--dataset", "mnist", "--threads", "1", "--quiet",
                 "--backgrounds", "border,board", "--out", str(tmp_path / "res"), *flags])


def one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "Traceback" not in err, err
    return err


RUN_TIME_FAILURES = {
    "nan": ({"scale": float("nan")}, r"nan\.onnx on clean: NaN outputs for 240 of 240 images; "
                                      "a model whose outputs are not finite cannot be scored"),
    "inf": ({"scale": 1e38}, r"inf\.onnx on clean: infinite outputs for \d+ of 240 images"),
    "classes": ({"classes": 5}, "classes.onnx on clean: output has 5 classes but mnist has 10"),
    "batch": ({"first_row_only": True}, r"batch.onnx on clean: output has shape \[1, 10\] for a "
                                        r"batch of 240; it must be \[batch, classes\]"),
}


@pytest.mark.parametrize("case", list(RUN_TIME_FAILURES))
def test_bad_outputs_exit_1_and_write_nothing(tmp_path, capsys, case):
    kwargs, message = RUN_TIME_FAILURES[case]
    good = linear_model(tmp_path / "good.onnx")
    bad = linear_model(tmp_path / f"{case}.onnx", **kwargs)
    # The good model runs first; its numbers must not be written either.
    assert eval_cli(tmp_path, [good, bad]) == 1
    err = one_line_error(capsys)
    assert err.startswith("bgbench eval: error: ")
    assert re.search(message, err), err
    assert not (tmp_path / "res").exists()


def test_fixed_batch_is_padded_and_never_counted(tmp_path, capsys):
    dynamic = linear_model(tmp_path / "dynamic.onnx")
    fixed = linear_model(tmp_path / "fixed.onnx", batch=64)  # 240 = 3 * 64 + 48
    assert eval_cli(tmp_path, [dynamic, fixed]) == 0
    doc = json.loads((tmp_path / "res" / "results.json").read_text())
    first, second = doc["models"]
    assert first["accuracy"] == second["accuracy"] and second["n_images"] == N_IMAGES
    assert (first["batch_size"], second["batch_size"]) == (500, 64)
    assert (first["input"]["fixed_batch"], second["input"]["fixed_batch"]) == (None, 64)


BAD_FLAGS = {
    "batch size 0": ([], ["--batch-size", "0"], "--batch-size must be a positive integer, got 0"),
    "limit 0": ([], ["--limit", "0"], "--limit must be a positive integer, got 0"),
    "threads -1": ([], ["--threads", "-1"], "--threads must be a positive integer, got -1"),
    "std 0": ([], ["--std", "0"], "--std must be positive, got 0.0"),
    "scale nan": ([], ["--input-scale", "nan"], "--input-scale must be a finite number"),
    "fixed batch": ([{"batch": 1}], ["--batch-size", "8"],
                    "--batch-size must be 1 for .*fixed at 1, got 8; leave it unset"),
    "uint8 mean": ([{"elem": TensorProto.UINT8}], ["--mean", "0.1", "--std", "0.3"],
                   "--mean does not apply to a uint8 input, got 0.1; a uint8 model gets the raw "
                   "pixels 0..255; drop --mean, --std"),
    "output": ([], ["--output", "probs"], "--output names no output of .*, got 'probs'"),
    "background": ([], ["--backgrounds", "border,zebra"],
                   "--backgrounds names an unknown background, got 'zebra'; choose from"),
    "no background": ([], ["--backgrounds", ","], "--backgrounds names no background, got ','"),
    "no provider": ([], ["--providers", ","], "--providers names no execution provider"),
}


@pytest.mark.parametrize("case", list(BAD_FLAGS))
def test_impossible_flags_are_usage_errors(tmp_path, capsys, case):
    model_kwargs, flags, message = BAD_FLAGS[case]
    model = linear_model(tmp_path / "m.onnx", **(model_kwargs[0] if model_kwargs else {}))
    assert eval_cli(tmp_path, [model], *flags) == 2
    err = one_line_error(capsys)
    assert re.search(message, err), err
    assert not (tmp_path / "res").exists()


def test_progress_one_line_per_model_off_a_terminal(tmp_path, capsys):
    models = [linear_model(tmp_path / "a.onnx"), linear_model(tmp_path / "b.onnx", scale=2.0)]
    code = main(["eval", *map(str, models), "--dataset", "mnist", "--threads", "1",
                 "--out", str(tmp_path / "res")])
    assert code == 0
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 2
    for line, model in zip(lines, models, strict=True):
        assert line.startswith(f"{model}: 7 test sets, {7 * N_IMAGES} images, clean ")


def test_missing_dataset_names_the_flag(tmp_path, capsys):
    model = linear_model(tmp_path / "m.onnx")
    assert main(["eval", str(model), "--out", str(tmp_path / "res")]) == 2
    assert re.search("--dataset must be given: .*m.onnx has no bgbench.dataset metadata; say "
                     "which test set to use: mnist, fashion-mnist$", one_line_error(capsys))
