"""The report's Markdown tables of accuracies: the paper's Tables 1-3 with ours beside them,
the extended suite, every model, the training wall times and the ablation ladder."""

from __future__ import annotations

import statistics
from collections import defaultdict
from pathlib import Path
from typing import Any

from bgbench.report.grouping import Group, entry_input_size, entry_preset, group_title, mean_sd
from bgbench.report.paper import (
    BACKGROUND_NAMES,
    DATASET_TITLES,
    PAPER_INPUT_SIZE,
    PAPER_TABLE1,
    PAPER_TABLE3,
    method_title,
)
from bgbench.tables import MISSING, markdown_table, pct


def _diff(values: list[float], paper: float | None) -> str:
    if not values or paper is None:
        return MISSING
    return f"{statistics.mean(values) - paper:+.1f}"


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
                rows.append([f"{method_title(g.method)}: paper"]
                            + [MISSING if p is None else f"{p:.1f}" for p in paper]
                            + [""] * 4)
            n = len(g.entries)
            title = group_title(g, groups)
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
                               f"{group_title(g, groups)}" for g in swept]
    rows = [[f"{rate:g}"] + [mean_sd(g.sweep().get(rate, [])) for g in swept]
            for rate in rates]
    return markdown_table(header, rows)


def table3(groups: list[Group]) -> str | None:
    """Table 3: Fashion-MNIST six-background average of the proposal and its ablations."""
    rows = []
    for method, paper in PAPER_TABLE3.items():
        found = [g for g in groups if (g.dataset, g.method) == ("fashion-mnist", method)]
        for title, values in ([(group_title(g, groups), g.values("average")) for g in found]
                              or [(method_title(method), [])]):
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
        n = g.n_extended
        if n:
            rows.append([f"{DATASET_TITLES.get(g.dataset, g.dataset)} "
                         f"{group_title(g, groups)} ({n} model{'s' * (n > 1)})"]
                        + [extended_cell(g, c, n) for c in cols])
    if not rows:
        return None
    header = ["model", *BACKGROUND_SETS, "background average", *PHOTOMETRIC_SETS,
              "photometric average"]
    return markdown_table(header, rows)


def extended_cell(group: Group, key: str, n: int) -> str:
    """``mean_sd`` of the group's ``key`` (an extended set or average), with the number of
    models where fewer than the row's ``n``, and ``*`` on an average that leaves out a set of
    today's suite (``EXTENDED_SHORT_NOTE``)."""
    values = group.extended(key)
    cell = mean_sd(values)
    if len(values) not in (0, n):
        cell += f" ({len(values)})"
    if values and key.endswith("_average") and group.short_of_suite(key):
        cell += "*"
    return cell


def extended_short_note(groups: list[Group]) -> str:
    """``EXTENDED_SHORT_NOTE`` (with a leading space) where a group's average leaves out a
    set of today's suite, else nothing."""
    short = any(g.short_of_suite(key) for g in groups if g.n_extended
                for key in ("background_average", "photometric_average"))
    return f" {EXTENDED_SHORT_NOTE}" if short else ""


EXTENDED_SHORT_NOTE = ("A number in brackets counts the models behind a cell where fewer than "
                       "the row's: results made before a set joined the suite lack it. * marks "
                       "an average over the sets its models were evaluated on, which leave out "
                       "a set of today's suite.")


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


def model_table(entries: list[dict[str, Any]]) -> str:
    """Every model evaluated, one row each, with how it was run: each accuracy with its 95%
    Wilson interval; an input size other than the paper's 32x32 is shown in bold with its
    size rule."""
    rows = []
    for e in entries:
        meta = e.get("metadata") or {}
        size, rule = entry_input_size(e)
        rows.append([f"`{Path(e['model']).name}`", e["dataset"], e["method"],
                     entry_preset(e) or MISSING, meta.get("bgbench.seed", MISSING),
                     str(size) if size == PAPER_INPUT_SIZE else f"**{size}** ({rule})"]
                    + [_interval_cell(e, c) for c in ("clean", *BACKGROUND_NAMES)]
                    + [pct(e["background_average"]), pct(e["fooled_by_any"]),
                       f"{e['provider'].removesuffix('ExecutionProvider')} ×{e['threads']}",
                       f"{e['images_per_second']:.0f}"])
    return markdown_table(["model", "dataset", "method", "preset", "seed", "input", "clean",
                           *BACKGROUND_NAMES, "average", "fooled", "provider", "img/s"], rows)


def _interval_cell(entry: dict[str, Any], key: str) -> str:
    """An accuracy of ``entry["accuracy"]`` in %, with its 95% Wilson interval."""
    from bgbench.harness.results import entry_intervals

    value = entry["accuracy"].get(key)
    if value is None:
        return MISSING
    ci = entry_intervals(entry)["accuracy"][key]
    return f"{100 * value:.1f} ({100 * ci['ci_low']:.1f}–{100 * ci['ci_high']:.1f})"


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
            seconds[(group_title(g, groups, g.method), device)].append(
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


def ladder_table(entries: list[dict[str, Any]],
                 searched: list[dict[str, Any]] = ()) -> str | None:
    """The ablation ladder (``bgbench.ladder.LADDER``): per dataset, each step's seed count,
    six-background average, clean accuracy, change of the average from the step before and,
    where any of its models was searched (its own ``worst_case``, or a ``searched`` entry of
    the same model file), the adaptive and universal worst-case accuracy at budget 100 under
    this bgbench's search protocol (with the count of searched models; a search of another
    protocol version is left out, never compared); None where no step beyond the first has a
    model."""
    from bgbench.attack.protocol import DEFAULT_BUDGET, PROTOCOL
    from bgbench.ladder import LADDER

    by_sha = {e.get("sha256"): e["worst_case"] for e in searched if e.get("worst_case")}
    datasets = [d for d in DATASET_TITLES if any(e["dataset"] == d for e in entries)]
    found = {(s.tag, d): [e for e in entries if e["dataset"] == d and s.matches(e)]
             for s in LADDER for d in datasets}
    if not any(found[(s.tag, d)] for s in LADDER[1:] for d in datasets):
        return None

    def worst_cases(models: list[dict[str, Any]]) -> list[dict[str, Any]]:
        cases = [e.get("worst_case") or by_sha.get(e.get("sha256")) for e in models]
        return [wc for wc in cases if wc and wc.get("budget") == DEFAULT_BUDGET
                and wc.get("protocol") == PROTOCOL]

    with_search = any(worst_cases(v) for v in found.values())
    header = ["step"]
    for d in datasets:
        title = DATASET_TITLES.get(d, d)
        header += [f"{title} seeds", f"{title} six-bg average", f"{title} clean", "change"]
        if with_search:
            header += [f"{title} adaptive (searched)", f"{title} universal"]
    rows, before = [], {}
    for i, step in enumerate(LADDER, 1):
        row = [f"{i}. {step.title}"]
        for d in datasets:
            average = [100 * e["background_average"] for e in found[(step.tag, d)]]
            clean = [100 * e["accuracy"]["clean"] for e in found[(step.tag, d)]]
            change = _diff(average, before.get(d)) if i > 1 else ""
            row += [str(len(average)), mean_sd(average), mean_sd(clean), change]
            if with_search:
                cases = worst_cases(found[(step.tag, d)])
                adaptive = [100 * wc["adaptive_accuracy"] for wc in cases]
                universal = [100 * wc["universal_accuracy"] for wc in cases]
                row += [f"{mean_sd(adaptive)} ({len(cases)})" if cases else mean_sd(adaptive),
                        mean_sd(universal)]
            before[d] = statistics.mean(average) if average else None
        rows.append(row)
    return markdown_table(header, rows)
