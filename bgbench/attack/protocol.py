"""The worst-case search's fixed, versioned constants (``PROTOCOL``), in one light module:
the command line reads them without importing onnxruntime."""

from __future__ import annotations

PROTOCOL = "bgbench-worst-case-2"
SUITE = "worst-case"
DEFAULT_BUDGET = 100
# `bgbench reproduce`'s budget per preset where it is not DEFAULT_BUDGET: the quick preset
# is a smoke check, and its search should cost minutes, not the training's hour.
REPRODUCE_BUDGETS = {"quick": 10}
DEFAULT_SEED = 0
CURVE: tuple[int, ...] = (1, 10, 100)
# Share of each image's budget spent first on whole backgrounds (library, then pool).
EXPLORE_SHARE = 0.3
ELITE = 4
EXAMPLES = 8
# Images attacked together; the library learnt from earlier chunks guides later ones.
CHUNK = 250
# Pool members every chunk still tries first, however long the library.
POOL_FLOOR = 5
# Share of the steps after the first backgrounds that are local moves; the others continue
# through the pool.
MOVE_SHARE = 0.5
