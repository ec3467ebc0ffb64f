"""The committed results still hold: the published models re-scored, the tables re-rendered.

``results/results.json`` holds the full test-set evaluation and worst-case search of every
model of the full preset (``bgbench eval`` merged with ``bgbench attack``), each model file
(``results/models/``) named with its SHA-256. The seed-0 proposal and traditional models are
evaluated again here on the same 10,000 test images of their dataset (clean, the six
backgrounds, the 20-rate noise sweep and the extended suite), and every count,
``fooled_by_any`` included, must be within ``COUNT_SLACK`` images of the committed one; the
search is run again at its committed budget and seed and every count must be within
``COUNT_SLACK`` too. The README's results table and ``results/report.md`` are rendered again
from the committed results and must be the committed text.

The evaluation takes a few minutes on 2 cores (marker ``published``); the README's test
command and CI run it.
"""

from __future__ import annotations

import difflib
import json
from pathlib import Path

import pytest

from bgbench.attack.protocol import PROTOCOL
from bgbench.extended import NAMES
from bgbench.harness import TestSuite, evaluate
from bgbench.harness.model import file_sha256
from bgbench.report import (
    WorstCaseResults,
    group_entries,
    load_entries,
    readme_results,
    report_markdown,
    with_readme_results,
)

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "results"
# The models re-scored: seed 0 of the paper's two methods, per dataset.
MODELS = [RESULTS / "models" / f"{dataset}-{method}-seed0.onnx"
          for dataset in ("mnist", "fashion-mnist") for method in ("proposal", "traditional")]
# The published results directories, named as the publishing command names them (relative
# to the repository root): results/ (the full preset, searched), results/epochs/ (the
# proposal trained with the ladder step `epochs`'s options, three seeds) and results/faithful/
# (the paper's method as written); results/ladder/ and results/ladder-searched/ (one folder
# per searched step) hold the ablation ladder's intermediate steps.
WORST_CASE_DIRS = [Path("results"), Path("results/faithful")]
RESULT_DIRS = [d for d in (Path("results"), Path("results/epochs"), Path("results/faithful"))
               if (ROOT / d / "results.json").is_file()]
LADDER_DIRS = [d.relative_to(ROOT) for d in (ROOT / "results/ladder",
                                             *sorted((ROOT / "results/ladder-searched").glob("*")))
               if (d / "results.json").is_file()]
REPORT_COMMAND = (f"bgbench report {' '.join(map(str, RESULT_DIRS))}"
                  + (f" --ladder {' '.join(map(str, LADDER_DIRS))}" if LADDER_DIRS else "")
                  + (f" --worst-case {' '.join(map(str, WORST_CASE_DIRS))}"
                     if WORST_CASE_DIRS else "")
                  + " --out results/report.md --force --readme README.md")
# Images whose predicted class may differ between CPUs (logits that tie to rounding); one
# more than this is a wrong committed number.
COUNT_SLACK = 3


def _entries() -> dict[str, dict]:
    doc = json.loads((RESULTS / "results.json").read_text(encoding="utf-8"))
    return {Path(m["model"]).name: m for m in doc["models"]}


def committed_counts(entry: dict) -> dict[str, int]:
    """Correct images per test set (``noise=RATE`` for the sweep) and fooled images, as the
    committed fractions times the test images, rounded."""
    n = entry["n_images"]
    fractions = {**entry["accuracy"],
                 **{f"noise={float(rate)}": acc for rate, acc in entry["noise_sweep"].items()},
                 **(entry.get("extended_accuracy") or {}),
                 "fooled_by_any": entry["fooled_by_any"]}
    return {name: round(value * n) for name, value in fractions.items()}


def count_mismatches(got: dict[str, int], want: dict[str, int]) -> list[str]:
    """One line per count that is missing or differs from ``want`` by more than the slack."""
    return [f"{name}: {got.get(name)} images, results.json says {count}"
            for name, count in want.items()
            if got.get(name) is None or abs(got[name] - count) > COUNT_SLACK]


def _diff(committed: str, rendered: str, path: str) -> str:
    return "".join(difflib.unified_diff(committed.splitlines(keepends=True),
                                        rendered.splitlines(keepends=True),
                                        f"{path} (committed)", f"{path} (from results.json)"))


def test_models_are_published_with_their_results():
    missing = [p.name for p in MODELS if not p.is_file()]
    assert not missing, f"results/models/ lacks {missing}; run scripts/publish_results.sh"
    full = _entries()
    files = sorted((RESULTS / "models").glob("*.onnx"))
    assert sorted(full) == [f.name for f in files], "results/models/ and results.json differ"
    for model in files:
        assert full[model.name]["sha256"] == file_sha256(model), (
            f"{model.name} is not the file results/results.json was computed from")
        assert full[model.name]["n_images"] == 10_000
        assert len(full[model.name]["noise_sweep"]) == 20
        assert set(full[model.name]["extended_accuracy"]) <= set(NAMES)


@pytest.fixture(scope="module")
def suites() -> dict[str, TestSuite]:
    """Test suites shared by the models of one dataset, so each composite is built once."""
    return {}


@pytest.mark.published
@pytest.mark.slow
@pytest.mark.realdata
@pytest.mark.parametrize("model", MODELS, ids=lambda p: p.stem)
def test_model_reproduces_its_committed_counts(model, real_data_root, suites):
    [result] = evaluate(model, noise_sweep=True, data_root=real_data_root, threads=2,
                        suites=suites, suite="extended")
    got = {t.test_set.label: t.n_correct for t in result.test_sets}
    got["fooled_by_any"] = round(result.fooled_by_any * result.test_sets[0].n_images)
    assert len(got) == 1 + 6 + 20 + len(NAMES) + 1
    entry = _entries()[model.name]
    assert result.test_sets[0].n_images == entry["n_images"]
    mismatches = count_mismatches(got, committed_counts(entry))
    assert not mismatches, f"{model.name} no longer gives results/results.json's counts:\n" + (
        "\n".join(mismatches))


def test_every_published_model_is_searched():
    for name, entry in _entries().items():
        assert entry["worst_case"]["n_images"] == entry["n_images"] == 10_000, name
        assert entry["worst_case"]["budget"] == 100, name
        assert entry["worst_case"]["protocol"] == PROTOCOL, name


@pytest.mark.parametrize("folder", [d for d in (Path("results/faithful"), *LADDER_DIRS)
                                    if (ROOT / d / "models").is_dir()],
                         ids=lambda d: d.name)
def test_published_models_are_the_files_their_results_name(folder):
    # Each entry names its model as the folder holds it: models/NAME.onnx.
    doc = json.loads((ROOT / folder / "results.json").read_text(encoding="utf-8"))
    named = {m["model"]: m for m in doc["models"]}
    files = {f"models/{f.name}": f for f in (ROOT / folder / "models").glob("*.onnx")}
    assert sorted(named) == sorted(files), f"{folder}: the models and results.json differ"
    for name, entry in named.items():
        assert entry["sha256"] == file_sha256(files[name]), (
            f"{folder}/{name} is not the file results.json was computed from")
        assert entry["n_images"] == entry["worst_case"]["n_images"] == 10_000
        assert entry["worst_case"]["budget"] == 100
        assert entry["worst_case"]["protocol"] == PROTOCOL, f"{folder}/{name}"


@pytest.mark.published
@pytest.mark.slow
@pytest.mark.realdata
@pytest.mark.parametrize("model", MODELS, ids=lambda p: p.stem)
def test_model_reproduces_its_worst_case_counts(model, real_data_root, suites):
    from bgbench.attack import attack

    committed = _entries()[model.name]["worst_case"]
    [result] = attack(model, budget=committed["budget"], seed=committed["seed"],
                      data_root=real_data_root, threads=2, suites=suites)
    got = result.worst_case.to_json()
    mismatches = count_mismatches(got["n_correct"], committed["n_correct"])
    assert not mismatches, (f"{model.name} no longer gives results/results.json's search counts:\n"
                            + "\n".join(mismatches))


def test_a_count_off_by_more_than_the_slack_is_caught():
    want = committed_counts(_entries()[MODELS[0].name])
    off = dict(want, clean=want["clean"] + COUNT_SLACK + 1)
    assert count_mismatches(off, want) == [
        f"clean: {off['clean']} images, results.json says {want['clean']}"]
    assert count_mismatches(dict(want, clean=want["clean"] - COUNT_SLACK), want) == []


def test_readme_results_table_is_rendered_from_results_json():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    groups = group_entries(load_entries([ROOT / d for d in RESULT_DIRS])[0])
    searched = WorstCaseResults.load([ROOT / d for d in WORST_CASE_DIRS])
    rendered = with_readme_results(readme, readme_results(groups, searched))
    assert rendered == readme, (
        f"README.md's results table is not what the results give; run `{REPORT_COMMAND}`\n"
        + _diff(readme, rendered, "README.md"))


def test_report_is_rendered_from_results_json(monkeypatch):
    # The report names its results directory as given: the publishing command gives `results`.
    monkeypatch.chdir(ROOT)
    committed = (RESULTS / "report.md").read_text(encoding="utf-8")
    rendered = report_markdown(RESULT_DIRS, LADDER_DIRS, WORST_CASE_DIRS)
    assert rendered == committed, (
        f"results/report.md is not what the results give; run `{REPORT_COMMAND}`\n"
        + _diff(committed, rendered, "results/report.md"))
