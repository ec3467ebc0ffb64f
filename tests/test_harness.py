"""The onnxruntime harness on tiny ONNX models whose accuracy on every test set is known.

The "corner" model predicts class 1 when pixel (0, 0) is white and class 0 otherwise. Pixel
(0, 0) of a padded image is never part of the object (the padding is 2 px and the dilation
disk of radius 2 does not reach the diagonal), so on a test set its value is the background's:
the expected accuracy is the share of label 1 where the background sets (0, 0), else the
share of label 0.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from bgbench import backgrounds as bgs
from bgbench.attack.protocol import PROTOCOL
from bgbench.errors import BgbenchError, ParameterError, UsageError
from bgbench.harness import (
    TestSuite,
    evaluate,
    format_table,
    inspect_model,
    merge_results,
    read_results,
    results_document,
    write_results,
)
from bgbench.harness.bits import read_bits, write_bits
from bgbench.harness.results import SEARCH_DEFINITION

N_IMAGES = 240


def make_model(path: Path, *, classes: int = 10, size: int = 32, dataset: str | None = "mnist",
               batch: int | str = "batch", input_type: int = TensorProto.FLOAT,
               out_classes: int | str | None = None, extra_input: bool = False,
               extra_output: bool = False, input_rank: int = 4, weights: np.ndarray | None = None
               ) -> Path:
    """A linear classifier ``logits = flatten(x) @ W + b`` built with onnx.helper.

    The default weights read only pixel (0, 0): class 0 scores 1 - x00, class 1 scores x00,
    other classes score -1, so the prediction is 1 exactly where x00 is white.
    """
    pixels = size * size
    if weights is None:
        weights = np.zeros((pixels, classes), np.float32)
        weights[0, :2] = (-1.0, 1.0)
        bias = np.full(classes, -1.0, np.float32)
        bias[:2] = (1.0, 0.0)
    else:
        bias = np.zeros(classes, np.float32)
    in_shape = [batch, 1, size, size][:input_rank] if input_rank <= 4 else [batch, 1, 1, size, size]
    nodes = []
    x_name = "images"
    if input_type != TensorProto.FLOAT:
        nodes.append(helper.make_node("Cast", ["images"], ["x"], to=TensorProto.FLOAT))
        x_name = "x"
    nodes += [helper.make_node("Reshape", [x_name, "flat_shape"], ["flat"]),
              helper.make_node("MatMul", ["flat", "W"], ["mm"]),
              helper.make_node("Add", ["mm", "b"], ["logits"])]
    inits = [numpy_helper.from_array(np.array([-1, pixels], np.int64), "flat_shape"),
             numpy_helper.from_array(weights, "W"), numpy_helper.from_array(bias, "b")]
    inputs = [helper.make_tensor_value_info("images", input_type, in_shape)]
    if extra_input:
        inputs.append(helper.make_tensor_value_info("extra", TensorProto.FLOAT, ["batch", 1]))
    out_dim = classes if out_classes is None else out_classes
    outputs = [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", out_dim])]
    if extra_output:
        nodes.append(helper.make_node("Identity", ["logits"], ["copy"]))
        outputs.append(helper.make_tensor_value_info("copy", TensorProto.FLOAT,
                                                     ["batch", out_dim]))
    graph = helper.make_graph(nodes, "tiny", inputs, outputs, inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 9
    if dataset:
        helper.set_model_props(model, {"bgbench.dataset": dataset, "bgbench.method": "corner",
                                       "bgbench.input_size": str(size)})
    onnx.save(model, str(path))
    return path


def synthetic_data(n: int = N_IMAGES, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Digit-like blobs in the middle of 28x28 images; labels 0 and 1 mostly, a few 2s."""
    rng = np.random.default_rng(seed)
    images = np.zeros((n, 28, 28), np.uint8)
    images[:, 8:20, 8:20] = rng.integers(0, 256, (n, 12, 12), dtype=np.uint8)
    labels = rng.choice([0, 1, 2], size=n, p=[0.5, 0.4, 0.1]).astype(np.int64)
    return images, labels


@pytest.fixture
def suite() -> TestSuite:
    images, labels = synthetic_data()
    return TestSuite("mnist", images, labels, threads=1)


def corner_expected(bg: np.ndarray, labels: np.ndarray) -> float:
    return float(np.mean(labels == (1 if bg[0, 0] else 0)))


def test_corner_model_accuracy_on_every_test_set(tmp_path, suite):
    model = make_model(tmp_path / "corner.onnx")
    [result] = evaluate(model, noise_sweep=True, threads=1, batch_size=64,
                        suites={"mnist": suite})
    labels = suite.labels
    assert result.accuracy["clean"] == pytest.approx(np.mean(labels == 0))
    for name in bgs.BACKGROUNDS:
        assert result.accuracy[name] == pytest.approx(corner_expected(bgs.background(name),
                                                                      labels)), name
    assert set(result.noise_sweep) == {str(r) for r in bgs.NOISE_RATES}
    for rate in bgs.NOISE_RATES:
        assert result.noise_sweep[str(rate)] == pytest.approx(
            corner_expected(bgs.noise(rate), labels)), rate
    six = [corner_expected(bgs.background(n), labels) for n in bgs.BACKGROUNDS]
    assert result.background_average == pytest.approx(np.mean(six))
    assert result.background_worst == pytest.approx(min(six))
    # Stripes sets pixel (0, 0), so every image right on clean (label 0) is fooled.
    assert bgs.stripes()[0, 0] == 1
    assert result.fooled_by_any == pytest.approx(np.mean(labels == 0))
    assert all(t.n_images == N_IMAGES for t in result.test_sets)
    assert result.provider == "CPUExecutionProvider" and result.threads == 1
    assert result.method == "corner" and result.dataset == "mnist"


def test_28x28_model_sees_native_composites(tmp_path, suite):
    from bgbench.harness.sizes import background_at

    weights = np.random.default_rng(1).normal(size=(28 * 28, 10)).astype(np.float32)
    model = make_model(tmp_path / "native.onnx", size=28, weights=weights)
    [result] = evaluate(model, threads=1, batch_size=100, suites={"mnist": suite})
    assert (result.input_size, result.size_rule) == (28, "native-28")
    # The object mask is computed on the dataset's own 28x28 pixels, not on a crop.
    inside = bgs.foreground(suite.images)
    pixels = suite.images / np.float32(255)
    for name in ["clean", *bgs.BACKGROUNDS]:
        bg = pixels if name == "clean" else background_at(name, 28).astype(np.float32)
        composite = np.where(inside, pixels, bg)
        expected = np.mean((composite.reshape(N_IMAGES, -1) @ weights).argmax(1) == suite.labels)
        assert result.accuracy[name] == pytest.approx(expected), name


def test_results_files_agree_with_the_printed_table(tmp_path, suite):
    models = [make_model(tmp_path / "a.onnx"),
              make_model(tmp_path / "b.onnx", weights=np.random.default_rng(2).normal(
                  size=(1024, 10)).astype(np.float32))]
    results = evaluate(models, backgrounds=["stripes", "board"], noise_sweep=True, threads=1,
                       suites={"mnist": suite})
    json_path, csv_path = write_results(tmp_path / "out", results)
    doc = read_results(tmp_path / "out")
    assert doc["bgbench_version"] and doc["git_commit"] and doc["created"]
    table = format_table(doc["models"])
    assert table == format_table(results_document(results)["models"])
    rows = list(csv.DictReader(csv_path.open()))
    assert len(rows) == 2 * (3 + len(bgs.NOISE_RATES))
    lines = table.splitlines()
    header = lines[0].split()
    for entry in doc["models"]:
        [line] = [ln.split() for ln in lines[2:] if ln.startswith(Path(entry["model"]).stem)]
        printed = dict(zip(header, line, strict=True))
        for test_set in ("clean", "stripes", "board"):
            [row] = [r for r in rows if r["model"] == entry["model"] and r["test_set"] == test_set]
            accuracy = int(row["n_correct"]) / int(row["n_images"])
            assert float(row["accuracy"]) == pytest.approx(accuracy)
            assert entry["accuracy"][test_set] == pytest.approx(accuracy)
            assert float(printed[test_set]) == pytest.approx(100 * accuracy, abs=0.0501)
        assert float(printed["average"]) == pytest.approx(100 * entry["background_average"],
                                                          abs=0.0501)
        sweep = {r["parameter"]: float(r["accuracy"]) for r in rows
                 if r["model"] == entry["model"] and r["test_set"] == "noise"}
        assert sweep == pytest.approx(entry["noise_sweep"])
        assert all(r["parameter"] == "" for r in rows if r["test_set"] != "noise")
    with pytest.raises(ParameterError, match="already exist; choose another `out_dir` or "
                                         "pass `force=True` to replace them$"):
        write_results(tmp_path / "out", results)
    write_results(tmp_path / "out", results, force=True)


def test_merged_results_equal_one_evaluation_of_every_model(tmp_path, suite):
    models = [make_model(tmp_path / "a.onnx"),
              make_model(tmp_path / "b.onnx", weights=np.random.default_rng(2).normal(
                  size=(1024, 10)).astype(np.float32))]
    kwargs = dict(backgrounds=["stripes"], noise_sweep=True, threads=1, suites={"mnist": suite})
    write_results(tmp_path / "both", evaluate(models, **kwargs))
    for model, name in zip(models, ("a", "b"), strict=True):
        write_results(tmp_path / name, evaluate([model], **kwargs))
    merge_results([tmp_path / "a", tmp_path / "b"], tmp_path / "merged")

    def comparable(entry):
        return {k: v for k, v in entry.items() if k != "images_per_second"}

    both, merged = read_results(tmp_path / "both"), read_results(tmp_path / "merged")
    assert [comparable(m) for m in merged["models"]] == [comparable(m) for m in both["models"]]
    assert merged["git_commit"] == both["git_commit"]

    def counts(path):
        return [(r["model"], r["test_set"], r["parameter"], r["n_correct"])
                for r in csv.DictReader((path / "results.csv").open())]

    assert counts(tmp_path / "merged") == counts(tmp_path / "both")
    with pytest.raises(BgbenchError, match="more than one of the results"):
        merge_results([tmp_path / "a", tmp_path / "both"], tmp_path / "twice")
    merge_results([tmp_path / "a", tmp_path / "b"], tmp_path / "named", relative_to=tmp_path)
    assert [m["model"] for m in read_results(tmp_path / "named")["models"]] == ["a.onnx", "b.onnx"]
    assert [(Path(m).name, *rest) for m, *rest in counts(tmp_path / "merged")] == counts(
        tmp_path / "named")
    with pytest.raises(ParameterError, match=r"^`relative_to` \(.*\) does not hold model "):
        merge_results([tmp_path / "a"], tmp_path / "elsewhere", relative_to=tmp_path / "b")
    other = read_results(tmp_path / "b")
    other["versions"] = {**other["versions"], "onnxruntime": "0.0"}
    (tmp_path / "b" / "results.json").write_text(json.dumps(other))
    with pytest.raises(BgbenchError, match="differ in 'versions'"):
        merge_results([tmp_path / "a", tmp_path / "b"], tmp_path / "mixed")
    with pytest.raises(ParameterError, match="already exist"):
        merge_results([tmp_path / "a"], tmp_path / "merged")


def test_results_of_two_commits_merge_only_where_every_set_was_defined_alike(tmp_path, suite):
    models = [make_model(tmp_path / "a.onnx"),
              make_model(tmp_path / "b.onnx", weights=np.random.default_rng(2).normal(
                  size=(1024, 10)).astype(np.float32))]
    kwargs = dict(backgrounds=["stripes"], threads=1, suites={"mnist": suite})
    for model, name in zip(models, ("a", "b"), strict=True):
        write_results(tmp_path / name, evaluate([model], **kwargs))
    same = read_results(tmp_path / "a")["git_commit"]
    other = read_results(tmp_path / "b")
    other["git_commit"] = "0" * 40
    (tmp_path / "b" / "results.json").write_text(json.dumps(other))

    merge_results([tmp_path / "a", tmp_path / "b"], tmp_path / "merged")
    merged = read_results(tmp_path / "merged")
    assert merged["git_commit"] == ", ".join(sorted([same, "0" * 40]))
    assert [m["git_commit"] for m in merged["models"]] == [same, "0" * 40]
    assert [m["accuracy"] for m in merged["models"]] == [
        read_results(tmp_path / n)["models"][0]["accuracy"] for n in ("a", "b")]
    # A merged document of two commits merges again, each model keeping its commit.
    write_results(tmp_path / "c", evaluate([make_model(tmp_path / "c.onnx", weights=np.random
                                            .default_rng(3).normal(size=(1024, 10))
                                            .astype(np.float32))], **kwargs))
    merge_results([tmp_path / "merged", tmp_path / "c"], tmp_path / "again")
    assert [m["git_commit"] for m in read_results(tmp_path / "again")["models"]] == [
        same, "0" * 40, same]

    bits = read_bits(tmp_path / "b")
    bits[str(models[1])].definitions["stripes"] = "f" * 64
    write_bits(tmp_path / "b", bits.values())
    with pytest.raises(BgbenchError, match=r"the set 'stripes' of mnist \(\d+ images at 32x32\) "
                       r"was defined differently at commit .* and at commit 0{40}"):
        merge_results([tmp_path / "a", tmp_path / "b"], tmp_path / "redefined")
    (tmp_path / "b" / "correct.npz").unlink()
    with pytest.raises(BgbenchError, match=r"several commits .* has no per-image correctness"):
        merge_results([tmp_path / "a", tmp_path / "b"], tmp_path / "unknown")
    assert not (tmp_path / "redefined").exists() and not (tmp_path / "unknown").exists()


def test_search_definitions_begin_as_the_merge_expects():
    assert PROTOCOL.startswith(SEARCH_DEFINITION)


# --- bad models: each is a one-line error naming the problem ---------------------------------

BAD_MODELS = {
    "not_onnx": ({}, "is not an ONNX model"),
    "two_inputs": ({"extra_input": True}, "has 2 inputs"),
    "rank5": ({"input_rank": 5}, r"accepts \[batch, 1, S, S\]"),
    "size30": ({"size": 30}, "30x30 images are not supported; the test sets exist at 32x32 and 28x28"),
    "int32_input": ({"input_type": TensorProto.INT32}, "is INT32; the harness feeds FLOAT"),
    "two_outputs": ({"extra_output": True}, "2 float outputs.*name one of logits, copy"),
    "five_classes": ({"classes": 5}, "5 classes but mnist has 10"),
}


@pytest.mark.parametrize("case", sorted(BAD_MODELS))
def test_bad_model_is_a_clear_error(tmp_path, case):
    kwargs, message = BAD_MODELS[case]
    path = tmp_path / f"{case}.onnx"
    if case == "not_onnx":
        path.write_bytes(b"\x00\x01this is not a protobuf\xff" * 10)
    else:
        make_model(path, **kwargs)
    with pytest.raises(BgbenchError, match=message) as info:
        inspect_model(path)
    assert "\n" not in str(info.value)


def test_output_not_batch_by_classes(tmp_path):
    path = make_model(tmp_path / "m.onnx")
    model = onnx.load(str(path))
    model.graph.output[0].type.tensor_type.shape.dim.add().dim_value = 1
    onnx.save(model, str(path))
    with pytest.raises(BgbenchError, match=r"no float output shaped \[batch, classes\]; "
                       r"its outputs are logits \(FLOAT \['batch', 10, 1\]\)"):
        inspect_model(path)


def test_symbolic_class_count_is_checked_at_run_time(tmp_path, suite):
    path = make_model(tmp_path / "m.onnx", classes=5, out_classes="classes")
    with pytest.raises(BgbenchError, match="5 classes but mnist has 10"):
        evaluate(path, threads=1, suites={"mnist": suite})


def test_dataset_missing_or_conflicting(tmp_path, suite):
    bare = make_model(tmp_path / "bare.onnx", dataset=None)
    with pytest.raises(ParameterError, match="^`dataset` must be given: .* has no bgbench.dataset "
                                         "metadata; say which test set to use: mnist, "
                                         "fashion-mnist$"):
        inspect_model(bare)
    assert inspect_model(bare, dataset="fashion-mnist").dataset == "fashion-mnist"
    tagged = make_model(tmp_path / "tagged.onnx", dataset="mnist")
    with pytest.raises(UsageError, match="exported for dataset 'mnist'"):
        inspect_model(tagged, dataset="fashion-mnist")
    with pytest.raises(BgbenchError, match="does not exist"):
        inspect_model(tmp_path / "absent.onnx")


def test_unavailable_provider_is_an_error(tmp_path, suite):
    import onnxruntime as ort

    if "CUDAExecutionProvider" in ort.get_available_providers():
        pytest.skip("CUDA is available here")
    with pytest.raises(UsageError, match=r"CPU-only package; replace it: .*bgbench\[gpu\]"):
        evaluate(make_model(tmp_path / "m.onnx"), providers=["cuda"], suites={"mnist": suite})


def test_unknown_background_and_bad_options(tmp_path, suite):
    model = make_model(tmp_path / "m.onnx")
    with pytest.raises(ParameterError, match="^`backgrounds` names an unknown background, got "
                                         "'zebra'; choose from stripes, board"):
        evaluate(model, backgrounds=["zebra"], suites={"mnist": suite})
    with pytest.raises(ParameterError, match="^`batch_size` must be a positive integer, got 0$"):
        evaluate(model, batch_size=0, suites={"mnist": suite})


def test_composites_are_built_once_and_exact(suite):
    from bgbench.harness.testsets import TestSet, standard_test_sets, to_model_input

    first = suite.composite(TestSet("board"))
    assert suite.composite(TestSet("board")) is first
    # At 32x32 every test set is the paper's composite, bit for bit.
    for test_set in standard_test_sets(noise_sweep=True):
        bg = (np.zeros((32, 32), np.uint8) if test_set.name == "clean"
              else bgs.noise(test_set.parameter) if test_set.name == "noise"
              else bgs.background(test_set.name))
        exact = bgs.apply_reference(suite.padded, bg)
        np.testing.assert_array_equal(to_model_input(suite.composite(test_set), 32), exact,
                                      err_msg=test_set.label)


# --- the CLI, and the no-torch guarantee -----------------------------------------------------

CLI_SCRIPT = textwrap.dedent("""
    import importlib.abc, sys

    class BlockTorch(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name == "torch" or name.startswith("torch."):
                raise ImportError("torch is blocked in this test")

    sys.meta_path.insert(0, BlockTorch())
    import numpy as np
    import bgbench.harness  # noqa: F401
    import bgbench.data

    if {synthetic}:
        rng = np.random.default_rng(0)
        images = np.zeros((200, 28, 28), np.uint8)
        images[:, 8:20, 8:20] = rng.integers(0, 256, (200, 12, 12), dtype=np.uint8)
        labels = rng.choice([0, 1], size=200).astype(np.int64)
        bgbench.data.load_numpy = lambda dataset, split, data_root=None: (images, labels)
    from bgbench.cli import main
    code = main(sys.argv[1:])
    assert not any(m == "torch" or m.startswith("torch.") for m in sys.modules), "torch imported"
    sys.exit(code)
""")


def run_cli(tmp_path: Path, args: list[str], synthetic: bool = True
            ) -> subprocess.CompletedProcess:
    script = tmp_path / "cli.py"
    script.write_text(CLI_SCRIPT.format(synthetic=synthetic))
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1]))
    return subprocess.run([sys.executable, str(script), *args], capture_output=True, text=True,
                          env=env, timeout=120, cwd=tmp_path)


def test_eval_cli_runs_without_torch(tmp_path):
    model = make_model(tmp_path / "corner.onnx")
    out = tmp_path / "res"
    proc = run_cli(tmp_path, ["eval", str(model), "--threads", "1", "--out", str(out)])
    assert proc.returncode == 0, proc.stderr
    doc = json.loads((out / "results.json").read_text())
    [entry] = doc["models"]
    assert entry["provider"] == "CPUExecutionProvider"
    assert f"{100 * entry['background_average']:.1f}" in proc.stdout
    assert "corner" in proc.stdout.splitlines()[2]
    again = run_cli(tmp_path, ["eval", str(model), "--threads", "1", "--out", str(out)])
    assert again.returncode == 2
    assert "already exist" in again.stderr and "Traceback" not in again.stderr
    bad = run_cli(tmp_path, ["eval", str(tmp_path / "cli.py"), "--out", str(tmp_path / "x")])
    assert bad.returncode == 1
    assert bad.stderr.strip().count("\n") == 0 and "is not an ONNX model" in bad.stderr


def test_eval_cli_records_the_limit_only_where_it_left_images_out(tmp_path):
    # The synthetic test set has 200 images; one model file per run, so that runs merge.
    runs = {"full": [], "cut": ["--limit", "150"], "above": ["--limit", "100000"],
            "all": ["--limit", "200"]}
    docs = {}
    for name, limit in runs.items():
        model = make_model(tmp_path / f"{name}.onnx")
        proc = run_cli(tmp_path, ["eval", str(model), "--threads", "1", "--quiet", *limit,
                                  "--out", str(tmp_path / name)])
        assert proc.returncode == 0, proc.stderr
        docs[name] = json.loads((tmp_path / name / "results.json").read_text())
        assert ("recorded as a full evaluation" in proc.stderr) == (name in ("above", "all"))
    assert docs["cut"]["limit"] == 150 and docs["cut"]["models"][0]["n_images"] == 150
    for name in ("full", "above", "all"):
        assert "limit" not in docs[name] and docs[name]["models"][0]["n_images"] == 200
    merged = run_cli(tmp_path, ["merge", *(str(tmp_path / n) for n in ("full", "above", "all")),
                                "--out", str(tmp_path / "merged")])
    assert merged.returncode == 0, merged.stderr
    mixed = run_cli(tmp_path, ["merge", str(tmp_path / "above"), str(tmp_path / "cut"),
                               "--out", str(tmp_path / "mixed")])
    assert mixed.returncode == 1 and "'limit'" in mixed.stderr


def test_eval_cli_names_the_models_in_a_directory(tmp_path):
    (tmp_path / "models").mkdir()
    for name in ("b", "a", "c", "d"):
        make_model(tmp_path / "models" / f"{name}.onnx")
    proc = run_cli(tmp_path, ["eval", str(tmp_path / "models"), "--out", str(tmp_path / "r")])
    assert proc.returncode == 1 and proc.stderr.strip().count("\n") == 0
    folder = tmp_path / "models"
    assert (f"{folder} is a directory, not a model file; give the .onnx files in it, e.g. "
            f"{folder}/*.onnx: {folder}/a.onnx, {folder}/b.onnx, {folder}/c.onnx (and 1 more)"
            ) in proc.stderr


@pytest.mark.realdata
def test_eval_cli_on_real_data_without_torch(tmp_path, real_data_root):
    model = make_model(tmp_path / "corner.onnx", dataset=None)
    proc = run_cli(tmp_path, ["eval", str(model), "--dataset", "fashion-mnist", "--limit",
                              "500", "--backgrounds", "border,board", "--threads", "1",
                              "--data-root", str(real_data_root), "--out", str(tmp_path / "r")],
                   synthetic=False)
    assert proc.returncode == 0, proc.stderr
    [entry] = json.loads((tmp_path / "r" / "results.json").read_text())["models"]
    from bgbench.data import load_numpy

    labels = load_numpy("fashion-mnist", "test", real_data_root)[1][:500]
    assert entry["accuracy"]["border"] == pytest.approx(np.mean(labels == 1))
    assert entry["accuracy"]["board"] == pytest.approx(np.mean(labels == 0))
