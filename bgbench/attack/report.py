"""The report's worst-case section: tables and figures from results entries with a
``worst_case`` object (``bgbench attack`` joined with ``bgbench eval`` by ``bgbench merge``).

Groups are the report's (``bgbench.report.grouping.Group``: one dataset, method and preset, usually
one model per seed); values are percentages, mean ± sd over the group's models.
"""

from __future__ import annotations

import os
import statistics
from pathlib import Path
from typing import Any

import numpy as np

from bgbench.attack import families as fams
from bgbench.attack.table import member_label
from bgbench.report.grouping import mean_sd
from bgbench.tables import MISSING, markdown_table


def searched(groups: list[Any]) -> list[Any]:
    """The groups whose every model has a worst-case search, all with one budget and seed."""
    return [g for g in groups if g.entries and all(e.get("worst_case") for e in g.entries)]


def values(group: Any, key: str) -> list[float]:
    """Percentages of ``key`` per model: ``clean``, ``universal``, ``adaptive``,
    ``worst-of-K``, or ``family:NAME`` (right under every pool member of that family)."""
    out = []
    for e in group.entries:
        wc = e["worst_case"]
        if key.startswith("family:"):
            fam = wc["per_family"].get(key.removeprefix("family:"))
            if fam is not None:
                out.append(100 * fam["worst_of_pool_n_correct"] / wc["n_images"])
        elif key.startswith("worst-of-"):
            value = wc["worst_of_k"].get(key.removeprefix("worst-of-"))
            if value is not None:
                out.append(100 * value)
        else:
            out.append(100 * wc[f"{key}_accuracy"])
    return out


def _ks(groups: list[Any]) -> list[str]:
    return list(dict.fromkeys(k for g in groups for e in g.entries
                              for k in e["worst_case"]["worst_of_k"]))


def protocol_line(groups: list[Any]) -> str:
    """What was run: protocol, budgets, seeds and test images (as the results record them)."""
    runs = {(e["worst_case"]["protocol"], e["worst_case"]["budget"], e["worst_case"]["seed"],
             e["worst_case"]["n_images"]) for g in groups for e in g.entries}
    return "; ".join(f"protocol `{p}`, budget {b} background queries per image, seed {s}, "
                     f"{n} test images" for p, b, s, n in sorted(runs))


def worst_case_table(groups: list[Any], titles: dict[int, str]) -> str:
    """Per group: clean, the universal background, worst-of-k and adaptive accuracy."""
    ks = _ks(groups)
    header = ["model", "seeds", "clean", "universal", *[f"worst-of-{k}" for k in ks],
              "adaptive", "queries per image"]
    rows = []
    for g in groups:
        queries = [e["worst_case"]["queries"]["adaptive_per_image_mean"] for e in g.entries]
        rows.append([titles[id(g)], str(len(g.entries)), mean_sd(values(g, "clean")),
                     mean_sd(values(g, "universal"))]
                    + [mean_sd(values(g, f"worst-of-{k}")) for k in ks]
                    + [mean_sd(values(g, "adaptive")), f"{statistics.mean(queries):.1f}"])
    return markdown_table(header, rows)


def family_table(groups: list[Any], titles: dict[int, str]) -> str:
    """Per group and family: accuracy under every pool member of the family (worst-of-pool
    within it); families bgbench's own stage 3 draws from are marked."""
    names = [n for n in fams.NAMES if any(values(g, f"family:{n}") for g in groups)]
    header = ["model"] + [f"{n}†" if fams.FAMILIES[n].trained_by else n for n in names]
    rows = [[titles[id(g)]] + [mean_sd(values(g, f"family:{n}"))
                               + ("‡" if n in trained_families(g.entries) else "")
                               for n in names]
            for g in groups]
    return markdown_table(header, rows)


def trained_families(entries: list[dict[str, Any]]) -> set[str]:
    """The families any of ``entries``' models drew in stage 3 (``family_share``), from
    their ``bgbench.trained_families`` metadata; none for a method whose stages draw no
    family background (``vocab.FAMILY_METHODS``), whatever its metadata lists."""
    from bgbench.vocab import FAMILY_METHODS

    out: set[str] = set()
    for e in entries:
        if e.get("method") not in FAMILY_METHODS:
            continue
        listed = (e.get("metadata") or {}).get("bgbench.trained_families", "")
        out.update(n for n in listed.split(",") if n)
    return out


def trained_note(groups: list[Any]) -> str:
    """The families that bgbench's stage 3 trains on, with which option, and (when a model
    drew threat-model families) which models trained on which family."""
    marked = [f"`{f.name}` ({f.trained_by})" for f in fams.FAMILIES.values() if f.trained_by]
    note = ("†: bgbench's full and quick presets draw stage-3 training backgrounds from "
            "this family: " + "; ".join(marked) + ". A proposal, true-mask or noise-background "
            "model's score there measures coverage of what it was trained on, not invariance "
            "beyond it")
    if not any(trained_families(g.entries) for g in groups):
        return note + "; the other families are never trained on."
    return (note + ". ‡: this model was trained on members of this very family "
            "(`family_share`, the families its `bgbench.trained_families` metadata lists); a "
            "family with neither mark was never trained on.")


def universal_table(groups: list[Any], titles: dict[int, str]) -> str:
    """Each model's universal worst background and its accuracy under it."""
    rows = []
    for g in groups:
        for e in g.entries:
            wc = e["worst_case"]
            seed = (e.get("metadata") or {}).get("bgbench.seed", MISSING)
            rows.append([titles[id(g)], str(seed), f"`{member_label(wc['universal'])}`",
                         f"{100 * wc['universal_accuracy']:.1f}"])
    return markdown_table(["model", "seed", "universal worst background", "accuracy"], rows)


def budget_figure(groups: list[Any], titles: dict[int, str], path: Path) -> Path | None:
    """Accuracy against the budget: the worst-of-k curve per group (mean over seeds, min..max
    band) and the adaptive search at the full budget as a marker; a panel per dataset."""
    from bgbench.plotting import panels_by_dataset
    from bgbench.report.paper import DATASET_TITLES, method_colour

    if not groups:
        return None

    def draw(ax: Any, panel: list[Any]) -> dict[str, Any]:
        handles = {}
        for g in panel:
            ks = [int(k) for k in _ks([g])]
            curves = np.array([[100 * e["worst_case"]["worst_of_k"][str(k)] for k in ks]
                               for e in g.entries])
            clean = [100 * e["worst_case"]["clean_accuracy"] for e in g.entries]
            xs = [0, *ks]
            mean = [statistics.mean(clean), *curves.mean(axis=0)]
            (line,) = ax.plot(xs, mean, marker=".", color=method_colour(g.method))
            if len(g.entries) > 1:
                ax.fill_between(xs, [min(clean), *curves.min(axis=0)],
                                [max(clean), *curves.max(axis=0)], color=line.get_color(),
                                alpha=0.2, linewidth=0)
            adaptive = values(g, "adaptive")
            ax.errorbar([ks[-1]], [statistics.mean(adaptive)],
                        yerr=[[statistics.mean(adaptive) - min(adaptive)],
                              [max(adaptive) - statistics.mean(adaptive)]],
                        marker="*", markersize=9, color=line.get_color(), capsize=2)
            handles.setdefault(titles[id(g)], line)
        ax.set_xscale("symlog", linthresh=1)
        return handles

    several = any(len(g.entries) > 1 for g in groups)
    return panels_by_dataset(
        groups, path, panel_width=3.8, margin=1.8,
        xlabel="k: backgrounds of the pool (0 = clean)", titles=DATASET_TITLES, draw=draw,
        suptitle=lambda: "Lines: worst-of-k random, mean over seeds"
        + ("; bands: min..max" if several else "")
        + "; stars: adaptive search at the full budget")


def universal_figure(groups: list[Any], titles: dict[int, str], path: Path,
                     data_root: str | os.PathLike | None, examples: int = 4) -> Path | None:
    """Per group (its first model): the universal worst background, then test images it
    fools composited with it. Raises ``BgbenchError`` without the test images."""
    from bgbench.data import load_numpy
    from bgbench.harness.testsets import TestSuite
    from bgbench.plotting import pyplot, save_png

    if not groups:
        return None
    plt = pyplot()
    fig, axes = plt.subplots(len(groups), examples + 1, figsize=(1.3 * (examples + 1),
                             1.45 * len(groups)), squeeze=False, layout="constrained")
    suites: dict[str, TestSuite] = {}
    for row, g in zip(axes, groups, strict=True):
        e = g.entries[0]
        wc = e["worst_case"]
        size = int(e.get("input_size", 32))
        if g.dataset not in suites:
            suites[g.dataset] = TestSuite(g.dataset, *load_numpy(g.dataset, "test",
                                                                 data_root=data_root))
        suite = suites[g.dataset]
        bg = fams.background(wc["universal"]["family"], wc["universal"]["params"], size)
        row[0].imshow(bg, cmap="gray", vmin=0, vmax=255)
        row[0].set_title(f"{titles[id(g)]}\n{100 * wc['universal_accuracy']:.1f}%", fontsize=6)
        shown = wc["universal"]["fooled_examples"][:examples]
        for ax, index in zip(row[1:], shown, strict=False):
            image = np.where(suite.object_mask(size)[index], suite.images_at(size)[index], bg)
            ax.imshow(image, cmap="gray", vmin=0, vmax=255)
            ax.set_title(f"label {int(suite.labels[index])}", fontsize=6)
        for ax in row:
            ax.set_axis_off()
    return save_png(fig, path)


def readme_cell(group: Any | None, seeds: int) -> str:
    """The README's worst-case cell of a group: adaptive accuracy, mean ± sd, with the
    number of models searched where it is not the row's ``seeds``."""
    if group is None:
        return MISSING
    n = len(group.entries)
    return mean_sd(values(group, "adaptive")) + (f" ({n} of {seeds})" if n != seeds else "")


def readme_note(groups: list[Any]) -> str:
    """The README's line under its table saying what *worst case* is."""
    return (f"*worst case*: the adaptive worst-case search's accuracy ({protocol_line(groups)}; "
            "docs/threat-model.md), over the models searched where fewer than the row's "
            "seeds (`n of seeds`).")


def section(groups: list[Any], titles: dict[int, str], docs: list[dict[str, Any]]) -> list[str]:
    """The report's worst-case section (Markdown lines); figures under ``figures/``."""
    md = ["## Worst-case backgrounds: a budgeted search", "",
          "`bgbench attack` (docs/threat-model.md): the object is never touched; each "
          "background is a member of a registered family with mean at most 0.5. *universal*: "
          "accuracy under the single worst background of a seeded pool that is the same for "
          "every model; *worst-of-k*: right on clean and on each of the pool's first k "
          "backgrounds; *adaptive*: right on clean and under every background a per-image "
          "search tried within the same budget (whole backgrounds first, those that fooled earlier "
          "images and the pool's first members, then the pool's other members, those that "
          "fooled the most earlier images of the image's class first, alternating with local "
          "moves within each family). Mean ± sd over seeds.", ""]
    md += [f"- `{doc['path']}`: bgbench {doc.get('bgbench_version')}, commit "
           f"`{doc.get('git_commit')}`, {doc.get('created')}" for doc in docs]
    md += [f"- {protocol_line(groups)}", "", worst_case_table(groups, titles), "",
           "![accuracy against budget](figures/worst_case_budget.png)", "",
           "### Per family: right under every pool member of the family", "",
           family_table(groups, titles), "", trained_note(groups), "",
           "### The universal worst background of each model", "",
           universal_table(groups, titles), "",
           "![universal worst backgrounds](figures/worst_case_universal.png)", ""]
    return md
