"""Training on tiny synthetic data: every method end to end, the stages' effects, resume,
run-directory rules and clear errors."""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch
import torch.nn.functional as F

from bgbench.cli import main as cli_main
from bgbench.errors import BgbenchError, ParameterError
from bgbench.models import MaskUNet
from bgbench.ops import composite
from bgbench.train import load_classifier, load_generators, make_config, train
from bgbench.train import trainer as trainer_mod
from bgbench.train.checkpoint import StageCheckpoint
from bgbench.train.data import split, synthetic
from bgbench.train.distributed import Context
from bgbench.train.masks import dilate, otsu_threshold, transform_mask, true_mask
from bgbench.train.stages import ClassifierStage, MaskStage
from bgbench.train.steps import generator_step
from bgbench.vocab import METHODS

# Small enough that every method runs in a few seconds on 2 cores.
TINY = {"epochs": 1, "mask_epochs": 1, "adv_epochs": 1, "local_epochs": 1, "batch_size": 32,
        "train_subset": 0, "val_size": 64, "unet_width": 4, "gen_width": 8, "cc_iterations": 8}



# Tiny tensors: one thread is as fast, and does not stall when the cores are shared.
pytestmark = pytest.mark.usefixtures("one_torch_thread")

@pytest.fixture(scope="module")
def data():
    return synthetic(256, seed=0)


def tiny_config(method: str, **overrides):
    return make_config("synthetic", method, "quick", seed=0, overrides={**TINY, **overrides})


def read_metrics(run):
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


@pytest.mark.parametrize("method", METHODS)
def test_each_method_runs_and_writes_its_files(tmp_path, data, method):
    run = tmp_path / method
    done = train(tiny_config(method), run, quiet=True, tensors=data)
    assert 0.0 <= done["val_accuracy"] <= 1.0
    config = json.loads((run / "config.json").read_text())
    assert config["method"] == method and config["seed"] == 0
    assert config["options"]["batch_size"] == 32 and "git_commit" in config
    assert "torch" in config["package_versions"]
    stages = config["stages"]
    assert [line["stage"] for line in read_metrics(run)] == stages
    for stage in stages:
        assert (run / "checkpoints" / f"{stage}.pt").is_file()
    assert json.loads((run / "done.json").read_text())["stages"].keys() == set(stages)
    model, _ = load_classifier(run)
    assert model(torch.rand(2, 1, 32, 32)).shape == (2, 10)
    masks, backgrounds = load_generators(run)
    assert (masks is not None) == (method in ("proposal", "noisebg"))
    assert (backgrounds is not None) == (method in ("proposal", "truemask"))
    assert (run / "mask_generator.pt").exists() == (masks is not None)
    assert (run / "background_generator.pt").exists() == (backgrounds is not None)


def test_stage3_keeps_the_epoch_the_worst_case_search_scores_best(tmp_path, data):
    # The search scores only the last `select_epochs` epochs, on the first `select_images`
    # validation images; an earlier epoch cannot be kept, however it scores.
    config = make_config("mnist", "truemask", "quick", seed=0, overrides={
        **TINY, "adv_epochs": 3, "select_budget": 4, "select_images": 40, "select_epochs": 2})
    run = tmp_path / "run"
    done = train(config, run, quiet=True, tensors=data)
    lines = [line for line in read_metrics(run) if line["stage"] == "adversarial"]
    assert lines[0]["score"] is None and "val_worst_case_adaptive" not in lines[0]
    searched = lines[1:]
    assert all(line["score"] == line["val_worst_case_adaptive"] for line in searched)
    assert all(line["val_worst_case_adaptive"] <= line["val_worst_case_universal"]
               for line in searched)
    best = max(searched, key=lambda line: line["score"])
    summary = done["stages"]["adversarial"]
    assert (summary["best_epoch"], summary["best_score"]) == (best["epoch"], best["score"])
    # The kept classifier is the one that scored: the same search on it gives its score.
    from bgbench.data.torch_data import unpad
    from bgbench.train.evaluate import worst_case_accuracy
    from bgbench.train.stages import SELECTION_SEARCH_SEED

    model, _ = load_classifier(run)
    parts = split(*data, 64, 0, 0)
    again = worst_case_accuracy(model, "mnist", unpad(parts.x_val[:40]),
                                parts.y_val[:40].numpy(), 4, seed=SELECTION_SEARCH_SEED)
    assert again["worst_case_adaptive"] == pytest.approx(best["score"], abs=1e-6)


def test_stage3_keeps_the_mean_of_its_last_epochs_classifiers(tmp_path, data, monkeypatch):
    saved = {}
    append = trainer_mod.Trainer._append_metrics

    def keep(self, line):
        append(self, line)
        if line["stage"] == "adversarial":
            saved[line["epoch"]] = {k: v.clone() for k, v in
                                    self.models["classifier"].state_dict().items()}

    monkeypatch.setattr(trainer_mod.Trainer, "_append_metrics", keep)
    run = tmp_path / "run"
    done = train(tiny_config("truemask", adv_epochs=3, average_epochs=2), run, quiet=True,
                 tensors=data)
    assert sorted(saved) == [1, 2, 3]
    model, _ = load_classifier(run)
    for key, value in model.state_dict().items():
        torch.testing.assert_close(value, (saved[2][key] + saved[3][key]) / 2)
    summary = done["stages"]["adversarial"]
    assert (summary["best_epoch"], summary["averaged_epochs"]) == (3, 2)
    assert summary["best_score"] == (summary["val_acc"] + summary["val_acc_noise"]) / 2
    # A checkpoint from before averaging existed (no average fields) still loads.
    path = run / "checkpoints" / "adversarial.pt"
    state = torch.load(path, weights_only=True)
    del state["average"], state["averaged"]
    torch.save(state, path)
    assert StageCheckpoint.load(path).averaged == 0
    # More epochs to average than the stage has: it averages them all.
    run = tmp_path / "all"
    done = train(tiny_config("truemask", adv_epochs=2, average_epochs=4), run, quiet=True,
                 tensors=data)
    assert done["stages"]["adversarial"]["averaged_epochs"] == 2


def test_unpad_inverts_the_padded_tensors():
    from bgbench.backgrounds import pad
    from bgbench.data.torch_data import unpad

    images = torch.randint(0, 256, (3, 28, 28), dtype=torch.uint8).numpy()
    x = torch.from_numpy(pad(images)).unsqueeze(1).float().div_(255)
    assert (unpad(x) == images).all()


def test_classifier_loss_goes_down(tmp_path, data):
    run = tmp_path / "run"
    train(tiny_config("traditional", epochs=4, lr=3e-3), run, quiet=True, tensors=data)
    losses = [line["train_loss"] for line in read_metrics(run)]
    assert losses[-1] < 0.7 * losses[0]
    assert read_metrics(run)[-1]["val_acc"] > 0.5  # ten classes: chance is 0.1


def _trainer(tmp_path, data, method, **overrides):
    config = tiny_config(method, **overrides)
    opts = config.options
    parts = split(*data, opts.val_size, opts.train_subset, opts.split_seed)
    return trainer_mod.Trainer(config, tmp_path, parts, Context(), quiet=True)


def test_generator_step_increases_the_classifier_loss(tmp_path, data):
    torch.manual_seed(0)
    t = _trainer(tmp_path, data, "truemask")
    f, fb = t.models["classifier"], t.models["background_generator"]
    x, y = t.data.x_train[:64], t.data.y_train[:64]
    opt_f = torch.optim.Adam(f.parameters(), lr=3e-3)
    for _ in range(30):  # a classifier that knows the classes, so there is a loss to raise
        opt_f.zero_grad()
        F.cross_entropy(f(x), y).backward()
        opt_f.step()
    f.eval()
    m = true_mask(x)
    z = fb.sample_noise(64, torch.Generator().manual_seed(0))

    def loss():
        with torch.no_grad():
            return F.cross_entropy(f(composite(x, m, fb(z))[0]), y).item()

    before = loss()
    opt = torch.optim.Adam(fb.parameters(), lr=1e-2)
    for _ in range(10):
        generator_step(f, fb, opt, x, y, m, z, None, bg_limit=0.5, bg_weight=1.0)
    assert loss() > before


def _epochs(t, stage):
    """Make ``stage`` trainable in trainer ``t``; return (run one epoch by seed, validate)."""
    for model in t.models.values():
        model.requires_grad_(False)
    optimizers = stage.optimizers(t.models, t.opts)
    trained = stage.trained(t.models)

    def epoch(seed):
        return stage.epoch(t.context, trained, optimizers,
                           torch.Generator().manual_seed(seed), stage.name)

    return epoch, lambda: stage.validate(t.context, 1)


def test_mask_stage_drives_the_area_towards_the_limit(tmp_path, data):
    torch.manual_seed(0)
    t = _trainer(tmp_path, data, "proposal", lr=3e-3, mask_lr=5e-3)
    step, _ = _epochs(t, ClassifierStage())
    for epoch in range(4):  # a classifier for the mask to serve
        step(epoch)
    # Start far above the limit a = 0.2, so the test sees the area term at work.
    t.models["mask_generator"] = MaskUNet(4, init_area=0.6).to(memory_format=torch.channels_last)
    step, validate = _epochs(t, MaskStage())
    start = validate()[1]["val_mask_area"]
    for epoch in range(6):
        step(epoch)
    end = validate()[1]
    assert start > 0.55
    assert abs(end["val_mask_area"] - 0.2) < 0.25 * abs(start - 0.2)
    assert end["val_acc_transformed"] > 0.8  # the mask still keeps the objects


# With averaging, the cut falls after the first averaged epoch: the resumed run must carry
# the running mean on from the checkpoint.
@pytest.mark.parametrize("average_epochs", [0, 2])
def test_resume_after_interruption_matches_an_uninterrupted_run(tmp_path, data, monkeypatch,
                                                                average_epochs):
    config = tiny_config("truemask", adv_epochs=2, average_epochs=average_epochs)
    train(config, tmp_path / "full", quiet=True, tensors=data)

    saves = {"n": 0}
    real_save = StageCheckpoint.save

    def crashing_save(self, *args, **kwargs):
        real_save(self, *args, **kwargs)
        saves["n"] += 1
        if saves["n"] == 3:  # after stage 1 (epoch, completion) and one adversarial epoch
            raise KeyboardInterrupt

    monkeypatch.setattr(StageCheckpoint, "save", crashing_save)
    with pytest.raises(KeyboardInterrupt):
        train(config, tmp_path / "cut", quiet=True, tensors=data)
    monkeypatch.setattr(StageCheckpoint, "save", real_save)
    assert not (tmp_path / "cut" / "done.json").exists()
    # A line written after the last checkpoint, as if killed between the two writes.
    with open(tmp_path / "cut" / "metrics.jsonl", "a") as f:
        f.write(json.dumps({"stage": "adversarial", "epoch": 2, "seconds": 1.0}) + "\n")

    train(config, tmp_path / "cut", resume=True, quiet=True, tensors=data)
    full = torch.load(tmp_path / "full" / "classifier.pt", weights_only=True)
    cut = torch.load(tmp_path / "cut" / "classifier.pt", weights_only=True)
    for key in full:
        assert torch.equal(full[key], cut[key]), key
    stages = [(line["stage"], line["epoch"]) for line in read_metrics(tmp_path / "cut")]
    assert stages == [(line["stage"], line["epoch"]) for line in read_metrics(tmp_path / "full")]
    # Resuming a finished run does nothing.
    assert train(config, tmp_path / "cut", resume=True, quiet=True, tensors=data) is None


def test_existing_run_dir_needs_resume_or_force(tmp_path, data):
    config = tiny_config("traditional")
    train(config, tmp_path / "run", quiet=True, tensors=data)
    with pytest.raises(ParameterError, match="pass `resume` .* or `force`"):
        train(config, tmp_path / "run", quiet=True, tensors=data)
    with pytest.raises(ParameterError, match="contradict"):
        train(config, tmp_path / "run", resume=True, force=True, quiet=True, tensors=data)
    other = tiny_config("traditional", lr=0.5)
    with pytest.raises(ParameterError, match="lr: 0.001 -> 0.5"):
        train(other, tmp_path / "run", resume=True, quiet=True, tensors=data)
    (tmp_path / "run" / "stale").write_text("x")
    train(config, tmp_path / "run", force=True, quiet=True, tensors=data)
    assert not (tmp_path / "run" / "stale").exists()


def test_corrupt_files_are_clear_errors(tmp_path, data):
    config = tiny_config("traditional", epochs=2)
    train(config, tmp_path / "run", quiet=True, tensors=data)
    (tmp_path / "run" / "done.json").unlink()
    ckpt = tmp_path / "run" / "checkpoints" / "classifier.pt"
    ckpt.write_bytes(b"not a checkpoint")
    with pytest.raises(BgbenchError, match="classifier.pt is corrupt"):
        train(config, tmp_path / "run", resume=True, quiet=True, tensors=data)
    weights = tmp_path / "run" / "classifier.pt"
    torch.save({"head.weight": torch.zeros(3, 3)}, weights)
    with pytest.raises(BgbenchError, match="classifier.pt does not match"):
        load_classifier(tmp_path / "run")
    weights.unlink()
    with pytest.raises(BgbenchError, match="classifier.pt not found"):
        load_classifier(tmp_path / "run")
    with pytest.raises(BgbenchError, match="config.json not found"):
        load_classifier(tmp_path / "nothing")


@pytest.mark.parametrize(("overrides", "message"), [
    ({"mask_transform": "median"}, "`mask_transform` must be one of"),
    ({"area_limit": 1.5}, "`area_limit` must be at most 1"),
    ({"batch_size": 0}, "`batch_size` must be at least 1"),
    ({"epochs": 2.5}, "`epochs` must be an integer, got 2.5"),
    ({"lr": "fast"}, "`lr` must be a number"),
    ({"learning_rate": 0.1}, "unknown training option `learning_rate`"),
])
def test_bad_options_are_errors_naming_the_parameter(overrides, message):
    with pytest.raises(ParameterError, match=message):
        tiny_config("proposal", **overrides)


def test_batch_larger_than_the_data_is_an_error(tmp_path, data):
    with pytest.raises(ParameterError, match="`batch_size` 512 exceeds"):
        train(tiny_config("traditional", batch_size=512), tmp_path / "r", quiet=True,
              tensors=data)


def test_cli_errors_are_one_line(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("BGBENCH_DATA", str(tmp_path / "empty"))
    base = ["train", "--dataset", "mnist", "--method", "traditional", "--preset", "quick"]
    assert cli_main([*base, "--out", str(tmp_path / "a"), "--lr", "-1"]) == 2
    assert "--lr must be at least 0" in capsys.readouterr().err
    if not torch.cuda.is_available():
        assert cli_main([*base, "--out", str(tmp_path / "a"), "--device", "cuda"]) == 2
        assert "no CUDA GPU" in capsys.readouterr().err
    assert cli_main([*base, "--out", str(tmp_path / "b")]) == 1
    err = capsys.readouterr().err
    assert "bgbench data prepare" in err and "Traceback" not in err
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "config.json").write_text("{}")
    assert cli_main([*base, "--out", str(tmp_path / "c")]) == 2
    assert "already exists" in capsys.readouterr().err


def test_mask_transforms():
    m = torch.rand(3, 1, 32, 32) * 0.3
    m[:, :, 8:20, 8:20] += 0.6
    for name in ("0.5", "otsu", "quantile"):
        t = transform_mask(m, name, 0.2)
        assert set(t.unique().tolist()) <= {0.0, 1.0}
    assert torch.equal(transform_mask(m, "none", 0.2), m)
    assert ((otsu_threshold(m) > 0.25) & (otsu_threshold(m) < 0.6)).all()
    assert torch.equal(transform_mask(m, "otsu", 0.2)[:, :, 8:20, 8:20], torch.ones(3, 1, 12, 12))
    area = transform_mask(m, "quantile", 0.2).mean(dim=(1, 2, 3))
    assert torch.allclose(area, torch.full((3,), 0.2), atol=0.01)


def test_true_mask_is_the_test_protocols_object_region():
    import numpy as np

    from bgbench.backgrounds import foreground

    x, _ = synthetic(8, seed=3)
    want = foreground(x[:, 0].numpy())
    assert np.array_equal(true_mask(x)[:, 0].numpy() > 0, want)
    assert torch.equal(dilate(torch.zeros(1, 1, 5, 5), 2), torch.zeros(1, 1, 5, 5))


def test_every_method_in_the_vocabulary_has_its_stages():
    from bgbench.train.stages import METHOD_STAGES
    from bgbench.vocab import METHODS

    assert tuple(METHOD_STAGES) == METHODS
    for stages in METHOD_STAGES.values():
        names = [stage.name for stage in stages]
        assert len(set(names)) == len(names)  # a stage's name is its checkpoint's file name


def test_presets_differ_from_full_only_where_declared():
    from bgbench.train.config import PRESET_CHANGES, TrainOptions, resolve

    base = dataclasses.asdict(TrainOptions())
    for preset, changes in PRESET_CHANGES.items():
        options = dataclasses.asdict(resolve(preset))
        assert {k for k in base if options[k] != base[k]} == set(changes), preset
    assert resolve("quick", {"epochs": 7, "lr": None}).epochs == 7
    assert resolve("quick", {"lr": 1}).as_dict()["lr"] == 1.0  # floats stay floats in json


def test_paper_preset_is_an_error_naming_full_and_faithful(tmp_path, capsys):
    with pytest.raises(ParameterError, match="'full'.*'faithful'"):
        make_config("synthetic", "traditional", "paper")
    assert cli_main(["train", "--dataset", "mnist", "--method", "traditional", "--preset",
                     "paper", "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert "--preset 'paper' is not a preset" in err and "'full'" in err and "'faithful'" in err
    assert not (tmp_path / "run").exists()


def test_run_dir_recording_preset_paper_loads_and_resumes_as_full(tmp_path, data):
    config = make_config("synthetic", "traditional", "full", seed=0, overrides=TINY)
    run = tmp_path / "run"
    train(config, run, quiet=True, tensors=data)
    record = json.loads((run / "config.json").read_text())
    (run / "config.json").write_text(json.dumps({**record, "preset": "paper"}))
    _, loaded = load_classifier(run)
    assert loaded["preset"] == "full"
    assert train(config, run, resume=True, quiet=True, tensors=data) is None


def test_train_help_shows_every_option_with_each_presets_default(capsys):
    from bgbench.train.config import TrainOptions

    with pytest.raises(SystemExit):
        cli_main(["train", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for name in TrainOptions().as_dict():
        assert "--" + name.replace("_", "-") in text
    assert "shown as quick/full/faithful" in text and "stage-1 classifier epochs" in text
    assert "(2/5/5)" in text and "(none/none/none)" in text


def test_cli_rewords_parameter_errors_as_flags(tmp_path, capsys):
    base = ["train", "--dataset", "mnist", "--method", "traditional", "--out", str(tmp_path)]
    assert cli_main([*base, "--seed", "-1"]) == 2
    assert "--seed must be a non-negative integer, got -1" in capsys.readouterr().err
    assert cli_main([*base, "--epochs", "0"]) == 2
    assert "--epochs must be at least 1, got 0" in capsys.readouterr().err
