"""The report: tables beside the paper's numbers, figures, and clear refusals."""

from __future__ import annotations

import re

import numpy as np
import onnx
import pytest
from test_harness import make_model, synthetic_data

from bgbench.errors import BgbenchError
from bgbench.harness import TestSuite, evaluate, write_results
from bgbench.report import PAPER_TABLE1, write_report


def tagged_model(path, dataset: str, method: str, seed: int, weights=None):
    make_model(path, dataset=dataset, weights=weights)
    model = onnx.load(str(path))
    onnx.helper.set_model_props(model, {"bgbench.dataset": dataset, "bgbench.method": method,
                                        "bgbench.input_size": "32", "bgbench.seed": str(seed),
                                        "bgbench.run": f"{dataset}-{method}-seed{seed}"})
    onnx.save(model, str(path))
    return path


@pytest.fixture
def results_dirs(tmp_path):
    images, labels = synthetic_data()
    suites = {d: TestSuite(d, images, labels, threads=1) for d in ("mnist", "fashion-mnist")}
    rng = np.random.default_rng(0)
    models = [tagged_model(tmp_path / f"p{s}.onnx", "fashion-mnist", "proposal", s,
                           rng.normal(size=(1024, 10)).astype(np.float32)) for s in (0, 1)]
    models.append(tagged_model(tmp_path / "t.onnx", "mnist", "traditional", 0))
    first = evaluate(models[:2], noise_sweep=True, threads=1, suites=suites)
    second = evaluate(models[2:], threads=1, suites=suites)
    write_results(tmp_path / "r1", first)
    write_results(tmp_path / "r2", second)
    return tmp_path / "r1", tmp_path / "r2", first, second


def test_report_tables_and_figures(tmp_path, results_dirs):
    r1, r2, first, second = results_dirs
    out = write_report([r1, r2], tmp_path / "rep" / "report.md")
    text = out.read_text()
    # Table 1: the paper's Fashion-MNIST proposal row, and ours with mean ± sd over two seeds.
    paper = PAPER_TABLE1[("fashion-mnist", "proposal")]
    assert "| Proposal: paper | " + " | ".join(f"{p:.1f}" for p in paper) in text
    ours = [100 * r.accuracy["stripes"] for r in first]
    mean, sd = np.mean(ours), np.std(ours, ddof=1)
    row = next(ln for ln in text.splitlines() if ln.startswith("| Proposal: ours (2 models)"))
    assert row.split(" | ")[1] == f"{mean:.1f} ± {sd:.1f}"
    diff_row = next(ln for ln in text.splitlines() if ln.startswith("| Proposal: ours − paper"))
    assert diff_row.split(" | ")[1] == f"{mean - paper[0]:+.1f}"
    # MNIST traditional: one model, so a plain number.
    trad = next(ln for ln in text.splitlines() if ln.startswith("| Traditional: ours (1 model)"))
    assert trad.split(" | ")[-4] == f"{100 * second[0].clean:.1f}"
    gap = 100 * second[0].clean - 100 * second[0].background_average
    assert trad.split(" | ")[-3] == f"{gap:.1f}"
    # Table 3 has the proposal and the paper's 59.8; the ablations are not evaluated.
    avg = np.mean([100 * r.background_average for r in first])
    assert re.search(rf"\| Proposal \| {avg:.1f} ± [0-9.]+ \| 59.8 \| {avg - 59.8:+.1f} \|", text)
    assert "| True mask | – | 72.8 | – |" in text
    assert "| noise rate |" in text
    for fig in ("gallery.png", "noise_sweep.png"):
        path = out.parent / "figures" / fig
        assert path.stat().st_size < 300_000 and path.read_bytes()[:4] == b"\x89PNG"
    assert "No proposal run directory was found" in text


def test_report_refuses_overwrite_and_bad_input(tmp_path, results_dirs):
    r1, *_ = results_dirs
    out = write_report([r1], tmp_path / "report.md")
    with pytest.raises(BgbenchError, match="--force"):
        write_report([r1], out)
    write_report([r1], out, force=True)
    with pytest.raises(BgbenchError, match="does not exist"):
        write_report([tmp_path / "nowhere"], tmp_path / "x.md")
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "results.json").write_text("{not json")
    with pytest.raises(BgbenchError, match="not valid JSON"):
        write_report([tmp_path / "bad"], tmp_path / "y.md")
