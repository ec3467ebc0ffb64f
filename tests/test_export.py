"""ONNX export: one self-contained file, the contract's metadata, and parity with PyTorch."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest

torch = pytest.importorskip("torch")

from bgbench.errors import BgbenchError, ParameterError  # noqa: E402
from bgbench.export import build_metadata, export_model, export_run, to_onnx  # noqa: E402


def tiny_classifier(input_size: int = 32, seed: int = 0) -> torch.nn.Module:
    """VGG-like: two conv blocks, dense head; small enough to train in a second."""
    torch.manual_seed(seed)
    flat = 8 * (input_size // 4) ** 2
    return torch.nn.Sequential(
        torch.nn.Conv2d(1, 4, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
        torch.nn.Conv2d(4, 8, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
        torch.nn.Flatten(), torch.nn.Linear(flat, 16), torch.nn.ReLU(), torch.nn.Linear(16, 10))


def data(n: int = 300, size: int = 32, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Images whose class is the row band holding a bright bar, so a few steps learn it."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 10, n)
    images = rng.uniform(0, 0.2, (n, 1, size, size)).astype(np.float32)
    for i, label in enumerate(labels):
        row = 2 + int(label) * (size - 4) // 10
        images[i, 0, row:row + 2, 4:-4] = 1.0
    return images, labels


def trained_classifier(size: int = 32) -> torch.nn.Module:
    model = tiny_classifier(size)
    images, labels = data(size=size)
    x, y = torch.from_numpy(images), torch.from_numpy(labels)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(30):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
    model.eval()
    with torch.inference_mode():
        assert (model(x).argmax(1) == y).float().mean() > 0.5  # it did learn something
    return model


@pytest.mark.parametrize("size", [32, 28])
def test_export_parity_on_a_trained_model(tmp_path, size):
    import onnxruntime as ort

    from bgbench.harness import inspect_model

    model = trained_classifier(size)
    images, _ = data(200, size=size, seed=1)
    meta = build_metadata("mnist", "traditional", size, {"seed": 3})
    path = tmp_path / "model.onnx"
    report = export_model(model, path, images=images, metadata=meta)
    assert report.max_abs_diff <= 1e-4 and report.n_images == 200
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.onnx"]  # no .onnx.data

    proto = onnx.load(str(path))
    onnx.checker.check_model(proto)
    assert proto.opset_import[0].version == 18
    props = {p.key: p.value for p in proto.metadata_props}
    for key in ("dataset", "method", "input_size", "version", "git_commit", "seed"):
        assert props[f"bgbench.{key}"], key
    assert props["bgbench.input_size"] == str(size) and props["bgbench.seed"] == "3"
    info = inspect_model(path)
    assert (info.input_name, info.output_name, info.input_size) == ("images", "logits", size)

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    fresh, _ = data(7, size=size, seed=2)  # a batch size the export never saw
    with torch.inference_mode():
        expected = model(torch.from_numpy(fresh)).numpy()
    np.testing.assert_allclose(session.run(["logits"], {"images": fresh})[0], expected,
                               atol=1e-4)


@pytest.mark.parametrize("size", [32, 28])
def test_parity_images_are_the_test_sets_a_model_of_that_size_sees(monkeypatch, size):
    import bgbench.data
    from bgbench import backgrounds as bgs
    from bgbench.export import parity_images
    from bgbench.harness import sizes

    rng = np.random.default_rng(0)
    raw = np.zeros((24, 28, 28), np.uint8)
    raw[:, 9:19, 11:17] = rng.integers(0, 256, (24, 10, 6))
    monkeypatch.setattr(bgbench.data, "load_numpy", lambda *a, **k: (raw, np.zeros(24)))
    got = parity_images("mnist", 24, size)
    assert got.shape == (24, 1, size, size) and got.dtype == np.float32
    # Half clean, then the six backgrounds in runs of two, each drawn by the size's own rule
    # behind the object of the image as that model sees it.
    clean = sizes.images_at(raw, size)
    names = [None] * 12 + [name for name in bgs.BACKGROUNDS for _ in range(2)]
    for i, name in enumerate(names):
        bg = np.zeros((size, size)) if name is None else sizes.background_at(name, size)
        expected = np.where(bgs.foreground(clean[i:i + 1])[0], bgs.to_float(clean[i]), bg)
        np.testing.assert_array_equal(got[i, 0], expected.astype(np.float32), err_msg=str(name))
    if size == sizes.DATASET_SIZE:  # the native 28x28 rule, not the centre of 32x32 sets
        assert not np.array_equal(got, parity_images("mnist", 24, 32)[..., 2:-2, 2:-2])


def test_refuses_overwrite_and_disagreeing_models(tmp_path, monkeypatch):
    import bgbench.export as export

    model = tiny_classifier()
    images, _ = data(50)
    meta = build_metadata("mnist", "traditional", 32)
    path = tmp_path / "m.onnx"
    path.write_bytes(b"keep me")
    with pytest.raises(ParameterError, match="already exists.*`force=True`"):
        export_model(model, path, images=images, metadata=meta)
    assert path.read_bytes() == b"keep me"

    other = tiny_classifier(seed=1)
    monkeypatch.setattr(export, "to_onnx", lambda m, size=32: to_onnx(other, size))
    with pytest.raises(BgbenchError, match="disagrees with PyTorch.*not writing"):
        export_model(model, tmp_path / "bad.onnx", images=images, metadata=meta)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.onnx"]


def test_export_run_needs_a_finished_run(tmp_path):
    with pytest.raises(BgbenchError, match="no config.json"):
        export_run(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps({"dataset": "mnist"}))
    with pytest.raises(BgbenchError, match="has not finished"):
        export_run(tmp_path)


def finished_run(run_dir, monkeypatch, train_seconds: float = 12.5):
    """A finished run's config.json and done.json; its classifier is ``tiny_classifier``
    and its test images are random, so no training or prepared dataset is needed."""
    import bgbench.data
    import bgbench.train

    config = {"dataset": "mnist", "method": "proposal", "preset": "quick", "seed": 2,
              "options": {"lr": 0.001, "batch_size": 128}, "device": "cpu",
              "git_commit": "abc123"}
    run_dir.mkdir()
    (run_dir / "config.json").write_text(json.dumps(config))
    (run_dir / "done.json").write_text(json.dumps({"train_seconds": train_seconds}))
    monkeypatch.setattr(bgbench.train, "load_classifier",
                        lambda d: (tiny_classifier().eval(), json.loads(
                            (d / "config.json").read_text())))
    rng = np.random.default_rng(0)
    monkeypatch.setattr(bgbench.data, "load_numpy", lambda *a, **k: (
        rng.integers(0, 256, (40, 28, 28), dtype=np.uint8), rng.integers(0, 10, 40)))
    return config


def test_export_run_records_the_training_provenance(tmp_path, monkeypatch):
    from bgbench.provenance import options_sha256

    run_dir = tmp_path / "run-a"
    finished_run(run_dir, monkeypatch)
    report = export_run(run_dir, n_images=20)
    props = {p.key: p.value for p in onnx.load(str(report.path)).metadata_props}
    assert props["bgbench.train_commit"] == "abc123"
    assert props["bgbench.preset"] == "quick" and props["bgbench.seed"] == "2"
    assert props["bgbench.train_seconds"] == "12.5"
    assert props["bgbench.train_device"] == "cpu" and props["bgbench.run"] == "run-a"
    assert props["bgbench.options_sha256"] == options_sha256({"batch_size": 128, "lr": 0.001})
    assert props["bgbench.options_sha256"] != options_sha256({"batch_size": 64, "lr": 0.001})
    # No family share: no trained families recorded.
    assert "bgbench.trained_families" not in props


def test_run_provenance_names_the_families_stage_3_drew():
    from bgbench.export import _trained_families

    assert _trained_families("proposal", {"family_share": 0.3}) == "stripes,board,circles,noise"
    assert _trained_families("truemask", {"family_share": 0.3, "train_families": "grey"}) == "grey"
    assert _trained_families("proposal", {"family_share": 0.0, "train_families": "grey"}) is None
    assert _trained_families("proposal", {}) is None
    # Methods whose stages never draw family backgrounds record none, whatever the options.
    for method in ("traditional", "attention", "noisebg"):
        assert _trained_families(method, {"family_share": 0.5}) is None


def test_only_methods_with_mixed_stage_3_backgrounds_draw_families():
    from bgbench.records import MIXED_BACKGROUND_STAGES
    from bgbench.train.stages import STAGE_BY_NAME
    from bgbench.vocab import FAMILY_METHODS

    mixed = {name for name, stage in STAGE_BY_NAME.items()
             if getattr(stage, "backgrounds", None) == "generator"}
    assert mixed == set(MIXED_BACKGROUND_STAGES)
    assert FAMILY_METHODS == ("proposal", "truemask")


def test_the_report_marks_no_family_for_a_method_that_draws_none():
    from bgbench.attack.report import trained_families

    listed = {"bgbench.trained_families": "stripes,board"}
    assert trained_families([{"method": "proposal", "metadata": listed}]) == {"stripes", "board"}
    assert trained_families([{"method": "traditional", "metadata": listed}]) == set()


def test_options_hash_is_canonical():
    from bgbench.provenance import options_sha256

    digest = options_sha256({"b": [1, 2], "a": 0.5})
    assert digest == options_sha256({"a": 0.5, "b": [1, 2]})
    # The documented canonical form, so other tools can recompute it.
    import hashlib

    assert digest == hashlib.sha256(b'{"a":0.5,"b":[1,2]}').hexdigest()


def test_cli_export_names_flags(tmp_path, monkeypatch, capsys):
    from bgbench.cli import main

    run_dir = tmp_path / "run"
    finished_run(run_dir, monkeypatch)
    assert main(["export", str(run_dir), "--parity-images", "1"]) == 2
    assert "--parity-images must be at least 2" in capsys.readouterr().err
    (run_dir / "model.onnx").write_bytes(b"keep me")
    assert main(["export", str(run_dir), "--parity-images", "20"]) == 2
    err = capsys.readouterr().err
    assert "choose another --out or pass --force" in err and "force=True" not in err
    assert (run_dir / "model.onnx").read_bytes() == b"keep me"
