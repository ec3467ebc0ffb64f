"""The committed ONNX models in results/models/ still give the committed results.

``results/results.json`` holds the full test-set evaluation of every model of the published
run, with each model file's SHA-256. ``results/check/results.json`` is the same harness on the
first ``CHECK_LIMIT`` test images of the published models. Here those models are evaluated
again on that subset: they must be the files the full results were computed from, match the
subset's counts (to a few images, for floating-point differences between CPUs), and agree
with the full-set accuracies within a sampling tolerance.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bgbench.harness import evaluate
from bgbench.harness.model import file_sha256

RESULTS = Path(__file__).resolve().parents[1] / "results"
MODELS = sorted((RESULTS / "models").glob("*.onnx"))
CHECK_LIMIT = 1000
# Images whose predicted class may differ between CPUs (ties broken by rounding).
COUNT_SLACK = 3
# |accuracy on the first 1000 images - accuracy on all 10,000|: over 4 standard errors of a
# 1000-image sample at 50% accuracy.
SUBSET_TOLERANCE = 0.065


def _entries(path: Path) -> dict[str, dict]:
    doc = json.loads(path.read_text(encoding="utf-8"))
    return {Path(m["model"]).name: m for m in doc["models"]}


def test_models_are_published_with_their_results():
    assert MODELS, f"no ONNX models in {RESULTS / 'models'}"
    full = _entries(RESULTS / "results.json")
    for model in MODELS:
        assert model.name in full, f"{model.name} is not in results/results.json"
        assert full[model.name]["sha256"] == file_sha256(model), (
            f"{model.name} is not the file results/results.json was computed from")
        assert full[model.name]["n_images"] == 10_000


@pytest.mark.parametrize("model", MODELS, ids=lambda p: p.stem)
def test_model_reproduces_its_results_on_a_subset(model, real_data_root):
    full = _entries(RESULTS / "results.json")[model.name]
    check = _entries(RESULTS / "check" / "results.json")[model.name]
    assert check["n_images"] == CHECK_LIMIT
    [result] = evaluate(model, limit=CHECK_LIMIT, data_root=real_data_root, threads=2)
    got = {r.test_set.name: r.n_correct for r in result.test_sets}
    for name, accuracy in check["accuracy"].items():
        want = round(accuracy * CHECK_LIMIT)
        assert abs(got[name] - want) <= COUNT_SLACK, (
            f"{model.name} on {name}: {got[name]} of {CHECK_LIMIT} correct, the committed "
            f"check says {want}")
        assert abs(got[name] / CHECK_LIMIT - full["accuracy"][name]) <= SUBSET_TOLERANCE
