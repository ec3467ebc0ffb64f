"""``bgbench score``: a run's classifier on its validation split or the test set, counted by
the trainer's own accuracy loop."""

from __future__ import annotations

import json

import pytest

from bgbench.attack.families import NAMES
from bgbench.cli import main
from bgbench.train import make_config, train

pytestmark = [pytest.mark.realdata, pytest.mark.usefixtures("one_torch_thread")]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory, real_data_root):
    run = tmp_path_factory.mktemp("score") / "run"
    config = make_config("mnist", "traditional", "quick", overrides={
        "train_subset": 300, "val_size": 200, "epochs": 1, "batch_size": 50})
    done = train(config, run, quiet=True, data_root=str(real_data_root))
    return run, done


def test_clean_validation_accuracy_is_the_trainers(run_dir, capsys):
    run, done = run_dir
    assert main(["score", str(run), "--on", "val"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["n"] == 200 and result["on"] == "val" and result["method"] == "traditional"
    assert result["clean"] == pytest.approx(done["val_accuracy"], abs=1e-4)
    assert set(result) >= {"stripes", "board", "border", "circles", "clock", "random",
                           "background_average"}


def test_test_split_and_limit(run_dir, capsys):
    run, _ = run_dir
    assert main(["score", str(run), "--on", "test", "--limit", "100"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["n"] == 100 and 0.0 <= result["background_average"] <= 1.0
    assert main(["score", str(run), "--limit", "-1"]) == 2
    assert "--limit must be non-negative" in capsys.readouterr().err


def test_scores_are_the_harness_evaluation_of_the_classifier(run_dir, real_data_root):
    """``bgbench score`` on the test split counts what the harness's evaluation of the same
    classifier counts on the same images, on the paper's and the extended sets; the paper's
    are also the accuracies on the reference composites (``backgrounds.apply_reference``)."""
    import numpy as np
    import torch

    from bgbench import backgrounds as bgs
    from bgbench import extended
    from bgbench.data import load_numpy
    from bgbench.harness import evaluate_predictor
    from bgbench.train.evaluate import score_run
    from bgbench.train.run import load_classifier

    run, _ = run_dir
    n = 300
    scored = score_run(run, on="test", limit=n, data_root=real_data_root, suite="extended")
    model, _ = load_classifier(run)

    @torch.no_grad()
    def predict(x: np.ndarray) -> np.ndarray:
        return model(torch.from_numpy(x)).numpy()

    harness = evaluate_predictor(predict, "mnist", batch_size=n, suite="extended",
                                 data_root=real_data_root, limit=n, threads=1)
    assert {k: scored[k] for k in harness.accuracy} == harness.accuracy
    assert {k: scored[k] for k in extended.NAMES} == harness.extended_accuracy
    assert scored["background_average"] == pytest.approx(harness.background_average)

    images, labels = load_numpy("mnist", "test", real_data_root)
    padded = bgs.pad(images[:n])
    for name in bgs.BACKGROUNDS:
        x = bgs.apply_reference(padded, bgs.background(name))
        assert scored[name] == float((predict(x).argmax(1) == labels[:n]).mean()), name


def test_worst_case_search_on_the_validation_images(run_dir, capsys):
    """``--attack-budget`` runs the worst-case search on the same validation images: its
    clean accuracy is the score's, the curve falls with the budget, the adaptive search is
    at most random worst-of-B, and a second run gives the same numbers."""
    run, _ = run_dir
    argv = ["score", str(run), "--on", "val", "--limit", "120", "--attack-budget", "10"]
    assert main(argv) == 0
    first = json.loads(capsys.readouterr().out)
    assert first["n"] == 120 and first["worst_case_budget"] == 10
    assert first["clean"] >= first["worst_case_worst_of_1"] >= first["worst_case_worst_of_10"]
    assert first["worst_case_adaptive"] <= first["worst_case_worst_of_10"]
    assert first["worst_case_universal"] >= first["worst_case_worst_of_10"]
    assert first["worst_case_universal_family"] in NAMES
    assert {f"worst_case_family_{n}" for n in ("stripes", "frame", "grey")} <= set(first)
    assert main(argv) == 0
    assert json.loads(capsys.readouterr().out) == first
    assert main(["score", str(run), "--attack-budget", "-1"]) == 2
    assert "--attack-budget must be non-negative" in capsys.readouterr().err
