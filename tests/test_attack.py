"""The worst-case search on tiny ONNX models whose answers are known, the CLI, the results
files and their merge, and (on real data) that an input adapter changes nothing."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from test_harness import make_model, run_cli, synthetic_data

from bgbench.attack import attack, attack_predictor
from bgbench.attack import members as mem
from bgbench.attack.search import CHUNK, EXPLORE_SHARE, check_budget, curve
from bgbench.errors import BgbenchError, ParameterError
from bgbench.harness import TestSuite, evaluate, merge_results, read_results, write_results

BUDGET = 12


@pytest.fixture
def suite() -> TestSuite:
    images, labels = synthetic_data()
    return TestSuite("mnist", images, labels, threads=1)


def centre_model(path):
    """Reads only pixel (16, 16), inside every synthetic object: background-invariant."""
    weights = np.zeros((32 * 32, 10), np.float32)
    weights[16 * 32 + 16, :2] = (-1.0, 1.0)
    return make_model(path, weights=weights)


@pytest.mark.parametrize("size", [32, 28])
def test_corner_model_counts_match_an_independent_computation(tmp_path, suite, size):
    # The corner model scores 1 - x00 for class 0 and x00 for class 1 (x00: pixel (0, 0) in
    # [0, 1]), so it answers 1 where x00 > 0.5; (0, 0) is never part of an object. A 28x28
    # model is searched with the families drawn at 28x28 (the native-28 rule).
    [result] = attack(make_model(tmp_path / "corner.onnx", size=size), budget=BUDGET,
                      threads=1, suites={"mnist": suite})
    assert result.size_rule == {32: "paper-32", 28: "native-28"}[size]
    wc = result.worst_case
    labels = suite.labels
    pool = mem.pool(0, size, BUDGET)
    right = np.array([labels == int(bg[0, 0] > 127) for bg in pool.bytes])  # [B, N]
    clean = labels == 0
    assert wc.clean == clean.sum() == result.test_sets[0].n_correct
    for k in curve(BUDGET):
        assert wc.worst_of_k[k] == (clean & right[:k].all(axis=0)).sum(), k
    assert wc.universal["n_correct"] == right.sum(axis=1).min()
    assert wc.universal["pool_index"] == int(np.argmin(right.sum(axis=1)))
    assert all(clean[i] and not right[wc.universal["pool_index"], i]
               for i in wc.universal["fooled_examples"])
    assert len(suite) <= CHUNK
    # One chunk: every image first tries the pool's first members.
    explore = math.ceil(EXPLORE_SHARE * BUDGET)
    assert wc.adaptive <= (clean & right[:explore].all(axis=0)).sum()
    assert wc.adaptive < wc.clean
    assert wc.queries["adaptive_per_image_max"] <= BUDGET
    per_family = {n: f["worst_of_pool_n_correct"] for n, f in wc.per_family.items()}
    for f, name in enumerate(mem.fams.NAMES):
        members = pool.family == f
        if members.any():
            assert per_family[name] == (clean & right[members].all(axis=0)).sum()


def test_invariant_model_keeps_clean_accuracy_everywhere(tmp_path, suite):
    [result] = attack(centre_model(tmp_path / "centre.onnx"), budget=BUDGET, threads=1,
                      suites={"mnist": suite})
    wc = result.worst_case
    assert wc.clean > 0
    assert wc.universal["n_correct"] == wc.adaptive == wc.clean
    assert set(wc.worst_of_k.values()) == {wc.clean}
    # Nothing fools it, so every image right on clean spends the whole budget.
    assert wc.queries["adaptive_per_image_max"] == BUDGET


@pytest.mark.parametrize("budget", [2, 4, 12])
def test_later_chunks_learn_from_earlier_ones_within_the_budget(tmp_path, suite, monkeypatch,
                                                                 budget):
    from bgbench.attack import search as search_module

    monkeypatch.setattr(search_module, "CHUNK", 50)  # 240 images: five chunks
    [result] = attack(make_model(tmp_path / "corner.onnx"), budget=budget, threads=1,
                      suites={"mnist": suite})
    wc = result.worst_case
    clean = suite.labels == 0
    assert wc.queries["adaptive_per_image_max"] <= budget
    assert wc.adaptive <= wc.clean
    # Every image right at the end is right on clean.
    right = wc.correct["worst-case/adaptive"]
    assert not (right & ~clean).any() and right.sum() == wc.adaptive


def test_later_images_try_the_pool_members_that_fooled_their_class_first():
    from bgbench.attack.search import _tail_order

    # Six pool members, four images seen before the chunk (classes 0, 0, 1, 1), the first
    # two tried already: member 5 fooled both class-0 images, member 3 both class-1 images
    # and one class-0 image, member 4 one class-1 image.
    fooled = np.zeros((6, 6), bool)
    fooled[5, [0, 1]] = fooled[3, [0, 2, 3]] = fooled[4, 2] = True
    fooled[:, 4:] = True  # the chunk's own images: never read
    labels = np.array([0, 0, 1, 1, 0, 1])
    clean = np.ones(6, bool)
    order = _tail_order(~fooled, clean, labels, np.array([4, 5]), n_pool=2)
    assert order.tolist() == [[5, 3, 4, 2], [3, 4, 5, 2]]
    # A wrong clean answer is not a background's doing; the first chunk keeps pool order.
    clean[1] = False
    assert _tail_order(~fooled, clean, labels, np.array([4]), 2).tolist() == [[3, 5, 4, 2]]
    assert _tail_order(~fooled, clean, labels, np.array([0, 1]), 2).tolist() == [[2, 3, 4, 5]] * 2


def test_search_is_deterministic_and_reaches_in_process_predictors(tmp_path, suite):
    path = make_model(tmp_path / "corner.onnx")
    a = attack(path, budget=BUDGET, seed=3, threads=1, suites={"mnist": suite})[0].worst_case
    b = attack(path, budget=BUDGET, seed=3, threads=1, suites={"mnist": suite})[0].worst_case
    assert a.to_json() | {"seconds": 0} == b.to_json() | {"seconds": 0}

    def corner(batch):  # the corner model's logits, in numpy
        x00 = batch[:, 0, 0, 0]
        logits = np.full((len(batch), 10), -1.0, np.float32)
        logits[:, 0], logits[:, 1] = 1 - x00, x00
        return logits

    c = attack_predictor(corner, "mnist", budget=BUDGET, seed=3, suites={"mnist": suite})
    assert c.worst_case.to_json() | {"seconds": 0} == a.to_json() | {"seconds": 0}
    assert c.provider == "in-process"


def test_bad_budgets_and_models_are_clear_errors(tmp_path, suite):
    for budget in (1, 0, 2.5, True):
        with pytest.raises(ParameterError, match="`budget` must be an integer of at least 2"):
            check_budget(budget)
    with pytest.raises(BgbenchError, match="does not exist"):
        attack(tmp_path / "missing.onnx", budget=BUDGET, suites={"mnist": suite})


def test_results_files_carry_the_search_and_merge_joins_it(tmp_path, suite):
    path = make_model(tmp_path / "corner.onnx")
    searched = attack(path, budget=BUDGET, threads=1, suites={"mnist": suite})
    evaluated = evaluate(path, threads=1, suites={"mnist": suite})
    write_results(tmp_path / "attack", searched)
    write_results(tmp_path / "eval", evaluated)
    doc = read_results(tmp_path / "attack")
    wc = doc["models"][0]["worst_case"]
    assert {"protocol", "budget", "universal_accuracy", "universal", "worst_of_k",
            "adaptive_accuracy", "queries", "per_family"} <= set(wc)
    assert wc["universal"]["family"] in mem.fams.NAMES
    rows = (tmp_path / "attack" / "results.csv").read_text().splitlines()
    assert sum(",worst-case,worst-of-k," in r for r in rows) == len(curve(BUDGET))

    merge_results([tmp_path / "eval", tmp_path / "attack"], tmp_path / "merged")
    [joined] = read_results(tmp_path / "merged")["models"]
    assert joined["worst_case"] == wc
    assert joined["accuracy"] == read_results(tmp_path / "eval")["models"][0]["accuracy"]
    merged_rows = (tmp_path / "merged" / "results.csv").read_text().splitlines()
    assert sum(",paper,clean," in r for r in merged_rows) == 1
    assert len(merged_rows) == len(rows) + len(
        (tmp_path / "eval" / "results.csv").read_text().splitlines()) - 2

    # The same model searched twice, or a search of other images, is refused.
    with pytest.raises(BgbenchError, match="more than one of the results"):
        merge_results([tmp_path / "attack", tmp_path / "attack"], tmp_path / "twice")
    small = TestSuite("mnist", suite.images[:100], suite.labels[:100], threads=1)
    write_results(tmp_path / "small", attack(path, budget=BUDGET, threads=1,
                                             suites={"mnist": small}))
    with pytest.raises(BgbenchError, match="differ in 'n_images'"):
        merge_results([tmp_path / "eval", tmp_path / "small"], tmp_path / "mixed")


def test_attack_cli_without_torch_writes_and_reports(tmp_path):
    from bgbench.report import report_markdown

    model = make_model(tmp_path / "corner.onnx")
    for out in ("a", "b"):
        done = run_cli(tmp_path, ["attack", str(model), "--budget", "6", "--out", out,
                                  "--quiet"])
        assert done.returncode == 0, done.stderr
    assert "Worst-case backgrounds" in done.stdout and "adaptive" in done.stdout
    first, second = (json.loads((tmp_path / d / "results.json").read_text())["models"][0]
                     ["worst_case"] for d in ("a", "b"))
    assert first | {"seconds": 0} == second | {"seconds": 0}
    again = run_cli(tmp_path, ["attack", str(model), "--out", "a"])
    assert again.returncode == 2 and "already exist" in again.stderr
    bad = run_cli(tmp_path, ["attack", str(model), "--budget", "1", "--out", "c"])
    assert bad.returncode == 2 and "--budget must be an integer" in bad.stderr
    done = run_cli(tmp_path, ["eval", str(model), "--out", "e", "--quiet"])
    assert done.returncode == 0, done.stderr
    done = run_cli(tmp_path, ["merge", "e", "a", "--out", "m"])
    assert done.returncode == 0, done.stderr
    text = report_markdown([tmp_path / "m"], worst_case_dirs=[tmp_path / "m"])
    assert "## Worst-case backgrounds" in text and "universal worst background" in text


@pytest.mark.realdata
@pytest.mark.parametrize("name", ["nhwc", "uint8", "flat"])
def test_adapted_model_gets_the_same_counts(tmp_path, name, real_data_root):
    from test_harness_conventions import ADAPTERS, PUBLISHED, adapted_model

    from bgbench.data import load_numpy

    images, labels = load_numpy("mnist", "test", real_data_root)
    suite = TestSuite("mnist", images[:200], labels[:200], threads=2)
    [original] = attack(PUBLISHED, budget=10, threads=2, suites={"mnist": suite})
    [adapted] = attack(adapted_model(tmp_path, name), dataset="mnist", budget=10, threads=2,
                       suites={"mnist": suite}, **ADAPTERS[name][4])
    a, b = original.worst_case.to_json()["n_correct"], adapted.worst_case.to_json()["n_correct"]
    assert a.keys() == b.keys()
    assert all(abs(a[k] - b[k]) <= 2 for k in a), (a, b)
