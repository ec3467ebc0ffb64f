"""The report's spread, paired comparisons and invariance measures (flip rate, calibration).

Models evaluated before bgbench kept per-image results have intervals (from their counts)
but no bits, flip rates, calibration or confusion: those parts name them instead.
"""

from __future__ import annotations

import statistics
from typing import Any

from bgbench.report.figures import confusion_datasets, confusion_figure_name
from bgbench.report.grouping import Group, group_title, measured_entries
from bgbench.report.paper import BACKGROUND_NAMES, DATASET_TITLES, method_title
from bgbench.tables import MISSING, markdown_table, pct

# Each method against traditional training, and the proposal against its two ablations.
PAIRED_BASELINES = (("traditional", None), ("truemask", "proposal"), ("noisebg", "proposal"))
SPREAD_COLUMNS = ("clean", *BACKGROUND_NAMES, "average")


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
        rows.append([f"{DATASET_TITLES.get(g.dataset, g.dataset)} {group_title(g, groups)} "
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
    rows, unpaired, unmatched = [], [], []
    for dataset, preset in dict.fromkeys((g.dataset, g.preset) for g in groups):
        by_method = {g.method: g for g in groups if (g.dataset, g.preset) == (dataset, preset)}
        for method, group in by_method.items():
            for baseline, only_for in PAIRED_BASELINES:
                other = by_method.get(baseline)
                if other is None or method == baseline or only_for not in (None, method):
                    continue
                title = (f"{DATASET_TITLES.get(dataset, dataset)} {group_title(group, groups)}"
                         f" − {method_title(baseline)}")
                missing, alone = [], []
                others = {_seed(e): e for e in other.entries}
                for e in group.entries:
                    o = others.get(_seed(e))
                    if o is None:
                        alone.append(f"seed {_seed(e)}")
                        continue
                    a, b = bits.get(_bits_key(e)), bits.get(_bits_key(o))
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
                for seeds, out in ((missing, unpaired), (alone, unmatched)):
                    if seeds:
                        out.append(title if len(seeds) == len(group.entries)
                                   else f"{title} ({', '.join(seeds)})")
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
        lines += ["Not paired, for want of per-image results (these models were evaluated "
                  "before bgbench kept them in correct.npz; re-evaluating them adds them): "
                  + "; ".join(unpaired) + ".", ""]
    if unmatched:
        lines += ["Not paired, for want of the other model at the same seed: "
                  + "; ".join(unmatched) + ".", ""]
    return "\n".join(lines).strip() or "No method has a baseline to be paired with here."


def _mean_measure(entries: list[dict[str, Any]], key: str, field: str) -> float | None:
    values = [m[field] for e in entries if (m := e["measures"].get(key)) and m[field] is not None]
    return statistics.fmean(values) if values else None


def _unmeasured_note(groups: list[Group], what: str) -> str:
    missing = sum(len(g.entries) - len(measured_entries(g)) for g in groups)
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
        measured = measured_entries(g)
        if not measured:
            continue
        rates = [_mean_measure(measured, n, "flip_rate") for n in BACKGROUND_NAMES]
        known = [r for r in rates if r is not None]
        rows.append([f"{DATASET_TITLES.get(g.dataset, g.dataset)} {group_title(g, groups)} "
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
        measured = [e for e in measured_entries(g) if e.get("output_kind") in ("logits",
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
        rows.append([f"{DATASET_TITLES.get(g.dataset, g.dataset)} {group_title(g, groups)} "
                     f"({len(measured)} model{'s' * (len(measured) > 1)}, {kinds})", *cells])
    if not rows:
        return None
    return markdown_table(["model", "ECE clean", "ECE backgrounds", "Brier clean",
                           "Brier backgrounds", "wrong ≥0.9 clean", "wrong ≥0.9 backgrounds"],
                          rows)


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
        md += [f"![confusion, {DATASET_TITLES.get(d, d)}](figures/{confusion_figure_name(d)})"
               for d in datasets] + [""]
    return md
