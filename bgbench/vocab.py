"""The names bgbench accepts: datasets, training methods, training presets, test suites and
model input layouts.

Torch-free, so every command builds its choices from here without importing torch. The
names are those of the records of ``bgbench.records``; the background names are the keys of
``bgbench.backgrounds.BACKGROUNDS`` (also torch-free).
"""

from __future__ import annotations

from bgbench import records

DATASETS: tuple[str, ...] = tuple(d.name for d in records.DATASETS)
METHODS: tuple[str, ...] = tuple(m.name for m in records.METHODS)
# The paper's comparison; the other methods are its baselines and ablations.
MAIN_METHODS: tuple[str, ...] = tuple(m.name for m in records.METHODS if m.main)
# The methods with a stage 3 (an adversarial stage), whose training its options change.
ADVERSARIAL_METHODS: tuple[str, ...] = tuple(
    m.name for m in records.METHODS if any(s.startswith("adversarial") for s in m.stages))
# The methods whose stage 3 can draw threat-model family backgrounds (``family_share``).
FAMILY_METHODS: tuple[str, ...] = tuple(
    m.name for m in records.METHODS if set(m.stages) & set(records.MIXED_BACKGROUND_STAGES))
PRESETS: tuple[str, ...] = tuple(p.name for p in records.PRESETS)
DEFAULT_PRESET = records.DEFAULT_PRESET
# Names some run directories record for a preset (same values); each is read back as its
# preset and refused as a preset to train with.
PRESET_ALIASES: dict[str, str] = {a: p.name for p in records.PRESETS for a in p.aliases}
# Test suites: the paper's six backgrounds, or those and bgbench's extended suite
# (``bgbench.extended``).
SUITES: tuple[str, ...] = tuple(s.name for s in records.SUITES)
PAPER_SUITE = records.PAPER_SUITE.name
EXTENDED_SUITE = records.EXTENDED_SUITE.name
DEFAULT_SUITE = records.DEFAULT_SUITE
# Input layouts of an evaluated model: [N,1,S,S], [N,S,S,1], [N,S,S], [N,S*S].
LAYOUTS: tuple[str, ...] = ("nchw", "nhwc", "hw", "flat")


def read_preset(recorded: str | None) -> str | None:
    """The preset a recorded preset name stands for: an alias as its preset, any other name
    (or None) as it is."""
    return PRESET_ALIASES.get(recorded, recorded)


def listed(names: list[str] | tuple[str, ...], last: str = "and") -> str:
    """Names as a sentence lists them: ``a``, ``a and b``, ``a, b and c`` (``last`` joins the
    last two)."""
    return f" {last} ".join(filter(None, [", ".join(names[:-1]), names[-1]]))


def preset_choices_help() -> str:
    """The presets with what each is, as a help text lists them: ``a (...), b (...) or c (...)``."""
    return listed([f"{p.name} ({p.summary})" for p in records.PRESETS], "or")


def suite_choices_help() -> str:
    """Each suite with what it evaluates, the default marked: ``a: ... (default); b: ...``."""
    return "; ".join(f"{s.name}: {s.summary}" + (" (default)" if s.name == DEFAULT_SUITE else "")
                     for s in records.SUITES)
