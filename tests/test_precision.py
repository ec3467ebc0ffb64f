"""Training precision: the option, its record (config.json, options hash, ONNX metadata),
bf16 autocast of the networks with float32 everywhere else, the device check, determinism,
and checkpoints across memory layouts."""

from __future__ import annotations

import hashlib
import json

import pytest
import torch

from bgbench.errors import ParameterError
from bgbench.export import run_provenance
from bgbench.models import MaskUNet, VGGClassifier
from bgbench.provenance import options_sha256
from bgbench.train import make_config, precision, train
from bgbench.train.checkpoint import clone_state, load_state
from bgbench.train.config import UNRECORDED_AT, TrainOptions, resolve
from bgbench.train.data import synthetic
from bgbench.vocab import PRESETS

pytestmark = pytest.mark.usefixtures("one_torch_thread")

TINY = {"epochs": 1, "mask_epochs": 1, "adv_epochs": 1, "batch_size": 32, "train_subset": 0,
        "val_size": 64, "unet_width": 4, "gen_width": 8}
needs_bf16 = pytest.mark.skipif(precision.bf16_support(torch.device("cpu")) is not None,
                                reason="this CPU has no native bfloat16")


@pytest.mark.parametrize("preset", PRESETS)
def test_fp32_leaves_every_presets_options_and_hash_as_before(preset):
    options = resolve(preset).as_dict()
    assert "precision" not in options  # so the dict, and its hash, are the ones before
    assert TrainOptions.from_dict(options).precision == "fp32"
    bf16 = resolve(preset, {"precision": "bf16"}).as_dict()
    assert bf16 == {**options, "precision": "bf16"}
    assert options_sha256(bf16) != options_sha256(options)
    assert TrainOptions.from_dict(bf16).precision == "bf16"


def test_unknown_precision_is_an_error_naming_it():
    with pytest.raises(ParameterError, match="`precision` must be one of fp32, bf16"):
        resolve("quick", {"precision": "fp16"})
    with pytest.raises(ParameterError, match="`precision` must be one of"):
        precision.check_precision("fp16", torch.device("cpu"))


def test_cpu_without_native_bf16_is_an_error_not_a_float32_run(monkeypatch, tmp_path):
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False)
    with pytest.raises(ParameterError, match="no native bfloat16 instructions"):
        precision.check_precision("bf16", torch.device("cpu"))
    precision.check_precision("fp32", torch.device("cpu"))
    config = make_config("synthetic", "traditional", "quick", overrides={**TINY,
                                                                        "precision": "bf16"})
    with pytest.raises(ParameterError, match="`precision` bf16 cannot run on cpu"):
        train(config, tmp_path / "run", tensors=synthetic(128, seed=0))
    assert not (tmp_path / "run").exists()


def test_cuda_without_native_bf16_is_an_error(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: False)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: "Tesla T4")
    with pytest.raises(ParameterError, match="Tesla T4 has no native bfloat16"):
        precision.check_precision("bf16", torch.device("cuda"))


@needs_bf16
def test_bf16_forward_runs_convolutions_in_bf16_and_returns_float32():
    net = MaskUNet(4).to(memory_format=torch.channels_last)
    seen = []
    net.enc1[0].register_forward_hook(lambda module, args, out: seen.append(out.dtype))
    x = synthetic(8, seed=0)[0]
    out = precision.forward(net, x, precision="bf16")
    assert seen == [torch.bfloat16] and out.dtype == torch.float32
    assert precision.forward(net, x).dtype == torch.float32 and seen[-1] == torch.float32
    torch.testing.assert_close(out, net(x), atol=0.05, rtol=0)


def _weights(run):
    return {name: hashlib.sha256(b"".join(t.numpy().tobytes() for _, t in sorted(
        torch.load(run / name, weights_only=True).items()))).hexdigest()
        for name in ("classifier.pt", "mask_generator.pt", "background_generator.pt")
        if (run / name).exists()}


def _bf16_twice_and_fp32(tmp_path, method, option):
    """The weight hashes of three tiny runs of ``method``: ``option`` bf16 in runs a and b,
    fp32 in run fp32."""
    data = synthetic(256, seed=0)
    runs = {}
    for name, value in (("a", "bf16"), ("b", "bf16"), ("fp32", "fp32")):
        config = make_config("synthetic", method, "quick", overrides={**TINY, option: value})
        train(config, tmp_path / name, tensors=data, quiet=True)
        runs[name] = _weights(tmp_path / name)
    return runs


@needs_bf16
def test_bf16_training_is_deterministic_and_keeps_float32_weights(tmp_path):
    runs = _bf16_twice_and_fp32(tmp_path, "proposal", "precision")
    assert runs["a"] == runs["b"]
    assert runs["a"]["classifier.pt"] != runs["fp32"]["classifier.pt"]
    state = torch.load(tmp_path / "a" / "classifier.pt", weights_only=True)
    assert {t.dtype for t in state.values()} == {torch.float32}
    saved = json.loads((tmp_path / "a" / "config.json").read_text())["options"]
    assert saved["precision"] == "bf16"
    assert "precision" not in json.loads((tmp_path / "fp32" / "config.json").read_text()
                                         )["options"]


def test_exported_metadata_records_the_precision(tmp_path):
    (tmp_path / "done.json").write_text(json.dumps({"train_seconds": 1.0}))
    old = {"seed": 0, "preset": "quick", "options": resolve("quick").as_dict()}
    assert run_provenance(tmp_path, old)["precision"] == UNRECORDED_AT["precision"] == "fp32"
    bf16 = {**old, "options": resolve("quick", {"precision": "bf16"}).as_dict()}
    assert run_provenance(tmp_path, bf16)["precision"] == "bf16"


def test_checkpoints_load_whatever_the_layout():
    torch.manual_seed(0)
    trained = VGGClassifier().to(memory_format=torch.channels_last)
    state = clone_state(trained)
    assert all(t.is_contiguous() for t in state.values())
    plain = VGGClassifier()
    load_state(plain, state, "classifier.pt")
    back = VGGClassifier().to(memory_format=torch.channels_last)
    load_state(back, clone_state(plain), "classifier.pt")
    assert back.features[0].weight.is_contiguous(memory_format=torch.channels_last)
    x = synthetic(4, seed=0)[0]
    torch.testing.assert_close(plain(x), trained(x))
    torch.testing.assert_close(back(x), trained(x))


def test_reproduce_passes_the_precision_to_every_training_run(monkeypatch, tmp_path, capsys):
    import bgbench.reproduce
    from bgbench.cli import main

    plans = []
    monkeypatch.setattr(bgbench.reproduce, "reproduce",
                        lambda plan: plans.append(plan) or tmp_path / "report.md")
    assert main(["reproduce", "--out", str(tmp_path), "--precision", "bf16",
                 "--train-args", "--epochs 1"]) == 0
    assert plans[0].train_args == ["--precision", "bf16", "--epochs", "1"]


@pytest.mark.parametrize("preset", PRESETS)
def test_family_precision_is_recorded_only_away_from_fp32(preset):
    options = resolve(preset, {"family_precision": "fp32"}).as_dict()
    assert "family_precision" not in options
    assert TrainOptions.from_dict(options).family_precision == "fp32"
    bf16 = resolve(preset, {"family_precision": "bf16"}).as_dict()
    assert bf16 == {**options, "family_precision": "bf16"}
    assert TrainOptions.from_dict(bf16).family_precision == "bf16"


def test_family_scoring_follows_a_bf16_run_and_its_own_option_otherwise():
    from bgbench.train.steps import scoring_precision

    cases = {("fp32", "fp32"): "fp32", ("fp32", "bf16"): "bf16", ("bf16", "fp32"): "bf16",
             ("bf16", "bf16"): "bf16"}
    for (run, scoring), expected in cases.items():
        opts = resolve("full", {"precision": run, "family_precision": scoring})
        assert scoring_precision(opts) == expected


def test_bf16_family_scoring_without_native_bf16_is_an_error_naming_the_option(
        monkeypatch, tmp_path):
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False)
    overrides = {**TINY, "family_precision": "bf16"}
    # `full` scores in bf16 by default; on such a CPU it stops and names the flag to pass.
    for preset, changes in (("quick", overrides), ("full", TINY)):
        config = make_config("synthetic", "proposal", preset, overrides=changes)
        assert config.options.family_precision == "bf16"
        with pytest.raises(ParameterError, match="`family_precision` bf16 cannot run on cpu.*"
                           "train with `family_precision` fp32 \\(`--family-precision fp32`\\)"):
            train(config, tmp_path / "run", tensors=synthetic(128, seed=0))
        assert not (tmp_path / "run").exists()
    # Without family backgrounds there is no family search, so nothing to refuse.
    config = make_config("synthetic", "proposal", "quick",
                         overrides={**overrides, "family_share": 0.0})
    train(config, tmp_path / "plain", tensors=synthetic(128, seed=0), quiet=True)


@needs_bf16
def test_bf16_family_scoring_scores_in_bf16_and_trains_in_float32(tmp_path):
    from bgbench.train import family_backgrounds

    f = VGGClassifier().to(memory_format=torch.channels_last)
    seen = []
    f.features[0].register_forward_hook(lambda module, args, out: seen.append(out.dtype))
    x, y = synthetic(16, seed=0)[:2]
    m = (x > 0).float()
    g = torch.Generator().manual_seed(0)
    candidates = family_backgrounds.draw_candidates(torch.ones(16, dtype=torch.bool), 32, g, 4,
                                                    ("stripes", "board"), moves=2)
    out = family_backgrounds.hardest(f, x, y, m, candidates, precision="bf16")
    assert seen == [torch.bfloat16] * 6 and out.dtype == torch.float32
    # A run with bf16 scoring repeats itself, records the option, keeps float32 weights and
    # trains another classifier than float32 scoring (through the backgrounds it picks).
    # True masks: the tiny run's learned masks cover whole images, hiding backgrounds.
    runs = _bf16_twice_and_fp32(tmp_path, "truemask", "family_precision")
    assert runs["a"] == runs["b"]
    assert runs["a"]["classifier.pt"] != runs["fp32"]["classifier.pt"]
    state = torch.load(tmp_path / "a" / "classifier.pt", weights_only=True)
    assert {t.dtype for t in state.values()} == {torch.float32}
    saved = json.loads((tmp_path / "a" / "config.json").read_text())["options"]
    assert saved["family_precision"] == "bf16"
