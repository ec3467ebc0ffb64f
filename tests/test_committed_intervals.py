"""The committed results carry, or are given, the Wilson interval of every accuracy.

Most committed models were evaluated before bgbench kept intervals and per-image results;
their intervals follow from their counts. Both the committed CSVs (once they hold the
columns) and what ``merge_results`` writes from them are checked against scipy's Wilson
interval, and the report must show an interval for every accuracy of every model.
"""

from __future__ import annotations

import csv
import re
from pathlib import Path

import pytest
from scipy import stats as sps

from bgbench.harness.results import merge_results
from bgbench.report import load_entries
from bgbench.report.paper import BACKGROUND_NAMES
from bgbench.report.tables import model_table

ROOT = Path(__file__).resolve().parents[1]
# Every committed results folder: the full preset, the rows of the step `epochs`, faithful,
# the ladder and each searched ladder step.
DIRS = [d for d in (ROOT / "results", *(ROOT / "results" / name for name in
                                        ("epochs", "faithful", "ladder")),
                    *sorted((ROOT / "results" / "ladder-searched").glob("*")))
        if (d / "results.csv").is_file()]


def check_rows(path: Path) -> int:
    rows = list(csv.DictReader(path.open(encoding="utf-8")))
    for r in rows:
        ci = sps.binomtest(int(r["n_correct"]), int(r["n_images"])).proportion_ci(
            method="wilson")
        assert (float(r["ci_low"]), float(r["ci_high"])) == pytest.approx(
            (ci.low, ci.high), abs=1e-12), (path, r["model"], r["test_set"], r["parameter"])
    return len(rows)


@pytest.mark.parametrize("directory", DIRS, ids=lambda d: str(d.relative_to(ROOT)))
def test_every_committed_accuracy_row_has_its_wilson_interval(directory, tmp_path):
    header = next(csv.reader((directory / "results.csv").open(encoding="utf-8")))
    if "ci_low" in header:
        assert check_rows(directory / "results.csv") > 0
    merge_results([directory], tmp_path)
    n = check_rows(tmp_path / "results.csv")
    assert n == sum(1 for _ in (directory / "results.csv").open(encoding="utf-8")) - 1


def test_the_report_shows_an_interval_for_every_accuracy_of_every_model():
    entries, _ = load_entries(DIRS)
    lines = model_table(entries).splitlines()[2:]
    assert len(lines) == len(entries)
    for entry, line in zip(entries, lines, strict=True):
        cells = [c.strip() for c in line.strip("|").split("|")]
        for key, cell in zip(("clean", *BACKGROUND_NAMES), cells[6:13], strict=True):
            k = round(entry["accuracy"][key] * entry["n_images"])
            ci = sps.binomtest(k, entry["n_images"]).proportion_ci(method="wilson")
            match = re.fullmatch(r"([0-9.]+) \(([0-9.]+)–([0-9.]+)\)", cell)
            assert match, (entry["model"], key, cell)
            assert [float(x) for x in match.groups()] == pytest.approx(
                [100 * entry["accuracy"][key], 100 * ci.low, 100 * ci.high], abs=0.051)
