"""The paper's side of the report: Cruz & Cardoso's Tables 1 and 3, the presets the report
singles out, and how datasets and methods are titled and coloured, all from the records
(``bgbench.records``, ``bgbench.backgrounds.BACKGROUNDS``)."""

from __future__ import annotations

from bgbench import backgrounds as bgs
from bgbench import records
from bgbench.vocab import METHODS

BACKGROUND_NAMES = tuple(bgs.BACKGROUNDS)
DATASET_TITLES = {d.name: d.title for d in records.DATASETS}
METHOD_ORDER = METHODS
METHOD_TITLES = {m.name: m.title for m in records.METHODS}
# Cruz & Cardoso's Table 1 (each background in BACKGROUND_NAMES order, None where the paper
# has no such column, then their average) and Table 3 (Fashion-MNIST six-background
# average), accuracy in %.
PAPER_TABLE1: dict[tuple[str, str], tuple[float | None, ...]] = {
    (dataset, m.name): (*(None if b.paper_column is None else row[b.paper_column]
                          for b in bgs.BACKGROUNDS.values()), row[-1])
    for dataset in DATASET_TITLES for m in records.METHODS if (row := m.paper.get(dataset))}
PAPER_TABLE3: dict[str, float] = {m.name: m.paper_table3 for m in records.METHODS
                                  if m.paper_table3 is not None}
# The preset that reads the paper literally; its rows come before the other presets'.
FAITHFUL_PRESET = "faithful"
# The preset that checks the pipeline end to end on a tenth of the data, in minutes.
QUICK_PRESET = "quick"
# The paper's input size: what results.json entries written before the harness recorded
# ``input_size`` and ``size_rule`` were evaluated at.
PAPER_INPUT_SIZE = bgs.SIZE
_METHOD_COLOURS = {m.name: m.colour for m in records.METHODS}


def method_title(method: str) -> str:
    """The method's title in the report (an unknown method as its name in code)."""
    return METHOD_TITLES.get(method, f"`{method}`")


def method_colour(method: str) -> str | None:
    """The colour of ``method`` in every figure (None: matplotlib's next one)."""
    return _METHOD_COLOURS.get(method)


def paper_average(dataset: str, method: str) -> float | None:
    """The paper's six-background average for ``method`` on ``dataset``, if it gives one."""
    if (dataset, method) in PAPER_TABLE1:
        return PAPER_TABLE1[(dataset, method)][-1]
    return PAPER_TABLE3.get(method) if dataset == "fashion-mnist" else None
