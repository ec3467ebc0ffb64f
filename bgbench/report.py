"""``report.md``: our results laid out like the paper's Tables 1-3, with the paper beside them.

Input is one or more results directories written by ``bgbench eval``; models are grouped by
(dataset, method, preset) from their metadata and several seeds of one group are averaged
(mean and standard deviation: robustness varies a lot from seed to seed). A group only
averages like with like: the same test images, test sets and input size. The report's text
is a function of the results alone (``report_markdown``); ``write_report`` adds the figures,
small PNGs under ``figures/`` beside it. ``readme_results`` renders the README's results
table and wall times from the same entries, and ``update_readme`` puts them between the
README's ``README_BEGIN`` and ``README_END`` markers.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bgbench import backgrounds as bgs
from bgbench.errors import BgbenchError
from bgbench.fileio import refuse_overwrite, write_text
from bgbench.tables import MISSING, markdown_table, pct
from bgbench.vocab import PRESET_ALIASES

BACKGROUND_NAMES = tuple(bgs.BACKGROUNDS)
DATASET_TITLES = {"mnist": "MNIST", "fashion-mnist": "Fashion-MNIST"}
METHOD_ORDER = ("traditional", "attention", "proposal", "truemask", "noisebg")
METHOD_TITLES = {"traditional": "Traditional", "attention": "Attention (AG-CNN)",
                 "proposal": "Proposal", "truemask": "True mask", "noisebg": "Noise background"}

# Cruz & Cardoso's Table 1 (the six backgrounds in BACKGROUND_NAMES order, then their average)
# and Table 3 (Fashion-MNIST six-background average), accuracy in %.
PAPER_TABLE1: dict[tuple[str, str], tuple[float, ...]] = {
    ("mnist", "traditional"): (38.0, 24.3, 61.4, 32.9, 19.7, 11.2, 31.2),
    ("mnist", "attention"): (28.1, 26.8, 57.3, 40.1, 29.3, 25.1, 34.5),
    ("mnist", "proposal"): (92.3, 76.8, 93.1, 93.7, 70.8, 86.2, 85.5),
    ("fashion-mnist", "traditional"): (21.3, 24.6, 36.9, 28.5, 29.6, 16.8, 26.7),
    ("fashion-mnist", "attention"): (18.2, 20.1, 51.8, 26.0, 31.8, 36.2, 30.7),
    ("fashion-mnist", "proposal"): (62.9, 61.5, 66.5, 60.9, 60.8, 45.9, 59.8),
}
PAPER_TABLE3: dict[str, float] = {"proposal": 59.8, "truemask": 72.8, "noisebg": 10.0}
# The preset that reads the paper literally; its rows come before the other presets'.
FAITHFUL_PRESET = "faithful"
# The preset that checks the pipeline end to end on a tenth of the data, in minutes.
QUICK_PRESET = "quick"
# The paper's input size: what results.json entries written before the harness recorded
# ``input_size`` and ``size_rule`` were evaluated at.
PAPER_INPUT_SIZE = bgs.SIZE
# The README's generated results (table and wall times) sit between these two lines.
README_BEGIN = "<!-- results-table:begin -->"
README_END = "<!-- results-table:end -->"


@dataclass
class Group:
    """Every evaluated model of one (dataset, method, preset): usually one per seed."""

    dataset: str
    method: str
    preset: str | None
    entries: list[dict[str, Any]]

    def values(self, key: str) -> list[float]:
        """Percentages of ``key`` (a test-set name, ``average``, ``worst``, ``fooled``, or
        ``gap``: clean minus the background average, in points), one per model."""
        if key == "gap":
            return [c - a for c, a in zip(self.values("clean"), self.values("average"),
                                          strict=True)]
        field = {"average": "background_average", "worst": "background_worst",
                 "fooled": "fooled_by_any"}.get(key)
        out = []
        for e in self.entries:
            value = e.get(field) if field else e["accuracy"].get(key)
            if value is not None:
                out.append(100 * value)
        return out

    def extended(self, key: str) -> list[float]:
        """Percentages of an extended-suite set (or ``background_average`` /
        ``photometric_average``), one per model evaluated with ``--suite extended``."""
        out = []
        for e in self.entries:
            value = (e.get(f"extended_{key}") if key.endswith("_average")
                     else (e.get("extended_accuracy") or {}).get(key))
            if value is not None:
                out.append(100 * value)
        return out

    @property
    def input_size(self) -> tuple[int, str]:
        """The input size and size rule its models were scored at (one per group)."""
        return _input_size(self.entries[0])

    def sweep(self) -> dict[float, list[float]]:
        """Percent accuracy per noise rate, one value per model that ran the sweep."""
        out: dict[float, list[float]] = defaultdict(list)
        for e in self.entries:
            for rate, acc in (e.get("noise_sweep") or {}).items():
                out[float(rate)].append(100 * acc)
        return dict(sorted(out.items()))


def load_entries(results_dirs: list[str | os.PathLike]) -> tuple[list[dict[str, Any]],
                                                                  list[dict[str, Any]]]:
    """Model entries of every results.json (a model evaluated twice counts once: the first,
    unless only a later one has the measures of ``bgbench.harness.measures``, which then takes
    the first's place), and docs."""
    from bgbench.harness.results import read_results

    docs, entries, seen = [], [], {}
    for d in results_dirs:
        doc = read_results(d)
        docs.append(doc | {"path": str(Path(d))})
        for e in doc["models"]:
            key = (e.get("sha256"), e.get("dataset"), tuple(sorted(e["accuracy"])),
                   bool(e.get("noise_sweep")))
            if key not in seen:
                seen[key] = len(entries)
                entries.append(e)
            elif e.get("measures") and not entries[seen[key]].get("measures"):
                entries[seen[key]] = e
    if not entries:
        raise BgbenchError("the results hold no models; run `bgbench eval MODEL.onnx` first")
    return entries, docs


def _preset(entry: dict[str, Any]) -> str | None:
    preset = (entry.get("metadata") or {}).get("bgbench.preset")
    return PRESET_ALIASES.get(preset, preset)


def _input_size(entry: dict[str, Any]) -> tuple[int, str]:
    """The entry's input size and size rule."""
    from bgbench.harness.sizes import SIZE_RULES

    size = int(entry.get("input_size", PAPER_INPUT_SIZE))
    return size, entry.get("size_rule", SIZE_RULES.get(size, "no recorded size rule"))


Evaluation = tuple[int, tuple[str, ...], tuple[float, ...], tuple[int, str]]


def _evaluation(entry: dict[str, Any]) -> Evaluation:
    """What a model was scored on: test images, test sets, noise rates, input size."""
    rates = tuple(sorted(float(r) for r in (entry.get("noise_sweep") or {})))
    return entry["n_images"], tuple(sorted(entry["accuracy"])), rates, _input_size(entry)


def _check_comparable(key: tuple[str, str, str | None], entries: list[dict[str, Any]]) -> None:
    """Refuse to average models that were not scored on the same images and test sets."""
    seen = {_evaluation(e): e for e in entries}
    if len(seen) < 2:
        return
    (a, first), (b, second) = list(seen.items())[:2]
    what = ("test images (n_images, so a different limit)" if a[0] != b[0]
            else "test sets" if a[1] != b[1] else "noise rates" if a[2] != b[2]
            else "input sizes")
    raise BgbenchError(
        f"cannot average {key[0]} {key[1]} (preset {key[2]}) models scored on different "
        f"{what}: {first['model']} ({_describe(a)}) and {second['model']} ({_describe(b)}); "
        "evaluate every model the same way (`bgbench eval` with the same limit and "
        "noise sweep) or leave one of the results directories out")


def _describe(evaluation: Evaluation) -> str:
    n, sets, rates, (size, rule) = evaluation
    return (f"{n} images, test sets {', '.join(sets)}, {len(rates)} noise rates, "
            f"{_size_text(size, rule)} input")


def _size_text(size: int, rule: str) -> str:
    return f"{size}x{size} {rule}"


def group_entries(entries: list[dict[str, Any]]) -> list[Group]:
    """Groups in the paper's order (datasets, then methods, the faithful preset first);
    unknown methods by model name. Raises if a group mixes differently evaluated models."""
    groups: dict[tuple[str, str, str | None], list[dict[str, Any]]] = defaultdict(list)
    for e in entries:
        method = e["method"] if e["method"] not in ("", "unknown") else Path(e["model"]).stem
        groups[(e["dataset"], method, _preset(e))].append(e)

    def order(key: tuple[str, str, str | None]) -> tuple[int, int, str, int, str]:
        dataset, method, preset = key
        d = list(DATASET_TITLES).index(dataset) if dataset in DATASET_TITLES else 99
        m = METHOD_ORDER.index(method) if method in METHOD_ORDER else 99
        return d, m, method, preset != FAITHFUL_PRESET, preset or ""

    for key, members in groups.items():
        _check_comparable(key, members)
    return [Group(*key, groups[key]) for key in sorted(groups, key=order)]


def mean_sd(values: list[float]) -> str:
    """``mean ± sd`` of percentages (one value as itself, none as ``MISSING``)."""
    if not values:
        return MISSING
    if len(values) == 1:
        return f"{values[0]:.1f}"
    return f"{statistics.mean(values):.1f} ± {statistics.stdev(values):.1f}"


def _diff(values: list[float], paper: float | None) -> str:
    if not values or paper is None:
        return MISSING
    return f"{statistics.mean(values) - paper:+.1f}"


def _method_title(method: str) -> str:
    return METHOD_TITLES.get(method, f"`{method}`")


def _group_title(group: Group, groups: list[Group], title: str | None = None) -> str:
    """``title`` (default: the method's), with the preset where the groups hold several,
    and the input size where it is not the paper's."""
    title = title or _method_title(group.method)
    if len({g.preset for g in groups}) > 1:
        title += f" [{group.preset or 'no preset'}]"
    size, rule = group.input_size
    if size != PAPER_INPUT_SIZE:
        title += f" ({_size_text(size, rule)})"
    return title


def table1(groups: list[Group]) -> str:
    """Table 1: per dataset, each method's paper row, then ours and the difference per group."""
    cols = [*BACKGROUND_NAMES, "average"]
    parts = []
    for dataset in dict.fromkeys(g.dataset for g in groups):
        rows, shown_paper = [], set()
        for g in (g for g in groups if g.dataset == dataset):
            paper = PAPER_TABLE1.get((dataset, g.method))
            if paper and g.method not in shown_paper:
                shown_paper.add(g.method)
                rows.append([f"{_method_title(g.method)}: paper"] + [f"{p:.1f}" for p in paper]
                            + [""] * 4)
            n = len(g.entries)
            title = _group_title(g, groups)
            rows.append([f"{title}: ours ({n} model{'s' * (n > 1)})"]
                        + [mean_sd(g.values(c)) for c in cols]
                        + [mean_sd(g.values(k)) for k in ("clean", "gap", "worst", "fooled")])
            if paper:
                rows.append([f"{title}: ours − paper"]
                            + [_diff(g.values(c), p) for c, p in zip(cols, paper, strict=True)]
                            + [""] * 4)
        title = DATASET_TITLES.get(dataset, dataset)
        parts.append(f"**{title}**\n\n" + markdown_table(
            ["method", *cols, "clean", "gap", "worst", "fooled by any"], rows))
    return "\n\n".join(parts)


def table2(groups: list[Group]) -> str | None:
    """Table 2: accuracy against the noise rate of the random background (ours only)."""
    swept = [g for g in groups if g.sweep()]
    if not swept:
        return None
    rates = sorted({r for g in swept for r in g.sweep()})
    header = ["noise rate"] + [f"{DATASET_TITLES.get(g.dataset, g.dataset)} "
                               f"{_group_title(g, groups)}" for g in swept]
    rows = [[f"{rate:g}"] + [mean_sd(g.sweep().get(rate, [])) for g in swept]
            for rate in rates]
    return markdown_table(header, rows)


def table3(groups: list[Group]) -> str | None:
    """Table 3: Fashion-MNIST six-background average of the proposal and its ablations."""
    rows = []
    for method, paper in PAPER_TABLE3.items():
        found = [g for g in groups if (g.dataset, g.method) == ("fashion-mnist", method)]
        for title, values in ([(_group_title(g, groups), g.values("average")) for g in found]
                              or [(_method_title(method), [])]):
            rows.append([title, mean_sd(values), f"{paper:.1f}", _diff(values, paper)])
    if all(r[1] == MISSING for r in rows):
        return None
    return markdown_table(["method", "ours", "paper", "ours − paper"], rows)


def extended_table(groups: list[Group]) -> str | None:
    """The extended suite (bgbench's own, not the paper's): each group's accuracy per set and
    the two averages, over the models evaluated with it; None where no model was."""
    from bgbench.extended import BACKGROUND_SETS, PHOTOMETRIC_SETS

    cols = [*BACKGROUND_SETS, "background_average", *PHOTOMETRIC_SETS, "photometric_average"]
    rows = []
    for g in groups:
        n = len(g.extended("background_average"))
        if n:
            rows.append([f"{DATASET_TITLES.get(g.dataset, g.dataset)} "
                         f"{_group_title(g, groups)} ({n} model{'s' * (n > 1)})"]
                        + [mean_sd(g.extended(c)) for c in cols])
    if not rows:
        return None
    header = ["model", *BACKGROUND_SETS, "background average", *PHOTOMETRIC_SETS,
              "photometric average"]
    return markdown_table(header, rows)


def extended_comparison(groups: list[Group]) -> str | None:
    """Per dataset (and preset), the extended-suite sets where the proposal's mean is below
    traditional training's, with both means; None where no dataset has both evaluated."""
    from bgbench.extended import NAMES

    lines = []
    for dataset, preset in dict.fromkeys((g.dataset, g.preset) for g in groups):
        by_method = {g.method: g for g in groups
                     if (g.dataset, g.preset) == (dataset, preset)}
        proposal, traditional = by_method.get("proposal"), by_method.get("traditional")
        if proposal is None or traditional is None:
            continue
        means = {}
        for name in NAMES:
            ours, theirs = proposal.extended(name), traditional.extended(name)
            if ours and theirs:
                means[name] = (statistics.fmean(ours), statistics.fmean(theirs))
        if not means:
            continue
        below = [f"{name} ({a:.1f} vs {b:.1f})" for name, (a, b) in means.items() if a < b]
        title = f"{DATASET_TITLES.get(dataset, dataset)} ({preset or 'no preset'})"
        lines.append(f"- {title}: the proposal's mean is below traditional training's on "
                     + ", ".join(below) if below else
                     f"- {title}: the proposal's mean is at or above traditional training's on "
                     f"all {len(means)} extended sets.")
    return "\n".join(lines) if lines else None


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
        row = [_group_title(next(iter(by_dataset.values())), groups, method)]
        for d in datasets:
            g = by_dataset.get(d)
            if g is None or not g.extended("background_average"):
                row += [MISSING] * 3
                continue
            worst = min(NAMES, key=lambda name: statistics.fmean(g.extended(name)))
            row += [mean_sd(g.extended("background_average")),
                    mean_sd(g.extended("photometric_average")),
                    f"{worst} {statistics.fmean(g.extended(worst)):.1f}"]
        rows.append(row)
    if not rows:
        return None
    comparison = extended_comparison(groups)
    return markdown_table(header, rows) + (f"\n\n{comparison}" if comparison else "")


def model_table(entries: list[dict[str, Any]]) -> str:
    """Every model evaluated, one row each, with how it was run: each accuracy with its 95%
    Wilson interval; an input size other than the paper's 32x32 is shown in bold with its
    size rule."""
    rows = []
    for e in entries:
        meta = e.get("metadata") or {}
        size, rule = _input_size(e)
        rows.append([f"`{Path(e['model']).name}`", e["dataset"], e["method"],
                     _preset(e) or MISSING, meta.get("bgbench.seed", MISSING),
                     str(size) if size == PAPER_INPUT_SIZE else f"**{size}** ({rule})"]
                    + [_interval_cell(e, c) for c in ("clean", *BACKGROUND_NAMES)]
                    + [pct(e["background_average"]), pct(e["fooled_by_any"]),
                       f"{e['provider'].removesuffix('ExecutionProvider')} ×{e['threads']}",
                       f"{e['images_per_second']:.0f}"])
    return markdown_table(["model", "dataset", "method", "preset", "seed", "input", "clean",
                           *BACKGROUND_NAMES, "average", "fooled", "provider", "img/s"], rows)


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
        row = [_group_title(next(iter(by_dataset.values())), groups, method),
               str(seeds[0]) if len(set(seeds)) == 1 else " / ".join(map(str, seeds))]
        for d in datasets:
            g = by_dataset.get(d)
            if g is None:
                row += [MISSING] * (5 if worst_case.groups else 4)
                continue
            paper = _paper_average(d, method)
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


def _paper_average(dataset: str, method: str) -> float | None:
    """The paper's six-background average for ``method`` on ``dataset``, if it gives one."""
    if (dataset, method) in PAPER_TABLE1:
        return PAPER_TABLE1[(dataset, method)][-1]
    return PAPER_TABLE3.get(method) if dataset == "fashion-mnist" else None


def wall_times(groups: list[Group]) -> str:
    """One Markdown line: training minutes per run of each method (and preset) on each
    device, from its models' ``bgbench.train_seconds`` and ``bgbench.train_device``, and the
    total; models without the record are counted, not guessed."""
    seconds: dict[tuple[str, str], list[float]] = defaultdict(list)
    unrecorded = 0
    for g in groups:
        for e in g.entries:
            meta = e.get("metadata") or {}
            if "bgbench.train_seconds" not in meta:
                unrecorded += 1
                continue
            device = meta.get("bgbench.train_device", "an unrecorded device")
            seconds[(_group_title(g, groups, g.method), device)].append(
                float(meta["bgbench.train_seconds"]))
    if not seconds:
        return "- Training wall time: not recorded in these models' metadata."
    devices = sorted({device for _, device in seconds})
    parts = []
    for (title, device), values in seconds.items():
        where = f" on {device}" if len(devices) > 1 else ""
        parts.append(f"{title}{where} {_minutes(values)} min "
                     f"({len(values)} run{'s' * (len(values) > 1)})")
    runs = sum(len(v) for v in seconds.values())
    total = sum(sum(v) for v in seconds.values())
    line = (f"- Training wall time per run (`train_seconds`, on {', '.join(devices)}): "
            f"{'; '.join(parts)}; all {runs} runs {total / 3600:.1f} h.")
    if unrecorded:
        line += f" {unrecorded} model{'s' * (unrecorded > 1)} did not record it."
    return line


def _minutes(seconds: list[float]) -> str:
    """The range of ``seconds`` in minutes: one decimal under ten minutes, whole above."""
    low, high = min(seconds) / 60, max(seconds) / 60
    digits = 1 if high < 10 else 0
    low_text, high_text = f"{low:.{digits}f}", f"{high:.{digits}f}"
    return low_text if low_text == high_text else f"{low_text}-{high_text}"


_METHOD_COLOURS = dict(zip(METHOD_ORDER, ("tab:gray", "tab:orange", "tab:blue", "tab:green",
                                          "tab:purple"), strict=True))


def method_colour(method: str) -> str | None:
    """The colour of ``method`` in every figure (None: matplotlib's next one)."""
    return _METHOD_COLOURS.get(method)


def noise_figure(groups: list[Group], path: Path) -> Path | None:
    """Accuracy against noise rate: one panel per dataset, one line per method (mean over
    seeds) with the seeds' min..max as a band; the legend sits outside the panels."""
    from bgbench.plotting import pyplot, save_png

    swept = [g for g in groups if g.sweep()]
    if not swept:
        return None
    plt = pyplot()
    datasets = list(dict.fromkeys(g.dataset for g in swept))
    fig, axes = plt.subplots(1, len(datasets), figsize=(3.6 * len(datasets) + 1.6, 3.2),
                             sharey=True, squeeze=False, layout="constrained")
    handles, banded = {}, False
    for ax, dataset in zip(axes[0], datasets, strict=True):
        for g in (g for g in swept if g.dataset == dataset):
            sweep = g.sweep()
            rates = list(sweep)
            colour = method_colour(g.method)
            label = f"{_group_title(g, groups)} ({len(g.entries)} seed"
            label += "s)" if len(g.entries) > 1 else ")"
            (line,) = ax.plot(rates, [statistics.mean(v) for v in sweep.values()], marker=".",
                              color=colour, linestyle=":" if g.preset == FAITHFUL_PRESET
                              else "-")
            if any(len(v) > 1 for v in sweep.values()):
                banded = True
                ax.fill_between(rates, [min(v) for v in sweep.values()],
                                [max(v) for v in sweep.values()], color=line.get_color(),
                                alpha=0.2, linewidth=0)
            handles.setdefault(label, line)
        ax.set_title(DATASET_TITLES.get(dataset, dataset), fontsize=9)
        ax.set_xlabel("noise rate of the random background")
        ax.set_ylim(0, 100)
        ax.grid(alpha=0.3)
    axes[0, 0].set_ylabel("accuracy (%)")
    fig.suptitle("Lines: mean over seeds; bands: min..max over seeds" if banded
                 else "One seed per line", fontsize=8)
    fig.legend(list(handles.values()), list(handles), loc="outside right upper", fontsize=7)
    return save_png(fig, path)


def gallery_figure(datasets: list[str], path: Path, data_root: str | os.PathLike | None
                   ) -> tuple[Path, str | None]:
    """The six backgrounds applied to sample test images (backgrounds alone without data)."""
    from bgbench.data import load_numpy
    from bgbench.gallery import draw_gallery

    samples, note = {}, None
    for dataset in datasets:
        try:
            samples[dataset] = load_numpy(dataset, "test", data_root=data_root)[0][:2]
        except BgbenchError as err:
            note = f"sample images left out: {err}"
    return draw_gallery(path, samples), note


def generator_figure(run_dir: Path, path: Path, data_root: str | os.PathLike | None,
                     n: int = 6) -> Path:
    """For a proposal run: test images, their stage-3 masks (the mask generator's output after
    the run's transform and dilation), backgrounds as the classifier saw them (sampled from
    the generator's output as the run did), and the composites."""
    import torch

    from bgbench.data import load_numpy
    from bgbench.ops import composite
    from bgbench.plotting import pyplot, save_png
    from bgbench.train import load_generators, read_config
    from bgbench.train.masks import stage3_mask
    from bgbench.train.steps import sample_background, uniforms

    config = read_config(run_dir)
    opts = config["options"]
    mask_gen, bg_gen = load_generators(run_dir)
    if mask_gen is None or bg_gen is None:
        raise BgbenchError(f"{run_dir} has no mask or background generator")
    images = load_numpy(config["dataset"], "test", data_root=data_root)[0][:n]
    x = torch.from_numpy(bgs.to_float(bgs.pad(images))[:, None])
    gen = torch.Generator().manual_seed(0)
    with torch.inference_mode():
        m = stage3_mask(mask_gen(x), opts["mask_transform"], opts["area_limit"],
                        opts["mask_dilation"])
        b = bg_gen(bg_gen.sample_noise(n, generator=gen))
        b = sample_background(b, uniforms(n, b.shape[-1], opts["bg_sample"], gen))
        composed = composite(x, m, b)[0]
    columns = {"image": x, "mask": m, "background": b, "composite": composed}
    plt = pyplot()
    fig, axes = plt.subplots(n, len(columns), figsize=(1.1 * len(columns), 1.1 * n + 0.3),
                             squeeze=False)
    for c, (title, tensor) in enumerate(columns.items()):
        arr = tensor.detach().float().numpy()[:, 0]
        for r in range(n):
            ax = axes[r, c]
            ax.imshow(np.clip(arr[r], 0, 1), cmap="gray", vmin=0, vmax=1,
                      interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(title, fontsize=8)
    fig.tight_layout(pad=0.3)
    return save_png(fig, path)


def proposal_runs(entries: list[dict[str, Any]]) -> list[tuple[str, str | None]]:
    """(name, preset) of the training runs (``bgbench.run`` metadata) of the proposal models,
    sorted: runs of different presets may share a name."""
    runs = {((e.get("metadata") or {}).get("bgbench.run", ""), _preset(e)) for e in entries
            if e["method"] == "proposal"}
    return sorted((r for r in runs if r[0]), key=lambda r: (r[0], r[1] or ""))


def find_run_dir(name: str, preset: str | None, runs: list[str | os.PathLike]) -> Path | None:
    """The training run directory ``name`` of ``preset`` in ``runs`` (each a run directory
    itself or a folder of them), or None."""
    for root in map(Path, runs):
        for path in (root / name, root):
            config = path / "config.json"
            if path.name == name and config.is_file():
                recorded = json.loads(config.read_text(encoding="utf-8")).get("preset")
                if preset is None or PRESET_ALIASES.get(recorded, recorded) == preset:
                    return path
    return None


def _generator_figure_name(run: str, preset: str | None) -> str:
    return f"generators-{preset or 'no-preset'}-{run}.png"


def report_markdown(results_dirs: list[str | os.PathLike],
                    ladder_dirs: list[str | os.PathLike] = (),
                    worst_case_dirs: list[str | os.PathLike] = ()) -> str:
    """The report's Markdown, a function of the results directories alone (figures are
    linked under ``figures/``; ``write_report`` draws them). ``ladder_dirs`` hold the
    ablation ladder's intermediate models (kept out of the other tables);
    ``worst_case_dirs`` models evaluated with the worst-case search (``bgbench attack``)."""
    entries, docs = load_entries(list(results_dirs))
    return _markdown(entries, docs, group_entries(entries), _ladder_entries(entries, ladder_dirs),
                     WorstCaseResults.load(worst_case_dirs))


@dataclass
class WorstCaseResults:
    """The groups of models with a worst-case search, from their own results directories."""

    groups: list[Group]
    docs: list[dict[str, Any]]

    @classmethod
    def load(cls, dirs: list[str | os.PathLike]) -> WorstCaseResults:
        """Read ``dirs`` (none: no worst-case results)."""
        from bgbench.attack.report import searched

        if not dirs:
            return cls([], [])
        entries, docs = load_entries(list(dirs))
        groups = searched(group_entries(entries))
        if not groups:
            raise BgbenchError(f"{', '.join(map(str, dirs))} hold no worst-case search; run "
                               "`bgbench attack` and merge it with `bgbench eval` results")
        return cls(groups, docs)

    def titles(self) -> dict[int, str]:
        """Each group's title, with dataset, as the report's other tables write it."""
        return {id(g): f"{DATASET_TITLES.get(g.dataset, g.dataset)} "
                       f"{_group_title(g, self.groups)}" for g in self.groups}

    def find(self, group: Group) -> Group | None:
        """The worst-case group of the same dataset, method and preset as ``group``."""
        return next((g for g in self.groups if (g.dataset, g.method, g.preset)
                     == (group.dataset, group.method, group.preset)), None)


def _ladder_entries(entries: list[dict[str, Any]],
                    ladder_dirs: list[str | os.PathLike]) -> list[dict[str, Any]]:
    return entries + (load_entries(list(ladder_dirs))[0] if ladder_dirs else [])


def ladder_table(entries: list[dict[str, Any]]) -> str | None:
    """The ablation ladder (``bgbench.ladder.LADDER``): per dataset, each step's seed count,
    six-background average, clean accuracy and change of the average from the step before;
    None where no step beyond the first has a model."""
    from bgbench.ladder import LADDER

    datasets = [d for d in DATASET_TITLES if any(e["dataset"] == d for e in entries)]
    found = {(s.tag, d): [e for e in entries if e["dataset"] == d and s.matches(e)]
             for s in LADDER for d in datasets}
    if not any(found[(s.tag, d)] for s in LADDER[1:] for d in datasets):
        return None
    header = ["step"]
    for d in datasets:
        title = DATASET_TITLES.get(d, d)
        header += [f"{title} seeds", f"{title} six-bg average", f"{title} clean", "change"]
    rows, before = [], {}
    for i, step in enumerate(LADDER, 1):
        row = [f"{i}. {step.title}"]
        for d in datasets:
            average = [100 * e["background_average"] for e in found[(step.tag, d)]]
            clean = [100 * e["accuracy"]["clean"] for e in found[(step.tag, d)]]
            change = _diff(average, before.get(d)) if i > 1 else ""
            row += [str(len(average)), mean_sd(average), mean_sd(clean), change]
            before[d] = statistics.mean(average) if average else None
        rows.append(row)
    return markdown_table(header, rows)


def _markdown(entries: list[dict[str, Any]], docs: list[dict[str, Any]],
              groups: list[Group], ladder_entries: list[dict[str, Any]],
              worst_case: WorstCaseResults) -> str:
    md = ["# bgbench report", ""]
    md.append("Accuracy in %. Where a method has several models (seeds), ours is the mean ± "
              "standard deviation over them and the difference is from the mean. The paper's "
              "numbers are Cruz & Cardoso's Tables 1 and 3.")
    md.append("")
    if any(g.preset == QUICK_PRESET for g in groups):
        md += [f"**A smoke check, not results.** Models of the `{QUICK_PRESET}` preset are "
               "trained on 10,000 images with short stages to show that everything runs end to "
               "end; their numbers, and their differences from the paper's, are not results to "
               "quote. The `full` and `faithful` presets train at full scale.", ""]
    for doc in docs:
        limited = f", first {doc['limit']} test images only" if doc.get("limit") else ""
        md.append(f"- `{doc['path']}`: bgbench {doc.get('bgbench_version')}, commit "
                  f"`{doc.get('git_commit')}`, {doc.get('created')}{limited}")
    md += ["", "## Table 1: accuracy on the six test backgrounds", "", table1(groups), ""]
    md += ["*gap*: clean minus the six-background average, in points. *fooled by any*: share "
           "of test images classified correctly on the clean set but wrongly on at least one "
           "background.", ""]
    if any(g.input_size[0] != PAPER_INPUT_SIZE for g in groups):
        md += [f"A size after the method (e.g. 28x28 native-28) marks models whose input is "
               f"not the paper's {PAPER_INPUT_SIZE}x{PAPER_INPUT_SIZE}: they were scored on the "
               "test sets drawn at that size under the size rule named, not on the paper's.", ""]
    t2 = table2(groups)
    md += ["## Table 2: accuracy against the noise rate of the random background", ""]
    if t2:
        md += ["Ours only: bgbench does not carry the paper's Table 2 values.", "", t2, ""]
        md += ["![noise sweep](figures/noise_sweep.png)", ""]
    else:
        md += ["Not evaluated: run `bgbench eval --noise-sweep`.", ""]
    md += ["## Table 3: Fashion-MNIST, the proposal and its ablations (six-background average)",
           ""]
    t3 = table3(groups)
    md += [t3 if t3 else "No Fashion-MNIST proposal, true-mask or noise-background model "
           "was evaluated.", ""]
    tl = ladder_table(ladder_entries)
    if tl:
        from bgbench.ladder import LADDER

        md += ["## From the paper's method to bgbench's: the ablation ladder", "",
               "The proposal method, one departure from the paper's setting at a time. Each "
               "step's models are matched by preset and options hash; *change* is the "
               "difference of the six-background average from the step before (means over "
               "different seed counts where the counts differ: compare it with the seed "
               "spread).", "", tl, ""]
        md += [f"{i}. {step.why}" for i, step in enumerate(LADDER, 1)] + [""]
    te = extended_table(groups)
    if te:
        md += ["## Extended suite: grey, smooth and photometric test sets", "",
               "bgbench's own test sets, not the paper's (docs/extended-suite.md): constant grey "
               "levels, ramps and smooth noise behind the object, then brightness, contrast and "
               "haze over the whole image.", "", te, ""]
        comparison = extended_comparison(groups)
        if comparison:
            md += ["Proposal against traditional training, set by set (means over seeds):", "",
                   comparison, ""]
    md += invariance_markdown(groups, load_bits(docs))
    if worst_case.groups:
        from bgbench.attack.report import section

        md += section(worst_case.groups, worst_case.titles(), worst_case.docs)
    md += ["## Every model", "", "Accuracy in % with its 95% Wilson interval in brackets.", "",
           model_table(entries), ""]
    md += ["## Figures", "", "### The test backgrounds", "",
           "![background gallery](figures/gallery.png)", ""]
    md += ["### Learned masks and generated backgrounds (proposal runs)", ""]
    runs = proposal_runs(entries)
    if not runs:
        md += ["No proposal model was evaluated, so there is no such figure.", ""]
    else:
        md += ["Each drawn from the model's training run directory "
               "(`bgbench report --runs DIR`).", ""]
    for run, preset in runs:
        md += [f"`{run}` [{preset or 'no preset'}]: test images, learned masks, generated "
               "backgrounds and their composites.", "",
               f"![{run}](figures/{_generator_figure_name(run, preset)})", ""]
    return "\n".join(md)


def _print_note(text: str) -> None:
    print(f"report: {text}", file=sys.stderr)


def write_report(results_dirs: list[str | os.PathLike], out: str | os.PathLike, *,
                 runs: list[str | os.PathLike] | None = None, force: bool = False,
                 data_root: str | os.PathLike | None = None,
                 ladder: list[str | os.PathLike] = (),
                 worst_case: list[str | os.PathLike] = (),
                 note: Callable[[str], None] = _print_note) -> Path:
    """Write ``out`` (``report_markdown``; ``ladder``: its ablation-ladder results
    directories) and its figures; returns the report's path.

    A figure that cannot be drawn (no test images for the gallery's samples, a proposal
    model whose run directory is not in ``runs``) is named through ``note``; a generator
    figure already beside the report is then kept.
    """
    out = Path(out)
    refuse_overwrite(out, force)
    entries, docs = load_entries(list(results_dirs))
    groups = group_entries(entries)
    searched = WorstCaseResults.load(worst_case)
    text = _markdown(entries, docs, groups, _ladder_entries(entries, ladder), searched)
    figures = out.parent / "figures"
    figures.mkdir(parents=True, exist_ok=True)
    noise_figure(groups, figures / "noise_sweep.png")
    for dataset in confusion_datasets(groups):
        confusion_figure(groups, dataset, figures / _confusion_figure_name(dataset))
    if searched.groups:
        from bgbench.attack.report import budget_figure, universal_figure

        budget_figure(searched.groups, searched.titles(), figures / "worst_case_budget.png")
        try:
            universal_figure(searched.groups, searched.titles(),
                             figures / "worst_case_universal.png", data_root)
        except BgbenchError as err:
            note(f"figures/worst_case_universal.png not drawn ({err})")
    datasets = [d for d in DATASET_TITLES if any(g.dataset == d for g in groups)]
    _, gallery_note = gallery_figure(datasets, figures / "gallery.png", data_root)
    if gallery_note:
        note(f"figures/gallery.png: {gallery_note}")
    for run, preset in proposal_runs(entries):
        path = figures / _generator_figure_name(run, preset)
        run_dir = find_run_dir(run, preset, runs or [])
        problem = "its run directory is not in --runs" if run_dir is None else None
        if run_dir is not None:
            try:
                generator_figure(run_dir, path, data_root)
            except (BgbenchError, ImportError) as err:
                problem = str(err)
        if problem:
            kept = ("the one already there is kept" if path.is_file() else
                    "the report links a missing image until `--runs DIR` draws it")
            note(f"figures/{path.name} not drawn ({problem}); {kept}")
    write_text(out, text)
    return out


# --- Intervals, paired comparisons and invariance measures ----------------------------------
# Models evaluated before bgbench kept per-image results have intervals (from their counts)
# but no bits, flip rates, calibration or confusion: those parts name them instead.

# Each method against traditional training, and the proposal against its two ablations.
PAIRED_BASELINES = (("traditional", None), ("truemask", "proposal"), ("noisebg", "proposal"))
SPREAD_COLUMNS = ("clean", *BACKGROUND_NAMES, "average")


def _interval_cell(entry: dict[str, Any], key: str) -> str:
    """An accuracy of ``entry["accuracy"]`` in %, with its 95% Wilson interval."""
    from bgbench.harness.results import entry_intervals

    value = entry["accuracy"].get(key)
    if value is None:
        return MISSING
    ci = entry_intervals(entry)["accuracy"][key]
    return f"{100 * value:.1f} ({100 * ci['ci_low']:.1f}–{100 * ci['ci_high']:.1f})"


def _binomial_sd(entry: dict[str, Any], key: str) -> float | None:
    """The test-set (binomial) standard deviation of one accuracy, in points."""
    value = entry["accuracy"].get(key)
    if value is None:
        return None
    n = entry["n_images"]
    return 100 * (value * (1 - value) / n) ** 0.5


def spread_table(groups: list[Group]) -> str:
    """Per group and column: the standard deviation over seeds, then the one the finite test
    set alone gives each model (binomial; root mean square over the models), in points."""
    rows = []
    for g in groups:
        cells = []
        for key in SPREAD_COLUMNS:
            values = g.values(key)
            between = f"{statistics.stdev(values):.2f}" if len(values) > 1 else MISSING
            if key == "average":
                # The six sets share their images, so the mean's sd is at most the mean of
                # the six sds (equal when the sets' errors coincide).
                sds = [statistics.fmean(s) for e in g.entries
                       if (s := [d for n in BACKGROUND_NAMES
                                 if (d := _binomial_sd(e, n)) is not None])]
                prefix = "≤"
            else:
                sds = [d for e in g.entries if (d := _binomial_sd(e, key)) is not None]
                prefix = ""
            within = (f"{prefix}{statistics.fmean(d * d for d in sds) ** 0.5:.2f}" if sds
                      else MISSING)
            cells.append(f"{between} / {within}")
        n = len(g.entries)
        rows.append([f"{DATASET_TITLES.get(g.dataset, g.dataset)} {_group_title(g, groups)} "
                     f"({n} model{'s' * (n > 1)})", *cells])
    return markdown_table(["model", *SPREAD_COLUMNS], rows)


def load_bits(docs: list[dict[str, Any]]) -> dict[str, Any]:
    """Per-image results of the documents' directories, by the model file's SHA-256 (its
    path where it has none), so a model re-evaluated into another directory is found."""
    from bgbench.harness.bits import read_bits

    out: dict[str, Any] = {}
    for doc in docs:
        for model, bits in read_bits(doc["path"]).items():
            out.setdefault(bits.sha256 or model, bits)
    return out


def _bits_key(entry: dict[str, Any]) -> str:
    return entry.get("sha256") or entry["model"]


def _seed(entry: dict[str, Any]) -> str | None:
    return (entry.get("metadata") or {}).get("bgbench.seed")


def paired_comparisons(groups: list[Group], bits: dict[str, Any]) -> str:
    """Per dataset and preset, each method against traditional training and the proposal
    against truemask and noisebg, seed by seed: the difference in points on clean and each
    background, marked where significant after Holm's correction over every set the two
    models share; what could not be paired is named."""
    from bgbench.errors import BgbenchError
    from bgbench.harness.pairing import pair

    header = ["comparison", *("clean", *BACKGROUND_NAMES), "significant sets"]
    rows, unpaired = [], []
    for dataset, preset in dict.fromkeys((g.dataset, g.preset) for g in groups):
        by_method = {g.method: g for g in groups if (g.dataset, g.preset) == (dataset, preset)}
        for method, group in by_method.items():
            for baseline, only_for in PAIRED_BASELINES:
                other = by_method.get(baseline)
                if other is None or method == baseline or only_for not in (None, method):
                    continue
                title = (f"{DATASET_TITLES.get(dataset, dataset)} {_group_title(group, groups)}"
                         f" − {_method_title(baseline)}")
                missing = []
                others = {_seed(e): e for e in other.entries}
                for e in group.entries:
                    o = others.get(_seed(e))
                    a = bits.get(_bits_key(e))
                    b = bits.get(_bits_key(o)) if o else None
                    if a is None or b is None:
                        missing.append(f"seed {_seed(e)}")
                        continue
                    label = f"{title}, seed {_seed(e)}"
                    try:
                        paired = {p.label: p for p in pair(a, b)}
                    except BgbenchError as err:
                        rows.append([label, *[MISSING] * 7, f"not paired: {err}"])
                        continue
                    rows.append([label] + [
                        f"{100 * p.difference:+.1f}{'*' if p.significant else ''}"
                        if (p := paired.get(c)) else MISSING for c in header[1:8]]
                        + [f"{sum(p.significant for p in paired.values())} of {len(paired)}"])
                if len(missing) == len(group.entries):
                    unpaired.append(title)
                elif missing:
                    unpaired.append(f"{title} ({', '.join(missing)})")
    lines = []
    if rows:
        lines += [markdown_table(header, rows), "",
                  "Differences in points (first model minus second), seed against the same "
                  "seed, on the same test images; `*`: significant at 0.05 by the exact McNemar "
                  "test after Holm's correction over every set the two models share "
                  "(*significant sets* counts them all, noise sweep and extended suite "
                  "included). `bgbench compare A B --results DIR` prints the counts, p-values "
                  "and intervals.", ""]
    if unpaired:
        lines.append("Not paired, for want of per-image results (these models were evaluated "
                     "before bgbench kept them in correct.npz; re-evaluating them adds them): "
                     + "; ".join(unpaired) + ".")
    return "\n".join(lines).strip() or "No method has a baseline to be paired with here."


def _measured(group: Group) -> list[dict[str, Any]]:
    return [e for e in group.entries if e.get("measures")]


def _mean_measure(entries: list[dict[str, Any]], key: str, field: str) -> float | None:
    values = [m[field] for e in entries if (m := e["measures"].get(key)) and m[field] is not None]
    return statistics.fmean(values) if values else None


def _unmeasured_note(groups: list[Group], what: str) -> str:
    missing = sum(len(g.entries) - len(_measured(g)) for g in groups)
    if not missing:
        return ""
    return (f"{missing} model{'s' * (missing > 1)} of these results {'have' if missing > 1 else 'has'}"
            f" no {what}: evaluated before bgbench measured it, {'they are' if missing > 1 else 'it is'}"
            " left out (re-evaluating adds them).")


def flip_table(groups: list[Group]) -> str | None:
    """Flip rate (%) per background, and its mean over the six, per group: the mean over
    the group's models that measured it. None where no model did."""
    rows = []
    for g in groups:
        measured = _measured(g)
        if not measured:
            continue
        rates = [_mean_measure(measured, n, "flip_rate") for n in BACKGROUND_NAMES]
        known = [r for r in rates if r is not None]
        rows.append([f"{DATASET_TITLES.get(g.dataset, g.dataset)} {_group_title(g, groups)} "
                     f"({len(measured)} model{'s' * (len(measured) > 1)})"]
                    + [pct(r) for r in rates]
                    + [pct(statistics.fmean(known)) if known else MISSING])
    if not rows:
        return None
    return markdown_table(["model", *BACKGROUND_NAMES, "average"], rows)


def calibration_table(groups: list[Group]) -> str | None:
    """ECE (%), Brier score and the share (%) of images wrong with confidence ≥ 0.9, on clean
    and averaged over the six backgrounds, per group (mean over the models that measured
    them; a model whose output is neither logits nor probabilities has none)."""
    fields = (("ece", pct), ("brier", lambda v: MISSING if v is None else f"{v:.3f}"),
              ("confident_wrong", pct))
    rows = []
    for g in groups:
        measured = [e for e in _measured(g) if e.get("output_kind") in ("logits",
                                                                          "probabilities")]
        if not measured:
            continue
        cells = []
        for field, fmt in fields:
            clean = _mean_measure(measured, "clean", field)
            bgs_ = [v for n in BACKGROUND_NAMES
                    if (v := _mean_measure(measured, n, field)) is not None]
            cells += [fmt(clean), fmt(statistics.fmean(bgs_) if bgs_ else None)]
        kinds = " / ".join(sorted({e["output_kind"] for e in measured}))
        rows.append([f"{DATASET_TITLES.get(g.dataset, g.dataset)} {_group_title(g, groups)} "
                     f"({len(measured)} model{'s' * (len(measured) > 1)}, {kinds})", *cells])
    if not rows:
        return None
    return markdown_table(["model", "ECE clean", "ECE backgrounds", "Brier clean",
                           "Brier backgrounds", "wrong ≥0.9 clean", "wrong ≥0.9 backgrounds"],
                          rows)


def worst_background(group: Group) -> str | None:
    """The background with the lowest mean accuracy over the group's measured models."""
    measured = _measured(group)
    means = {n: statistics.fmean(e["accuracy"][n] for e in measured)
             for n in BACKGROUND_NAMES
             if measured and all(n in e["accuracy"] and n in e["measures"] for e in measured)}
    return min(means, key=means.get) if means else None


def _confusion_figure_name(dataset: str) -> str:
    return f"confusion-{dataset}.png"


def confusion_datasets(groups: list[Group]) -> list[str]:
    """Datasets with a group whose models measured a confusion matrix on some background."""
    return list(dict.fromkeys(g.dataset for g in groups if worst_background(g)))


def confusion_figure(groups: list[Group], dataset: str, path: Path) -> Path:
    """Per group of ``dataset``: the confusion matrix on its worst background, summed over its
    measured models and normalised per true class (rows), one panel each."""
    from bgbench.plotting import pyplot, save_png

    panels = [(g, w) for g in groups if g.dataset == dataset and (w := worst_background(g))]
    plt = pyplot()
    fig, axes = plt.subplots(1, len(panels), figsize=(2.6 * len(panels) + 0.6, 3.0),
                             squeeze=False, layout="constrained")
    image = None
    for ax, (g, worst) in zip(axes[0], panels, strict=True):
        measured = _measured(g)
        matrix = np.sum([np.array(e["measures"][worst]["confusion"]) for e in measured], axis=0)
        totals = matrix.sum(axis=1, keepdims=True)
        rates = np.divide(matrix, totals, out=np.zeros(matrix.shape), where=totals > 0)
        image = ax.imshow(rates, cmap="viridis", vmin=0, vmax=1)
        accuracy = 100 * statistics.fmean(e["accuracy"][worst] for e in measured)
        ax.set_title(f"{_group_title(g, groups)}\n{worst} ({accuracy:.1f}%)", fontsize=7)
        ax.set_xlabel("predicted class", fontsize=7)
        ax.set_xticks(range(matrix.shape[1]))
        ax.set_yticks(range(matrix.shape[0]))
        ax.tick_params(labelsize=6)
    axes[0, 0].set_ylabel("true class", fontsize=7)
    fig.colorbar(image, ax=axes[0].tolist(), shrink=0.8, label="share of the true class")
    fig.suptitle(f"{DATASET_TITLES.get(dataset, dataset)}: confusion on each method's worst "
                 "background", fontsize=8)
    return save_png(fig, path)


def invariance_markdown(groups: list[Group], bits: dict[str, Any]) -> list[str]:
    """The report's sections on the spread, the paired comparisons and the invariance
    measures (Markdown lines)."""
    md = ["## Spread: between seeds and within the test set", "",
          "Per cell: the standard deviation over seeds / the standard deviation of one model's "
          "accuracy from the finite test set alone (binomial, root mean square over the "
          "models), in points; where the first is much larger, the seeds' differences are "
          "real, where the two are comparable, the seeds differ by about what the test set's "
          "size alone could produce. *average*: the six backgrounds' mean, whose binomial "
          "part is at most the value shown (the six sets share their images). Every model's "
          "accuracies carry 95% Wilson intervals in the per-model table below.", "", spread_table(groups), ""]
    md += ["## Paired comparisons on the same test images", "",
           paired_comparisons(groups, bits), ""]
    md += ["## Flip rate: correct answers a background changes", ""]
    flips = flip_table(groups)
    if flips:
        md += ["Of the test images a model classifies correctly on the clean set, the share "
               "whose prediction changes under each background, in % (mean over the models "
               "that measured it).", "", flips, ""]
    note = (_unmeasured_note(groups, "flip rate, calibration or confusion matrix") if flips
            else "No model of these results measured it: they were evaluated before bgbench "
            "kept per-image outputs; re-evaluate them with `bgbench eval`.")
    md += [note, ""] if note else []
    md += ["## Calibration under background shift", ""]
    calibration = calibration_table(groups)
    if calibration:
        md += ["From the softmax of the model's output (the output itself where it is already "
               "probabilities): expected calibration error over 15 equal-width confidence "
               "bins (%), Brier score (0 to 2), and the share of images answered wrongly with "
               "confidence at least 0.9 (%); *backgrounds*: mean over the six.", "",
               calibration, ""]
    else:
        md += ["Not measured for any model of these results.", ""]
    datasets = confusion_datasets(groups)
    if datasets:
        md += ["### Confusion on each method's worst background", "",
               "Rows: true class, columns: predicted class, as a share of the true class; "
               "summed over the method's measured models.", ""]
        md += [f"![confusion, {DATASET_TITLES.get(d, d)}](figures/{_confusion_figure_name(d)})"
               for d in datasets] + [""]
    return md
