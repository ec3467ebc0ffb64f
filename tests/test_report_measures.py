"""The report's intervals, spread split, paired marks, flip rates, calibration and confusion."""

from __future__ import annotations

import numpy as np
import pytest
from test_harness import synthetic_data
from test_measures import make_old
from test_report import tagged_model

from bgbench.harness import TestSuite, evaluate, write_results
from bgbench.harness.bits import read_bits
from bgbench.harness.pairing import pair
from bgbench.report import report_markdown, write_report
from bgbench.report.paper import BACKGROUND_NAMES


def weights(seed: int, shift: float) -> np.ndarray:
    w = (0.05 * np.random.default_rng(seed).normal(size=(32 * 32, 10))).astype(np.float32)
    w[:, 3:] -= shift
    return w


@pytest.fixture
def measured(tmp_path):
    images, labels = synthetic_data()
    suites = {"mnist": TestSuite("mnist", images, labels, threads=1)}
    models = [tagged_model(tmp_path / f"{m}{s}.onnx", "mnist", m, s, weights(10 * s + i, 0.01))
              for i, m in enumerate(("traditional", "proposal", "truemask")) for s in (0, 1)]
    results = evaluate(models, threads=1, suites=suites)
    write_results(tmp_path / "r", results)
    return tmp_path / "r", results


def row(text: str, start: str) -> list[str]:
    line = next(ln for ln in text.splitlines() if ln.startswith(start))
    return [c.strip() for c in line.strip("|").split("|")]


def test_paired_marks_are_holm_corrected_mcnemar_per_seed(measured):
    r, results = measured
    text = report_markdown([r])
    bits = read_bits(r)
    by = {(res.method, res.metadata["bgbench.seed"]): bits[res.model] for res in results}
    for method, baseline in (("proposal", "traditional"), ("truemask", "traditional"),
                             ("proposal", "truemask")):
        for seed in ("0", "1"):
            paired = {p.label: p for p in pair(by[(method, seed)], by[(baseline, seed)])}
            title = {"proposal": "Proposal", "truemask": "True mask"}[method]
            cells = row(text, f"| MNIST {title} − "
                        f"{'Traditional' if baseline == 'traditional' else 'True mask'}, seed {seed}")
            want = [f"{100 * paired[c].difference:+.1f}{'*' if paired[c].significant else ''}"
                    for c in ("clean", *BACKGROUND_NAMES)]
            assert cells[1:8] == want
            assert cells[8] == f"{sum(p.significant for p in paired.values())} of {len(paired)}"
    # Noise background is not evaluated, and truemask is only the proposal's baseline.
    assert "True mask − Proposal" not in text and "Noise background −" not in text


def test_flip_and_calibration_tables_are_means_over_measured_models(measured):
    r, results = measured
    text = report_markdown([r])
    proposal = [res for res in results if res.method == "proposal"]
    cells = row(text.split("## Flip rate")[1], "| MNIST Proposal (2 models) | ")
    flips = [np.mean([res.test_sets[1 + i].measures.flip_rate for res in proposal])
             for i in range(6)]
    assert cells[1:7] == [f"{100 * f:.1f}" for f in flips]
    assert cells[7] == f"{100 * np.mean(flips):.1f}"
    cal = row(text, "| MNIST Proposal (2 models, logits) |")
    clean_ece = np.mean([res.test_sets[0].measures.calibration.ece for res in proposal])
    assert cal[1] == f"{100 * clean_ece:.1f}"
    assert "![confusion, MNIST](figures/confusion-mnist.png)" in text


def test_confusion_figure_is_drawn(measured, tmp_path):
    r, _ = measured
    out = write_report([r], tmp_path / "rep" / "report.md", note=lambda _: None)
    png = out.parent / "figures" / "confusion-mnist.png"
    assert png.read_bytes()[:4] == b"\x89PNG"


def test_older_results_get_intervals_and_are_named_where_a_measure_is_missing(measured):
    r, results = measured
    make_old(r)
    text = report_markdown([r])
    assert "Not paired, for want of per-image results" in text
    assert "MNIST Proposal − Traditional" in text.split("Not paired")[1]
    assert "No model of these results measured it" in text
    assert "Not measured for any model of these results." in text
    assert "confusion-mnist.png" not in text
    # Intervals, from the counts, for every model.
    first = results[0]
    low, high = first.test_sets[0].interval
    assert f"{100 * first.accuracy['clean']:.1f} ({100 * low:.1f}–{100 * high:.1f})" in text


def test_spread_splits_seed_and_binomial_parts(measured):
    r, results = measured
    text = report_markdown([r])
    cells = row(text.split("## Spread")[1], "| MNIST Proposal (2 models) | ")
    acc = [res.accuracy["stripes"] for res in results if res.method == "proposal"]
    between = np.std([100 * a for a in acc], ddof=1)
    within = np.sqrt(np.mean([a * (1 - a) / len(results[0].test_sets[0].correct)
                              for a in acc])) * 100
    assert cells[2] == f"{between:.2f} / {within:.2f}"
    assert cells[-1].split(" / ")[1].startswith("≤")


def test_a_re_evaluation_listed_after_older_results_supplies_their_measures(measured,
                                                                             tmp_path):
    import shutil

    r, results = measured
    old = tmp_path / "old"
    shutil.copytree(r, old)
    make_old(old)
    text = report_markdown([old, r])
    assert text.count("| `") == len(results)  # each model once in the per-model table
    assert "Not paired" not in text and "No model of these results measured it" not in text
    fresh = report_markdown([r])
    for section in ("## Paired comparisons", "## Flip rate", "## Calibration"):
        assert text.split(section)[1].split("##")[0] == fresh.split(section)[1].split("##")[0]


def test_a_seed_without_its_baseline_is_named_for_that_reason(tmp_path):
    images, labels = synthetic_data()
    suites = {"mnist": TestSuite("mnist", images, labels, threads=1)}
    models = [tagged_model(tmp_path / f"{m}{s}.onnx", "mnist", m, s, weights(10 * s + i, 0.01))
              for i, (m, s) in enumerate((("proposal", 0), ("proposal", 1), ("truemask", 0)))]
    write_results(tmp_path / "r", evaluate(models, threads=1, suites=suites))
    text = report_markdown([tmp_path / "r"])
    assert row(text, "| MNIST Proposal − True mask, seed 0")
    assert ("Not paired, for want of the other model at the same seed: "
            "MNIST Proposal − True mask (seed 1).") in text
    assert "for want of per-image results" not in text
