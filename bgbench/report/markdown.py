"""``report.md``: our results laid out like the paper's Tables 1-3, with the paper beside them.

Input is one or more results directories written by ``bgbench eval``; models are grouped by
(dataset, method, preset) from their metadata and several seeds of one group are averaged
(mean and standard deviation: robustness varies a lot from seed to seed). The report's text
is a function of the results alone (``report_markdown``); ``write_report`` adds the figures,
small PNGs under ``figures/`` beside it.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bgbench.errors import BgbenchError
from bgbench.fileio import refuse_overwrite, write_text
from bgbench.report.figures import (
    confusion_datasets,
    confusion_figure,
    confusion_figure_name,
    find_run_dir,
    gallery_figure,
    generator_figure,
    generator_figure_name,
    noise_figure,
    proposal_runs,
)
from bgbench.report.grouping import Group, WorstCaseResults, group_entries, load_entries
from bgbench.report.invariance import invariance_markdown, load_bits
from bgbench.report.paper import DATASET_TITLES, PAPER_INPUT_SIZE, QUICK_PRESET
from bgbench.report.tables import (
    extended_comparison,
    extended_short_note,
    extended_table,
    ladder_table,
    model_table,
    table1,
    table2,
    table3,
)


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


def _ladder_entries(entries: list[dict[str, Any]],
                    ladder_dirs: list[str | os.PathLike]) -> list[dict[str, Any]]:
    """The ladder table's models: the ladder folders' and the results', each model file once
    (the ladder folder's entry, which may carry its search, in place of the same file's in
    the results)."""
    ladder = load_entries(list(ladder_dirs))[0] if ladder_dirs else []
    seen = {(e["sha256"], e["dataset"]) for e in ladder if e.get("sha256")}
    return ladder + [e for e in entries if (e.get("sha256"), e["dataset"]) not in seen]


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
    tl = ladder_table(ladder_entries, [e for g in worst_case.groups for e in g.entries])
    if tl:
        from bgbench.ladder import LADDER

        md += ["## From the paper's method to bgbench's: the ablation ladder", "",
               "The proposal method, one departure from the paper's setting at a time. Each "
               "step's models are matched by preset and options hash; *change* is the "
               "difference of the six-background average from the step before (means over "
               "different seed counts where the counts differ: compare it with the seed "
               "spread). Where a step's models were searched (`bgbench attack`, budget 100), "
               "*adaptive* and *universal* are their worst-case accuracies, with the number of "
               "models searched (searches of an earlier protocol version are left out).", "",
               tl, ""]
        md += [f"{i}. {step.why}" for i, step in enumerate(LADDER, 1)] + [""]
    te = extended_table(groups)
    if te:
        md += ["## Extended suite: grey, smooth and photometric test sets", "",
               "bgbench's own test sets, not the paper's (docs/extended-suite.md): constant grey "
               "levels, ramps and smooth noise behind the object, then brightness, contrast, "
               "haze and shot noise over the whole image." + extended_short_note(groups), "", te, ""]
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
               f"![{run}](figures/{generator_figure_name(run, preset)})", ""]
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
        confusion_figure(groups, dataset, figures / confusion_figure_name(dataset))
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
        path = figures / generator_figure_name(run, preset)
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
