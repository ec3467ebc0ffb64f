"""The README's results: the table and wall times ``readme_results`` renders, spliced between
the README's ``README_BEGIN`` and ``README_END`` markers."""

from __future__ import annotations

import os
import statistics
from pathlib import Path

from bgbench.errors import BgbenchError
from bgbench.fileio import write_text
from bgbench.report.grouping import Group, WorstCaseResults, group_entries, group_title, load_entries, mean_sd
from bgbench.report.paper import DATASET_TITLES, paper_average
from bgbench.report.tables import extended_cell, extended_comparison, extended_short_note, wall_times
from bgbench.tables import MISSING, markdown_table

# The README's generated results (table and wall times) sit between these two lines.
README_BEGIN = "<!-- results-table:begin -->"
README_END = "<!-- results-table:end -->"


def readme_extended(groups: list[Group]) -> str | None:
    """The README's extended-suite summary: per method and dataset, the background and
    photometric averages and the worst set, mean over the models evaluated with it; then
    ``extended_comparison``. None where no model was evaluated with the extended suite."""
    from bgbench.extended import NAMES

    datasets = [d for d in DATASET_TITLES if any(g.dataset == d for g in groups)]
    header = ["method"]
    for d in datasets:
        header += [f"{DATASET_TITLES[d]}: extended backgrounds", "photometric", "worst set"]
    rows = []
    for method, preset in dict.fromkeys((g.method, g.preset) for g in groups):
        by_dataset = {g.dataset: g for g in groups if (g.method, g.preset) == (method, preset)}
        if not any(g.extended("background_average") for g in by_dataset.values()):
            continue
        row = [group_title(next(iter(by_dataset.values())), groups, method)]
        for d in datasets:
            g = by_dataset.get(d)
            if g is None or not g.extended("background_average"):
                row += [MISSING] * 3
                continue
            worst = min((n for n in NAMES if g.extended(n)),
                        key=lambda name: statistics.fmean(g.extended(name)))
            row += [extended_cell(g, "background_average", g.n_extended),
                    extended_cell(g, "photometric_average", g.n_extended),
                    f"{worst} {statistics.fmean(g.extended(worst)):.1f}"]
        rows.append(row)
    if not rows:
        return None
    comparison = extended_comparison(groups)
    note = extended_short_note(groups).strip()
    return (markdown_table(header, rows) + (f"\n\n{note}" if note else "")
            + (f"\n\n{comparison}" if comparison else ""))


def readme_results(groups: list[Group], worst_case: WorstCaseResults | None = None) -> str:
    """The README's results: one row per method (and preset) with, per dataset, the
    six-background average (the paper's in brackets), clean accuracy, gap and worst
    background, mean ± sd over seeds, and with ``worst_case`` the adaptive worst-case
    accuracy; then the training wall times (Markdown)."""
    from bgbench.attack.report import readme_cell, readme_note

    worst_case = worst_case or WorstCaseResults([], [])
    datasets = [d for d in DATASET_TITLES if any(g.dataset == d for g in groups)]
    header = ["method", "seeds"]
    for d in datasets:
        header += [f"{DATASET_TITLES[d]}: six-bg average (paper)", "clean", "gap", "worst bg"]
        header += ["worst case"] if worst_case.groups else []
    rows = []
    for method, preset in dict.fromkeys((g.method, g.preset) for g in groups):
        by_dataset = {g.dataset: g for g in groups if (g.method, g.preset) == (method, preset)}
        seeds = [len(by_dataset[d].entries) if d in by_dataset else 0 for d in datasets]
        # One count where every dataset has as many seeds, else one per dataset.
        row = [group_title(next(iter(by_dataset.values())), groups, method),
               str(seeds[0]) if len(set(seeds)) == 1 else " / ".join(map(str, seeds))]
        for d in datasets:
            g = by_dataset.get(d)
            if g is None:
                row += [MISSING] * (5 if worst_case.groups else 4)
                continue
            paper = paper_average(d, method)
            average = mean_sd(g.values("average"))
            row += [average + (f" ({paper:.1f})" if paper is not None else "")]
            row += [mean_sd(g.values(k)) for k in ("clean", "gap", "worst")]
            if worst_case.groups:
                row.append(readme_cell(worst_case.find(g), len(g.entries)))
        rows.append(row)
    extended = readme_extended(groups)
    extended_text = ("\n\nbgbench's extended suite (grey, smooth and photometric test sets, "
                     "docs/extended-suite.md), mean ± sd over the same models:\n\n"
                     f"{extended}") if extended else ""
    if worst_case.groups:
        extended_text = f"\n\n{readme_note(worst_case.groups)}" + extended_text
    return markdown_table(header, rows) + extended_text + "\n\n" + wall_times(groups)


def with_readme_results(text: str, results: str, source: str = "README.md") -> str:
    """``text`` (a README) with ``results`` in place of what lies between ``README_BEGIN`` and
    ``README_END``; a clear error unless each marker is there once, in that order."""
    counts = {m: text.count(m) for m in (README_BEGIN, README_END)}
    if set(counts.values()) != {1} or text.index(README_BEGIN) > text.index(README_END):
        raise BgbenchError(f"{source} must hold the line {README_BEGIN} and, after it, the line "
                           f"{README_END}, once each (found {counts[README_BEGIN]} and "
                           f"{counts[README_END]}); put them around its results table")
    start = text.index(README_BEGIN) + len(README_BEGIN)
    return f"{text[:start]}\n{results}\n{text[text.index(README_END):]}"


def update_readme(readme: str | os.PathLike, results_dirs: list[str | os.PathLike],
                  worst_case_dirs: list[str | os.PathLike] = ()) -> Path:
    """Put ``readme_results`` of the results between the markers of ``readme`` (atomically);
    returns the README's path."""
    readme = Path(readme)
    try:
        text = readme.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise BgbenchError(f"{readme} does not exist; pass the README to update") from None
    entries, _ = load_entries(list(results_dirs))
    results = readme_results(group_entries(entries), WorstCaseResults.load(worst_case_dirs))
    write_text(readme, with_readme_results(text, results, str(readme)))
    return readme
