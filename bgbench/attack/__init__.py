"""The worst-case background search: a budgeted, seeded, reproducible search over the
background families of the threat model (docs/threat-model.md), for any classifier; torch-free.

>>> from bgbench.attack import attack
>>> [result] = attack("model.onnx", budget=100)               # doctest: +SKIP
>>> result.worst_case.adaptive_accuracy                       # doctest: +SKIP
"""

from bgbench.attack.api import attack, attack_predictor
from bgbench.attack.families import FAMILIES, NAMES, Family, Param, background
from bgbench.attack.search import DEFAULT_BUDGET, PROTOCOL, WorstCase

__all__ = ["DEFAULT_BUDGET", "FAMILIES", "NAMES", "PROTOCOL", "Family", "Param", "WorstCase",
           "attack", "attack_predictor", "background"]
