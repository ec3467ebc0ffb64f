"""Training options: one frozen dataclass with its validation, and the presets.

Every hyper-parameter the paper leaves open is a field of ``TrainOptions``, with its help
text and allowed values. The field defaults are the ``full`` preset; every other preset is
written as its differences from it. A run's options are a preset plus explicit overrides
(``resolve``), written to its ``config.json`` as a flat dictionary. Torch-free, so the CLI
builds ``bgbench train --help`` from it without importing torch.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from bgbench import records
from bgbench.attack.families import NAMES as FAMILY_NAMES
from bgbench.errors import ParameterError
from bgbench.vocab import PRESET_ALIASES, PRESETS, read_preset

MASK_TRANSFORMS = ("none", "0.5", "otsu", "quantile")
NOISE_KINDS = ("uniform", "bernoulli")
AUGMENTS = ("none", "shift")
BG_SAMPLING = ("none", "bernoulli", "blocks")
PRECISIONS = ("fp32", "bf16")
# The families stage 3 draws with a family share: frame, clock and ramp are left out, so
# the worst-case search keeps families (and the paper's border and clock) never trained on.
DEFAULT_TRAIN_FAMILIES: tuple[str, ...] = ("stripes", "board", "circles", "noise")


def _option(default: Any, help: str, *, choices: tuple[str, ...] | None = None,
            minimum: float | None = None, maximum: float | None = None) -> Any:
    return field(default=default, metadata={"help": help, "choices": choices,
                                            "minimum": minimum, "maximum": maximum})


@dataclass(frozen=True)
class TrainOptions:
    """Every training option of a run, checked on construction (``ParameterError`` names
    the option). The defaults are the ``full`` preset."""

    epochs: int = _option(5, "stage-1 classifier epochs (AG-CNN: global-branch epochs)",
                          minimum=1)
    mask_epochs: int = _option(2, "stage-2 mask-generator epochs", minimum=1)
    adv_epochs: int = _option(12, "stage-3 adversarial epochs", minimum=1)
    local_epochs: int = _option(3, "AG-CNN local-branch and fusion epochs", minimum=1)
    batch_size: int = _option(128, "global batch size (split across torchrun processes)",
                              minimum=1)
    lr: float = _option(1e-3, "classifier Adam learning rate", minimum=0)
    mask_lr: float = _option(3e-3, "mask-generator Adam learning rate", minimum=0)
    gen_lr: float = _option(1e-3, "background-generator Adam learning rate", minimum=0)
    train_subset: int = _option(0, "train on this many images of the training split (0: all)",
                                minimum=0)
    val_size: int = _option(5000, "images held out of the training set for validation",
                            minimum=1)
    split_seed: int = _option(0, "seed of the fixed train/validation split", minimum=0)
    augment: str = _option("none", "training augmentation: none, or random shifts of up to "
                           "2 px", choices=AUGMENTS)
    area_limit: float = _option(0.2, "mask area limit a in L_A = max(0, mean(m) - a)",
                                minimum=0, maximum=1)
    area_weight: float = _option(1.0, "weight of L_A in the stage-2 loss", minimum=0)
    tv_weight: float = _option(0.0, "weight of the mask's total variation in the stage-2 loss",
                               minimum=0)
    unet_width: int = _option(8, "mask U-Net filters at full resolution", minimum=1)
    mask_transform: str = _option("otsu", "transform T of the learned mask before stage 3",
                                  choices=MASK_TRANSFORMS)
    mask_dilation: int = _option(2, "dilate the stage-3 mask by a disk of this radius "
                                 "(0: none)", minimum=0)
    gen_width: int = _option(32, "background-generator filters", minimum=4)
    bg_limit: float = _option(0.5, "background mean limit in L_BA = max(mean(b) - limit, 0)",
                              minimum=0, maximum=1)
    bg_weight: float = _option(50.0, "weight of L_BA in the generator loss", minimum=0)
    bg_sample: str = _option("blocks", "stage 3: use f_b's output as is, or as the "
                             "probabilities of a binary background sampled per pixel or per "
                             "1/2/4-px block (straight-through gradient)", choices=BG_SAMPLING)
    gen_steps: int = _option(1, "generator steps per classifier step in stage 3", minimum=1)
    clean_fraction: float = _option(0.1, "share of each stage-3 batch left clean (mask 1)",
                                    minimum=0, maximum=1)
    soft_share: float = _option(0.0, "stage 3: share of the classifier's backgrounds taken as "
                                "f_b's soft output instead of a binary sample", minimum=0,
                                maximum=1)
    grey_share: float = _option(0.2, "stage 3: share of the classifier's backgrounds replaced "
                                "by a random smooth grey field (a 1/2/4/8-cell grid of uniform "
                                "levels, upsampled)", minimum=0, maximum=1)
    family_share: float = _option(0.5, "stage 3: share of the classifier's backgrounds replaced "
                                  "by members of the threat model's families "
                                  "(`train_families`), drawn admissible", minimum=0, maximum=1)
    family_candidates: int = _option(8, "stage 3: family members drawn per family background; "
                                     "the classifier is shown the one of highest "
                                     "cross-entropy (1: a random member)", minimum=1)
    family_moves: int = _option(4, "stage 3: local moves (one family parameter stepped) "
                                "from each family background's hardest candidate, each kept "
                                "where it raises the cross-entropy", minimum=0)
    family_precision: str = _option("bf16", "stage 3: precision of the family search's "
                                    "scoring forward passes (no gradients): float32, or "
                                    "bfloat16 autocast (needs native bf16: avx512_bf16/AMX "
                                    "or CUDA sm80+; always bf16 when `precision` is)",
                                    choices=PRECISIONS)
    train_families: str = _option(",".join(DEFAULT_TRAIN_FAMILIES), "stage 3: the families "
                                  "`family_share` draws, comma-separated (from "
                                  f"{', '.join(FAMILY_NAMES)})")
    intensity_share: float = _option(0.3, "stage 3: share of the classifier's inputs mapped "
                                     "by a random a*x + c onto a sub-interval of [0, 1] at "
                                     "least 0.25 long (contrast, black level, haze)",
                                     minimum=0, maximum=1)
    pixel_dropout_share: float = _option(0.3, "stage 3: share of the classifier's images "
                                         "whose pixels are each set to 0 at a rate drawn "
                                         "uniformly in [0, 0.3], before compositing (holes "
                                         "in the object)", minimum=0, maximum=1)
    average_epochs: int = _option(4, "stage 3's classifier is the mean of its weights at the "
                                  "end of its last N epochs (all of them if fewer; 0: the "
                                  "weights of its best epoch by the validation score)",
                                  minimum=0)
    select_budget: int = _option(0, "stage 3 keeps the epoch of highest adaptive worst-case "
                                 "accuracy on the validation images (`bgbench attack`'s search "
                                 "at this budget, its own seed); 0: of highest mean clean and "
                                 "uniform-noise validation accuracy", minimum=0)
    select_images: int = _option(2000, "stage 3: the first N validation images "
                                 "`select_budget`'s search runs on (0: all)", minimum=0)
    select_epochs: int = _option(4, "stage 3: with `select_budget`, only the last N epochs are "
                                 "searched and can be kept", minimum=1)
    noise_kind: str = _option("uniform", "noisebg: background noise", choices=NOISE_KINDS)
    noise_rate: float = _option(0.5, "noisebg: probability of a set pixel for bernoulli noise",
                                minimum=0, maximum=1)
    attention_threshold: float = _option(0.7, "AG-CNN heat-map threshold", minimum=0,
                                         maximum=1)
    cc_iterations: int = _option(32, "AG-CNN label-propagation rounds for connected "
                                 "components", minimum=1)
    precision: str = _option("fp32", "the networks' forward and backward in float32, or in "
                             "bfloat16 autocast (float32 weights, optimizer, losses and "
                             "composites; needs native bf16: avx512_bf16/AMX or CUDA sm80+)",
                             choices=PRECISIONS)

    def __post_init__(self) -> None:
        if self.soft_share + self.grey_share + self.family_share > 1:
            raise ParameterError(f"`soft_share` + `grey_share` + `family_share` must be at most "
                                 f"1 (the rest stays binary), got {self.soft_share} + "
                                 f"{self.grey_share} + {self.family_share}")
        for f in dataclasses.fields(self):
            value = _typed(f.name, f.type, getattr(self, f.name))
            object.__setattr__(self, f.name, value)
            _check_range(f.name, value, f.metadata)
        try:
            train_families(self)
        except ValueError as err:
            raise ParameterError(f"`train_families`: {err}") from None

    def as_dict(self) -> dict[str, Any]:
        """The options as ``config.json`` stores them: a flat name -> value dictionary,
        without the options of ``UNRECORDED_AT`` at that value."""
        return {k: v for k, v in dataclasses.asdict(self).items()
                if k not in UNRECORDED_AT or v != UNRECORDED_AT[k]}

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TrainOptions:
        """The options of a ``config.json``; an unknown or missing name is an error."""
        names = {f.name for f in dataclasses.fields(cls)}
        values = {**OFF_WHEN_ABSENT, **UNRECORDED_AT, **values}
        unknown = sorted(set(values) - names)
        missing = sorted(names - set(values))
        if unknown or missing:
            raise ParameterError(f"`options` do not match this bgbench's training options "
                                 f"(unknown: {', '.join(unknown) or 'none'}; missing: "
                                 f"{', '.join(missing) or 'none'})")
        return cls(**values)


# Options a config.json may lack (added after such runs were made), oldest first: these
# values switch them off, so such a config still describes the run it made.
OFF_WHEN_ABSENT: dict[str, Any] = {"soft_share": 0.0, "grey_share": 0.0,
                                   "intensity_share": 0.0}
# Options a config.json records only away from these values (each switches its option
# off), so that the config.json and options hash of anything trained without the option,
# before it existed or since, stay what they were. An absent one has this value.
UNRECORDED_AT: dict[str, Any] = {"precision": "fp32", "family_share": 0.0, "family_candidates": 1,
                                  "family_moves": 0, "family_precision": "fp32",
                                  "average_epochs": 0, "select_budget": 0, "select_images": 2000,
                                  "select_epochs": 4,
                                  "pixel_dropout_share": 0.0,
                                  "train_families": ",".join(DEFAULT_TRAIN_FAMILIES)}


def train_families(opts: TrainOptions) -> tuple[str, ...]:
    """The family names of ``opts.train_families``: a comma-separated list of distinct
    families (``ValueError`` naming an unknown or repeated one, or an empty list)."""
    text = opts.train_families
    names = tuple(part.strip() for part in text.split(",") if part.strip())
    unknown = [n for n in names if n not in FAMILY_NAMES]
    if unknown or not names or len(set(names)) != len(names):
        problem = (f"unknown {', '.join(unknown)}" if unknown
                   else "none given" if not names else "a family named twice")
        raise ValueError(f"must be a comma-separated list of distinct families from "
                         f"{', '.join(FAMILY_NAMES)} ({problem}), got {text!r}")
    return names


def _typed(name: str, kind: str, value: Any) -> Any:
    """``value`` as the option's type: ints for int options, ints or floats (stored as
    float, so config.json is the same either way) for float options, str for str."""
    if kind == "float" and isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    wanted = {"int": int, "str": str}.get(kind)
    if wanted is None or not isinstance(value, wanted) or isinstance(value, bool):
        expected = {"int": "an integer", "float": "a number", "str": "a string"}[kind]
        raise ParameterError(f"`{name}` must be {expected}, got {value!r}")
    return value


def _check_range(name: str, value: Any, meta: dict[str, Any]) -> None:
    if meta["choices"] is not None and value not in meta["choices"]:
        raise ParameterError(f"`{name}` must be one of {', '.join(meta['choices'])}, "
                             f"got {value!r}")
    if meta["minimum"] is not None and value < meta["minimum"]:
        raise ParameterError(f"`{name}` must be at least {meta['minimum']}, got {value}")
    if meta["maximum"] is not None and value > meta["maximum"]:
        raise ParameterError(f"`{name}` must be at most {meta['maximum']}, got {value}")


# Each preset as its differences from the defaults (``full``).
PRESET_CHANGES: dict[str, dict[str, Any]] = {
    # Fits about 2 minutes per method on 2 CPU cores: a subset and short stages. The choices
    # it shares with ``full`` (made on the validation split) make learned masks tight
    # (threshold, dilation like the test protocol's object region), keep clean accuracy (a
    # clean share of each batch), and stop the generator collapsing to one flat grey
    # background (a strong L_BA, binary backgrounds sampled from its output at several
    # block sizes), and cover grey and smooth backgrounds and whole-image intensity changes
    # as well as binary ones (20% of stage 3's backgrounds replaced by grey fields, 30% of
    # its inputs intensity-mapped), and train against the threat model's families with holes
    # in the object.
    # Stage 3 keeps its best epoch, not an average: two epochs are too few to average. Its
    # family search is the cheaper one (the hardest of 4 refined by 2 moves) scored in
    # float32, which runs at full speed on any CPU.
    "quick": {"epochs": 2, "mask_epochs": 1, "adv_epochs": 2, "local_epochs": 1,
              "train_subset": 10000, "val_size": 2000, "average_epochs": 0,
              "family_candidates": 4, "family_moves": 2, "family_precision": "fp32"},
    # bgbench's recommended full-scale setting: all the training data, longer stages (12
    # stage-3 epochs, chosen on the validation split: binary backgrounds are only part of
    # what stage 3 shows the classifier, and its family backgrounds are mined for the
    # classifier as it is, so it needs more epochs than the five of ``faithful``), and a
    # stage-3 adversary as strong as the worst-case search: half of the backgrounds are
    # threat-model family members, the hardest of 8 refined by 4 local moves, scored in
    # bfloat16 (in float32 a run takes over twice the `epochs` step's; bf16 needs native
    # bf16 instructions, and a CPU without them is told to pass `family_precision` fp32),
    # and 30% of the images get holes (pixel dropout), which binary noise backgrounds
    # otherwise teach the classifier to read as background (each chosen on the validation
    # split's worst-case search; the ladder in bgbench/ladder.py shows them). Stage 3 keeps
    # the mean of its classifier's weights over its last 4 epochs, which the validation
    # split's worst-case search scores above any one of them.
    "full": {},
    # The most faithful reading of the paper: its TV weight, untransformed masks,
    # composites only, L_BA with weight 1, soft backgrounds, no grey fields, intensity
    # maps, family backgrounds or holes.
    "faithful": {"mask_epochs": 3, "adv_epochs": 5, "mask_lr": 1e-3, "tv_weight": 0.1,
                 "unet_width": 16, "mask_transform": "none", "mask_dilation": 0,
                 "clean_fraction": 0.0, "bg_weight": 1.0, "bg_sample": "none",
                 "grey_share": 0.0, "intensity_share": 0.0, "family_share": 0.0,
                 "family_candidates": 1, "family_moves": 0, "family_precision": "fp32",
                 "pixel_dropout_share": 0.0, "average_epochs": 0},
}


def check_preset(preset: str) -> str:
    """``preset`` if it names a preset; otherwise a ``ParameterError`` naming the choices."""
    if preset in PRESET_ALIASES:
        same = read_preset(preset)
        others = ", ".join(f"{p.name!r} ({p.summary})" for p in records.PRESETS
                           if p.name != same)
        raise ParameterError(f"`preset` {preset!r} is not a preset: use {same!r} (the same "
                             f"values), or another: {others}")
    if preset not in PRESETS:
        raise ParameterError(f"unknown `preset` {preset!r}; choose from {', '.join(PRESETS)}")
    return preset


def resolve(preset: str, overrides: dict[str, Any] | None = None) -> TrainOptions:
    """The preset's options with the non-None ``overrides`` applied, checked."""
    changes = dict(PRESET_CHANGES[check_preset(preset)])
    names = {f.name for f in dataclasses.fields(TrainOptions)}
    for name, value in (overrides or {}).items():
        if name not in names:
            raise ParameterError(f"unknown training option `{name}`; the options are "
                                 f"{', '.join(sorted(names))}")
        if value is not None:
            changes[name] = value
    return TrainOptions(**changes)


def option_help() -> dict[str, tuple[type, dict[str, Any], str]]:
    """For each option: its Python type, its metadata (help, choices, bounds) and its
    default in every preset, as ``quick/full/faithful``."""
    defaults = {p: resolve(p) for p in PRESETS}
    return {f.name: ({"int": int, "float": float, "str": str}[f.type], dict(f.metadata),
                     "/".join(str(getattr(defaults[p], f.name)) for p in PRESETS))
            for f in dataclasses.fields(TrainOptions)}
