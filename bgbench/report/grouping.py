"""Results entries grouped by (dataset, method, preset): a group averages like with like (the
same test images, test sets and input size, and for a method with a stage 3 the same
training options: ``group_preset``), and how a group is titled in every table."""

from __future__ import annotations

import os
import statistics
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bgbench.errors import BgbenchError
from bgbench.report.paper import DATASET_TITLES, FAITHFUL_PRESET, METHOD_ORDER, PAPER_INPUT_SIZE, method_title
from bgbench.tables import MISSING
from bgbench.vocab import read_preset


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

    @property
    def n_extended(self) -> int:
        """The models evaluated with the extended suite."""
        return sum(1 for e in self.entries if e.get("extended_accuracy"))

    def extended(self, key: str) -> list[float]:
        """Percentages of an extended-suite set (or ``background_average`` /
        ``photometric_average``: each model's, over the sets it was evaluated on), one per
        model evaluated with it."""
        out = []
        for e in self.entries:
            value = (e.get(f"extended_{key}") if key.endswith("_average")
                     else (e.get("extended_accuracy") or {}).get(key))
            if value is not None:
                out.append(100 * value)
        return out

    def short_of_suite(self, key: str) -> bool:
        """Whether a model's ``key`` average (``background_average`` or
        ``photometric_average``) leaves out a set of today's suite: a result made before the
        set joined it."""
        from bgbench.extended import BACKGROUND_SETS, PHOTOMETRIC_SETS

        averaged = {"background_average": BACKGROUND_SETS,
                    "photometric_average": PHOTOMETRIC_SETS}[key]
        return any(not set(averaged) <= set(e["extended_accuracy"])
                   for e in self.entries if e.get("extended_accuracy"))

    @property
    def input_size(self) -> tuple[int, str]:
        """The input size and size rule its models were scored at (one per group)."""
        return entry_input_size(self.entries[0])

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


def entry_preset(entry: dict[str, Any]) -> str | None:
    """The entry's training preset, an alias read as the preset it names."""
    preset = (entry.get("metadata") or {}).get("bgbench.preset")
    return read_preset(preset)


def group_preset(entry: dict[str, Any]) -> str | None:
    """The preset the entry's group is named by: its preset, and for a method with a stage 3
    whose recorded options are not that preset's today, what they were
    (``bgbench.ladder.recipe``), e.g. ``full, ladder step epochs``: models trained with
    different stage-3 options are not averaged together, nor paired as one preset's."""
    from bgbench.ladder import recipe
    from bgbench.vocab import ADVERSARIAL_METHODS

    preset = entry_preset(entry)
    if preset is None or entry.get("method") not in ADVERSARIAL_METHODS:
        return preset
    other = recipe(preset, (entry.get("metadata") or {}).get("bgbench.options_sha256"))
    return f"{preset}, {other}" if other else preset


def entry_input_size(entry: dict[str, Any]) -> tuple[int, str]:
    """The entry's input size and size rule."""
    from bgbench.harness.sizes import SIZE_RULES

    size = int(entry.get("input_size", PAPER_INPUT_SIZE))
    return size, entry.get("size_rule", SIZE_RULES.get(size, "no recorded size rule"))


Evaluation = tuple[int, tuple[str, ...], tuple[float, ...], tuple[int, str]]


def _evaluation(entry: dict[str, Any]) -> Evaluation:
    """What a model was scored on: test images, test sets, noise rates, input size."""
    rates = tuple(sorted(float(r) for r in (entry.get("noise_sweep") or {})))
    return entry["n_images"], tuple(sorted(entry["accuracy"])), rates, entry_input_size(entry)


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
        groups[(e["dataset"], method, group_preset(e))].append(e)

    def order(key: tuple[str, str, str | None]) -> tuple[int, int, str, int, str]:
        dataset, method, preset = key
        d = list(DATASET_TITLES).index(dataset) if dataset in DATASET_TITLES else 99
        m = METHOD_ORDER.index(method) if method in METHOD_ORDER else 99
        return d, m, method, preset != FAITHFUL_PRESET, preset or ""

    for key, members in groups.items():
        _check_comparable(key, members)
    return [Group(*key, groups[key]) for key in sorted(groups, key=order)]


def measured_entries(group: Group) -> list[dict[str, Any]]:
    """The group's entries with the measures of ``bgbench.harness.measures``."""
    return [e for e in group.entries if e.get("measures")]


def mean_sd(values: list[float]) -> str:
    """``mean ± sd`` of percentages (one value as itself, none as ``MISSING``)."""
    if not values:
        return MISSING
    if len(values) == 1:
        return f"{values[0]:.1f}"
    return f"{statistics.mean(values):.1f} ± {statistics.stdev(values):.1f}"


def group_title(group: Group, groups: list[Group], title: str | None = None) -> str:
    """``title`` (default: the method's), with the preset where the groups hold several,
    and the input size where it is not the paper's."""
    title = title or method_title(group.method)
    if len({g.preset for g in groups}) > 1:
        title += f" [{group.preset or 'no preset'}]"
    size, rule = group.input_size
    if size != PAPER_INPUT_SIZE:
        title += f" ({_size_text(size, rule)})"
    return title


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
                       f"{group_title(g, self.groups)}" for g in self.groups}

    def find(self, group: Group) -> Group | None:
        """The worst-case group of the same dataset, method and preset as ``group``."""
        return next((g for g in self.groups if (g.dataset, g.method, g.preset)
                     == (group.dataset, group.method, group.preset)), None)
