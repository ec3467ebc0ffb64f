"""The report's figures (small PNGs under ``figures/``): the noise sweep, the background
gallery, a proposal run's masks and generated backgrounds, and confusion matrices."""

from __future__ import annotations

import json
import os
import statistics
from pathlib import Path
from typing import Any

import numpy as np

from bgbench import backgrounds as bgs
from bgbench.errors import BgbenchError
from bgbench.report.grouping import Group, entry_preset, group_title, measured_entries
from bgbench.report.paper import BACKGROUND_NAMES, DATASET_TITLES, FAITHFUL_PRESET, method_colour
from bgbench.vocab import read_preset


def noise_figure(groups: list[Group], path: Path) -> Path | None:
    """Accuracy against noise rate: one panel per dataset, one line per method (mean over
    seeds) with the seeds' min..max as a band; the legend sits outside the panels."""
    from bgbench.plotting import panels_by_dataset

    swept = [g for g in groups if g.sweep()]
    if not swept:
        return None
    banded = False

    def draw(ax: Any, panel: list[Group]) -> dict[str, Any]:
        nonlocal banded
        handles = {}
        for g in panel:
            sweep = g.sweep()
            rates = list(sweep)
            colour = method_colour(g.method)
            label = f"{group_title(g, groups)} ({len(g.entries)} seed"
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
        return handles

    return panels_by_dataset(
        swept, path, panel_width=3.6, margin=1.6, xlabel="noise rate of the random background",
        titles=DATASET_TITLES, draw=draw,
        suptitle=lambda: "Lines: mean over seeds; bands: min..max over seeds" if banded
        else "One seed per line")


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
    from bgbench.plotting import pyplot, save_png
    from bgbench.train import load_config, load_generators
    from bgbench.train.stage3_samples import stage3_samples

    config = load_config(run_dir)
    mask_gen, bg_gen = load_generators(run_dir)
    if mask_gen is None or bg_gen is None:
        raise BgbenchError(f"{run_dir} has no mask or background generator")
    images = load_numpy(config.dataset, "test", data_root=data_root)[0][:n]
    x = torch.from_numpy(bgs.to_float(bgs.pad(images))[:, None])
    columns = stage3_samples(config.options, mask_gen, bg_gen, x)
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
    runs = {((e.get("metadata") or {}).get("bgbench.run", ""), entry_preset(e)) for e in entries
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
                if preset is None or read_preset(recorded) == preset:
                    return path
    return None


def generator_figure_name(run: str, preset: str | None) -> str:
    """The file name, under ``figures/``, of a proposal run's generator figure."""
    return f"generators-{preset or 'no-preset'}-{run}.png"


def worst_background(group: Group) -> str | None:
    """The background with the lowest mean accuracy over the group's measured models."""
    measured = measured_entries(group)
    means = {n: statistics.fmean(e["accuracy"][n] for e in measured)
             for n in BACKGROUND_NAMES
             if measured and all(n in e["accuracy"] and n in e["measures"] for e in measured)}
    return min(means, key=means.get) if means else None


def confusion_figure_name(dataset: str) -> str:
    """The file name, under ``figures/``, of the confusion figure of ``dataset``."""
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
        measured = measured_entries(g)
        matrix = np.sum([np.array(e["measures"][worst]["confusion"]) for e in measured], axis=0)
        totals = matrix.sum(axis=1, keepdims=True)
        rates = np.divide(matrix, totals, out=np.zeros(matrix.shape), where=totals > 0)
        image = ax.imshow(rates, cmap="viridis", vmin=0, vmax=1)
        accuracy = 100 * statistics.fmean(e["accuracy"][worst] for e in measured)
        ax.set_title(f"{group_title(g, groups)}\n{worst} ({accuracy:.1f}%)", fontsize=7)
        ax.set_xlabel("predicted class", fontsize=7)
        ax.set_xticks(range(matrix.shape[1]))
        ax.set_yticks(range(matrix.shape[0]))
        ax.tick_params(labelsize=6)
    axes[0, 0].set_ylabel("true class", fontsize=7)
    fig.colorbar(image, ax=axes[0].tolist(), shrink=0.8, label="share of the true class")
    fig.suptitle(f"{DATASET_TITLES.get(dataset, dataset)}: confusion on each method's worst "
                 "background", fontsize=8)
    return save_png(fig, path)
