"""The paper's side of the report: Cruz & Cardoso's Tables 1 and 3, the presets the report
singles out, and how datasets and methods are titled and coloured."""

from __future__ import annotations

from bgbench import backgrounds as bgs

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
_METHOD_COLOURS = dict(zip(METHOD_ORDER, ("tab:gray", "tab:orange", "tab:blue", "tab:green",
                                          "tab:purple"), strict=True))


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
