"""``report.md``: our results laid out like the paper's Tables 1-3, with the paper beside them.

Input is one or more results directories written by ``bgbench eval``; models are grouped by
(dataset, method) from their metadata and several seeds of one method are averaged (mean and
standard deviation: a classifier's robustness varies a lot from seed to seed). Figures
are small PNGs under ``figures/`` beside the report.
"""

from __future__ import annotations

import os
import statistics
import warnings
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bgbench import backgrounds as bgs
from bgbench.errors import BgbenchError
from bgbench.fileio import atomic_path, write_text

BACKGROUND_NAMES = tuple(bgs.BACKGROUNDS)
DATASET_TITLES = {"mnist": "MNIST", "fashion-mnist": "Fashion-MNIST"}
METHOD_ORDER = ("traditional", "attention", "proposal", "truemask", "noisebg")
METHOD_TITLES = {"traditional": "Traditional", "attention": "Attention (AG-CNN)",
                 "proposal": "Proposal", "truemask": "True mask", "noisebg": "Noise background"}

# The paper's Table 1 (six backgrounds, average) and Table 3 (Fashion-MNIST average),
# accuracy in %.
PAPER_TABLE1: dict[tuple[str, str], tuple[float, ...]] = {
    ("mnist", "traditional"): (38.0, 24.3, 61.4, 32.9, 19.7, 11.2, 31.2),
    ("mnist", "attention"): (28.1, 26.8, 57.3, 40.1, 29.3, 25.1, 34.5),
    ("mnist", "proposal"): (92.3, 76.8, 93.1, 93.7, 70.8, 86.2, 85.5),
    ("fashion-mnist", "traditional"): (21.3, 24.6, 36.9, 28.5, 29.6, 16.8, 26.7),
    ("fashion-mnist", "attention"): (18.2, 20.1, 51.8, 26.0, 31.8, 36.2, 30.7),
    ("fashion-mnist", "proposal"): (62.9, 61.5, 66.5, 60.9, 60.8, 45.9, 59.8),
}
PAPER_TABLE3: dict[str, float] = {"proposal": 59.8, "truemask": 72.8, "noisebg": 10.0}


@dataclass
class Group:
    """Every evaluated model of one (dataset, method): usually one per seed."""

    dataset: str
    method: str
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

    def sweep(self) -> dict[float, list[float]]:
        """Percent accuracy per noise rate, one value per model that ran the sweep."""
        out: dict[float, list[float]] = defaultdict(list)
        for e in self.entries:
            for rate, acc in (e.get("noise_sweep") or {}).items():
                out[float(rate)].append(100 * acc)
        return dict(sorted(out.items()))


def load_entries(results_dirs: list[str | os.PathLike]) -> tuple[list[dict[str, Any]],
                                                                  list[dict[str, Any]]]:
    """Model entries of every results.json (a model evaluated twice counts once), and docs."""
    from bgbench.harness.results import read_results

    docs, entries, seen = [], [], set()
    for d in results_dirs:
        doc = read_results(d)
        docs.append(doc | {"path": str(Path(d))})
        for e in doc["models"]:
            key = (e.get("sha256"), e.get("dataset"), tuple(sorted(e["accuracy"])),
                   bool(e.get("noise_sweep")))
            if key not in seen:
                seen.add(key)
                entries.append(e)
    if not entries:
        raise BgbenchError("the results hold no models; run `bgbench eval MODEL.onnx` first")
    return entries, docs


def group_entries(entries: list[dict[str, Any]]) -> list[Group]:
    """Groups in the paper's order (datasets, then methods); unknown methods by model name."""
    groups: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for e in entries:
        method = e["method"] if e["method"] not in ("", "unknown") else Path(e["model"]).stem
        groups[(e["dataset"], method)].append(e)

    def order(key: tuple[str, str]) -> tuple[int, int, str]:
        dataset, method = key
        d = list(DATASET_TITLES).index(dataset) if dataset in DATASET_TITLES else 99
        m = METHOD_ORDER.index(method) if method in METHOD_ORDER else 99
        return d, m, method

    return [Group(d, m, groups[(d, m)]) for d, m in sorted(groups, key=order)]


def _mean_sd(values: list[float]) -> str:
    if not values:
        return "–"
    if len(values) == 1:
        return f"{values[0]:.1f}"
    return f"{statistics.mean(values):.1f} ± {statistics.stdev(values):.1f}"


def _diff(values: list[float], paper: float | None) -> str:
    if not values or paper is None:
        return "–"
    return f"{statistics.mean(values) - paper:+.1f}"


def _table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |",
             "|" + "|".join("---" if i == 0 else "---:" for i in range(len(header))) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def _method_title(method: str) -> str:
    return METHOD_TITLES.get(method, f"`{method}`")


def table1(groups: list[Group]) -> str:
    """Table 1: per dataset, rows ours / paper / difference for each method."""
    cols = [*BACKGROUND_NAMES, "average"]
    parts = []
    for dataset in dict.fromkeys(g.dataset for g in groups):
        rows = []
        for g in (g for g in groups if g.dataset == dataset):
            paper = PAPER_TABLE1.get((dataset, g.method))
            n = len(g.entries)
            rows.append([f"{_method_title(g.method)}: ours ({n} model{'s' * (n > 1)})"]
                        + [_mean_sd(g.values(c)) for c in cols]
                        + [_mean_sd(g.values(k)) for k in ("clean", "gap", "worst", "fooled")])
            if paper:
                rows.append([f"{_method_title(g.method)}: paper"] + [f"{p:.1f}" for p in paper]
                            + [""] * 4)
                rows.append([f"{_method_title(g.method)}: ours − paper"]
                            + [_diff(g.values(c), p) for c, p in zip(cols, paper, strict=True)]
                            + [""] * 4)
        title = DATASET_TITLES.get(dataset, dataset)
        parts.append(f"**{title}**\n\n" + _table(
            ["method", *cols, "clean", "gap", "worst", "fooled by any"], rows))
    return "\n\n".join(parts)


def table2(groups: list[Group]) -> str | None:
    """Table 2: accuracy against the noise rate of the random background (ours only)."""
    swept = [g for g in groups if g.sweep()]
    if not swept:
        return None
    rates = sorted({r for g in swept for r in g.sweep()})
    header = ["noise rate"] + [f"{DATASET_TITLES.get(g.dataset, g.dataset)} "
                               f"{_method_title(g.method)}" for g in swept]
    rows = [[f"{rate:g}"] + [_mean_sd(g.sweep().get(rate, [])) for g in swept]
            for rate in rates]
    return _table(header, rows)


def table3(groups: list[Group]) -> str | None:
    """Table 3: Fashion-MNIST six-background average of the proposal and its ablations."""
    rows = []
    for method, paper in PAPER_TABLE3.items():
        [g] = [g for g in groups if (g.dataset, g.method) == ("fashion-mnist", method)] or [None]
        values = g.values("average") if g else []
        rows.append([_method_title(method), _mean_sd(values), f"{paper:.1f}",
                     _diff(values, paper)])
    if all(r[1] == "–" for r in rows):
        return None
    return _table(["method", "ours", "paper", "ours − paper"], rows)


def model_table(entries: list[dict[str, Any]]) -> str:
    """Every model evaluated, one row each, with how it was run."""
    rows = []
    for e in entries:
        meta = e.get("metadata") or {}
        acc = e["accuracy"]
        rows.append([f"`{Path(e['model']).name}`", e["dataset"], e["method"],
                     meta.get("bgbench.seed", "–")]
                    + [_pct(acc.get(c)) for c in ("clean", *BACKGROUND_NAMES)]
                    + [_pct(e["background_average"]), _pct(e["fooled_by_any"]),
                       f"{e['provider'].removesuffix('ExecutionProvider')} ×{e['threads']}",
                       f"{e['images_per_second']:.0f}"])
    return _table(["model", "dataset", "method", "seed", "clean", *BACKGROUND_NAMES, "average",
                   "fooled", "provider", "img/s"], rows)


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.1f}"


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> Path:
    plt = _pyplot()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=80)
    plt.close(fig)
    return path


def noise_figure(groups: list[Group], path: Path) -> Path | None:
    """Accuracy against noise rate, one line per (dataset, method), mean over seeds."""
    swept = [g for g in groups if g.sweep()]
    if not swept:
        return None
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5, 3.2))
    for g in swept:
        sweep = g.sweep()
        ax.plot(list(sweep), [statistics.mean(v) for v in sweep.values()], marker=".",
                label=f"{DATASET_TITLES.get(g.dataset, g.dataset)} {g.method}")
    ax.set_xlabel("noise rate of the random background")
    ax.set_ylabel("accuracy (%)")
    ax.set_ylim(0, 100)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    return _save(fig, path)


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
        composite = m * x + (1 - m) * b
    columns = {"image": x, "mask": m, "background": b, "composite": composite}
    plt = _pyplot()
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
    return _save(fig, path)


def find_run_dirs(runs: list[str | os.PathLike], entries: list[dict[str, Any]]) -> list[Path]:
    """Run directories of the proposal models in ``entries``, looked up in ``runs``.

    A model's run is named by its ``bgbench.run`` metadata; each ``runs`` path may be a run
    directory itself or a folder of them.
    """
    wanted = sorted({(e.get("metadata") or {}).get("bgbench.run", "") for e in entries
                     if e["method"] == "proposal"} - {""})
    found = []
    for name in wanted:
        candidates = [p for root in map(Path, runs) for p in (root / name, root)
                      if p.name == name and (p / "config.json").is_file()]
        if candidates:
            found.append(candidates[0])
    return found


def write_report(results_dirs: list[str | os.PathLike], out: str | os.PathLike, *,
                 runs: list[str | os.PathLike] | None = None, force: bool = False,
                 data_root: str | os.PathLike | None = None) -> Path:
    """Write ``out`` (Markdown) and its figures; returns the report's path."""
    out = Path(out)
    if out.exists() and not force:
        raise BgbenchError(f"{out} already exists; choose another --out or pass --force")
    entries, docs = load_entries(list(results_dirs))
    groups = group_entries(entries)
    figures = out.parent / "figures"
    figures.mkdir(parents=True, exist_ok=True)
    notes: list[str] = []

    md = ["# bgbench report", ""]
    md.append("Accuracy in %. Where a method has several models (seeds), ours is the mean ± "
              "standard deviation over them and the difference is from the mean. The paper's "
              "numbers are those published by Cruz & Cardoso.")
    md.append("")
    for doc in docs:
        limited = f", first {doc['limit']} test images only" if doc.get("limit") else ""
        md.append(f"- `{doc['path']}`: bgbench {doc.get('bgbench_version')}, commit "
                  f"`{doc.get('git_commit')}`, {doc.get('created')}{limited}")
    md += ["", "## Table 1: accuracy on the six test backgrounds", "", table1(groups), ""]
    md += ["*gap*: clean minus the six-background average, in points. *fooled by any*: share "
           "of test images classified correctly on the clean set but wrongly on at least one "
           "background.", ""]
    t2 = table2(groups)
    md += ["## Table 2: accuracy against the noise rate of the random background", ""]
    if t2:
        md += ["bgbench does not carry the paper's Table 2 values, so only ours are shown.",
               "", t2, ""]
        md += ["![noise sweep](figures/noise_sweep.png)", ""]
        noise_figure(groups, figures / "noise_sweep.png")
    else:
        md += ["Not evaluated: run `bgbench eval --noise-sweep`.", ""]
    md += ["## Table 3: Fashion-MNIST, the proposal and its ablations (six-background average)",
           ""]
    t3 = table3(groups)
    md += [t3 if t3 else "No Fashion-MNIST proposal, true-mask or noise-background model "
           "was evaluated.", ""]
    md += ["## Every model", "", model_table(entries), ""]

    md += ["## Figures", "", "### The test backgrounds", ""]
    datasets = [d for d in DATASET_TITLES if any(g.dataset == d for g in groups)]
    _, note = gallery_figure(datasets, figures / "gallery.png", data_root)
    if note:
        notes.append(note)
    md += ["![background gallery](figures/gallery.png)", ""]

    md += ["### Learned masks and generated backgrounds (proposal runs)", ""]
    run_dirs = find_run_dirs(runs or [], entries)
    if not run_dirs:
        md += ["No proposal run directory was found (pass `--runs DIR` with the training "
               "runs), so this figure is left out.", ""]
    for run_dir in run_dirs:
        name = f"generators-{run_dir.name}.png"
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                generator_figure(run_dir, figures / name, data_root)
            md += [f"`{run_dir.name}`: test images, learned masks, generated backgrounds and "
                   "their composites.", "", f"![{run_dir.name}](figures/{name})", ""]
        except (BgbenchError, ImportError) as err:
            md += [f"- `{run_dir.name}`: figure left out ({err})", ""]
    if notes:
        md += ["## Notes", ""] + [f"- {n}" for n in notes] + [""]
    write_text(out, "\n".join(md))
    return out
