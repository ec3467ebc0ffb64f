"""The names bgbench accepts: datasets, training methods, training presets, test suites and
model input layouts.

Torch-free, so every command builds its choices from here without importing torch. The
background names are the keys of ``bgbench.backgrounds.BACKGROUNDS`` (also torch-free).
"""

from __future__ import annotations

DATASETS: tuple[str, ...] = ("mnist", "fashion-mnist")
METHODS: tuple[str, ...] = ("traditional", "attention", "proposal", "truemask", "noisebg")
# The paper's comparison; the other methods are its baselines and ablations.
MAIN_METHODS: tuple[str, ...] = ("traditional", "proposal")
PRESETS: tuple[str, ...] = ("quick", "full", "faithful")
DEFAULT_PRESET = "quick"
# A name some run directories record for the ``full`` preset (same values); it is read
# back as ``full`` and refused as a preset to train with.
PRESET_ALIASES: dict[str, str] = {"paper": "full"}
# Test suites: the paper's six backgrounds, or those and bgbench's extended suite
# (``bgbench.extended``).
SUITES: tuple[str, ...] = ("paper", "extended")
DEFAULT_SUITE = "paper"
# Input layouts of an evaluated model: [N,1,S,S], [N,S,S,1], [N,S,S], [N,S*S].
LAYOUTS: tuple[str, ...] = ("nchw", "nhwc", "hw", "flat")
