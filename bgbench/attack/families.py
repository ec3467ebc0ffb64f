"""The background families of the worst-case threat model (docs/threat-model.md).

A family is a small pure function from integer parameter vectors to backgrounds, in the
registry style of ``bgbench.backgrounds`` and ``bgbench.extended``, vectorised over a batch::

    draw(params: int64 [n, len(family.params)], size: int) -> [n, size, size] in [0, 1]

(bool for the binary families, float64 for the fields).
Each parameter is an integer in its closed range ``[low, high]``. A *member* is a family
and one parameter vector; its background is ``quantise(draw(...))`` (bytes, as every
composite of the harness) and is admissible when its mean is at most half the byte range
(``ADMISSIBLE_MEAN``: the paper's L_BA rule, so that no background paints over the object's
colour). The families generalise the paper's six backgrounds and the extended suite's grey,
ramp and smooth fields; ``tests/test_attack_families.py`` pins which paper backgrounds are
members exactly and the checksum of a seeded pool. Nothing here may be tuned to flatter a
method: a change of any definition is a new ``PROTOCOL`` version.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from bgbench.errors import BgbenchError
from bgbench.extended import quantise, upsample_bilinear

# The threat model's mean rule, on bytes: mean(background) <= 0.5 of white.
ADMISSIBLE_MEAN = 127.5
# Integer lattice directions (dy, dx) of the stripes and ramps: the value along a*y + b*x.
DIRECTIONS: tuple[tuple[int, int], ...] = ((0, 1), (1, 0), (1, 1), (1, -1), (1, 2), (2, 1),
                                           (1, -2), (2, -1))
BLOCKS: tuple[int, ...] = (1, 2, 3, 4, 6, 8)
SEED_RANGE = 2**20 - 1

Draw = Callable[[np.ndarray, int], np.ndarray]


@dataclass(frozen=True)
class Param:
    """One integer parameter of a family, in ``[low, high]``; ``free`` parameters (seeds)
    are redrawn whole by a local move instead of stepped."""

    name: str
    low: int
    high: int
    free: bool = False


@dataclass(frozen=True)
class Family:
    """A registered family: its parameters, its vectorised ``draw`` and what it generalises."""

    name: str
    params: tuple[Param, ...]
    draw: Draw
    generalises: str
    # The stage-3 option of bgbench's own training that draws backgrounds of this family
    # ("" for none): scores on such a family are coverage, not evidence of invariance.
    trained_by: str = ""

    @property
    def low(self) -> np.ndarray:
        """Lower bounds, ``int64 [len(params)]``."""
        return np.array([p.low for p in self.params], np.int64)

    @property
    def high(self) -> np.ndarray:
        """Upper bounds, ``int64 [len(params)]``."""
        return np.array([p.high for p in self.params], np.int64)

    def describe(self, values: np.ndarray | list[int]) -> dict[str, int]:
        """``{parameter name: value}`` of one member."""
        return {p.name: int(v) for p, v in zip(self.params, values, strict=True)}


def _grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    # int32 (and float32 below): these run once per query of the adaptive search.
    y, x = np.mgrid[0:size, 0:size].astype(np.int32)
    return y[None], x[None]


def _col(params: np.ndarray, j: int) -> np.ndarray:
    return params[:, j, None, None].astype(np.int32)


def _stripes(params: np.ndarray, size: int) -> np.ndarray:
    y, x = _grid(size)
    d = np.asarray(DIRECTIONS, np.int32)[params[:, 0]]
    period, width, phase = _col(params, 1), _col(params, 2), _col(params, 3)
    # Offset by a multiple of the period so the remainder is of a non-negative number.
    value = d[:, 0, None, None] * y + d[:, 1, None, None] * x + phase + 16 * 3 * period
    return value % period < width


def _board(params: np.ndarray, size: int) -> np.ndarray:
    y, x = _grid(size)
    cell_h, cell_w, phase_y, phase_x, parity = (_col(params, j) for j in range(5))
    return ((y + phase_y) // cell_h + (x + phase_x) // cell_w + parity) % 2 == 1


def _frame(params: np.ndarray, size: int) -> np.ndarray:
    y, x = _grid(size)
    width, inset = _col(params, 0), _col(params, 1)
    edge = np.minimum(np.minimum(y, x), np.minimum(size - 1 - y, size - 1 - x))
    return (edge >= inset) & (edge < inset + width)


def _ring(dy: np.ndarray, dx: np.ndarray, radius: np.ndarray, thickness: np.ndarray
          ) -> np.ndarray:
    # Pixels whose centre is within half a pixel of one of the radii r, r-1, ..., r-t+1,
    # compared as exact integers: (2d)^2 against (2r+1)^2 and (2(r-t)+1)^2.
    d2 = 4 * (dy * dy + dx * dx)
    outer, inner = 2 * radius + 1, 2 * (radius - thickness) + 1
    return (d2 < outer * outer) & ((inner < 0) | (d2 >= inner * inner))


def _circles(params: np.ndarray, size: int) -> np.ndarray:
    y, x = _grid(size)
    grid, radius, thickness, off_y, off_x = (_col(params, j) for j in range(5))
    # Each pixel belongs to the grid cell it lies in; the ring of that cell is drawn there,
    # so the n x n rings are evaluated at once.
    # Cell i spans [i * size / grid, (i + 1) * size / grid); its centre is rounded down.
    cell_y = ((y - off_y) * grid // size).clip(0, grid - 1)
    cell_x = ((x - off_x) * grid // size).clip(0, grid - 1)
    cy = (2 * cell_y + 1) * size // (2 * grid) + off_y
    cx = (2 * cell_x + 1) * size // (2 * grid) + off_x
    return _ring(y - cy, x - cx, radius, thickness)


def _clock(params: np.ndarray, size: int) -> np.ndarray:
    y, x = _grid(size)
    off_y, off_x, radius, thickness, tick_length, tick_width = (_col(params, j) for j in range(6))
    cy, cx = size // 2 + off_y, size // 2 + off_x
    out = _ring(y - cy, x - cx, radius, thickness)
    start = cy - tick_width // 2, cx - tick_width // 2
    on_row = (y >= start[0]) & (y < start[0] + tick_width)
    on_col = (x >= start[1]) & (x < start[1] + tick_width)
    # Four ticks at 12, 3, 6 and 9 o'clock, drawn in from the image's edges.
    ticks = ((on_row & ((x < tick_length) | (x >= size - tick_length)))
             | (on_col & ((y < tick_length) | (y >= size - tick_length))))
    return out | (ticks & (tick_length > 0))


def _hash_uniform(seeds: np.ndarray, cells: int) -> np.ndarray:
    """``float64 [n, cells]`` in [0, 1): a counter-based hash (SplitMix64) of (seed, cell).

    Vectorised and fixed forever, unlike a library generator's stream.
    """
    z = (seeds.astype(np.uint64)[:, None] * np.uint64(0x9E3779B97F4A7C15)
         + np.arange(cells, dtype=np.uint64)[None] * np.uint64(0xBF58476D1CE4E5B9))
    with np.errstate(over="ignore"):
        z = z + np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    return (z >> np.uint64(11)).astype(np.float64) / float(2**53)


def _noise(params: np.ndarray, size: int) -> np.ndarray:
    out = np.empty((len(params), size, size))
    for block_index in np.unique(params[:, 1]):
        rows = np.flatnonzero(params[:, 1] == block_index)
        block = BLOCKS[int(block_index)]
        side = -(-size // block)
        cells = side * side
        # Exactly round(rate * cells) cells set: those with the smallest hash values.
        count = np.round(params[rows, 0] * 0.05 * cells).astype(np.int64)
        order = np.argsort(_hash_uniform(params[rows, 2], cells), axis=1, kind="stable")
        ranks = np.empty_like(order)
        np.put_along_axis(ranks, order, np.arange(cells)[None].repeat(len(rows), 0), axis=1)
        on = (ranks < count[:, None]).reshape(len(rows), side, side).astype(np.float64)
        out[rows] = on.repeat(block, 1).repeat(block, 2)[:, :size, :size]
    return out


def _grey(params: np.ndarray, size: int) -> np.ndarray:
    return np.broadcast_to(params[:, 0, None, None] / 255.0, (len(params), size, size)).copy()


def _ramp(params: np.ndarray, size: int) -> np.ndarray:
    y, x = _grid(size)
    d = np.asarray(DIRECTIONS, np.int64)[params[:, 0]]
    value = d[:, 0, None, None] * y + d[:, 1, None, None] * x
    lo, hi = value.min(axis=(1, 2), keepdims=True), value.max(axis=(1, 2), keepdims=True)
    t = (value - lo) / (hi - lo)
    start, end = _col(params, 1) / 255.0, _col(params, 2) / 255.0
    return start + (end - start) * t


def _smooth(params: np.ndarray, size: int) -> np.ndarray:
    out = np.empty((len(params), size, size))
    for grid in np.unique(params[:, 0]):
        rows = np.flatnonzero(params[:, 0] == grid)
        g = int(grid)
        lattice = _hash_uniform(params[rows, 1], g * g).reshape(len(rows), g, g)
        field = upsample_bilinear(lattice, size)
        # Peak in tenths, then scaled down to the admissible mean where it is above it.
        field = field * (params[rows, 2, None, None] / 10.0)
        mean = field.mean(axis=(1, 2), keepdims=True)
        out[rows] = field * np.minimum(1.0, 0.49 / np.maximum(mean, 1e-12))
    return out


FAMILIES: dict[str, Family] = {f.name: f for f in (
    Family("stripes", (Param("direction", 0, len(DIRECTIONS) - 1), Param("period", 2, 16),
                       Param("width", 1, 8), Param("phase", 0, 15)),
           _stripes, "stripes: lines at any of 8 lattice directions, period, width and phase"),
    Family("board", (Param("cell_h", 2, 16), Param("cell_w", 2, 16), Param("phase_y", 0, 15),
                     Param("phase_x", 0, 15), Param("parity", 0, 1)),
           _board, "board: checkerboards of any cell size and phase"),
    Family("frame", (Param("width", 1, 6), Param("inset", 0, 10)),
           _frame, "border: square frames of any width and distance from the edge"),
    Family("circles", (Param("grid", 1, 4), Param("radius", 2, 15), Param("thickness", 1, 3),
                       Param("offset_y", -4, 4), Param("offset_x", -4, 4)),
           _circles, "circles: a grid of 1 to 16 rings of any radius, thickness and position"),
    Family("clock", (Param("offset_y", -6, 6), Param("offset_x", -6, 6), Param("radius", 3, 16),
                     Param("thickness", 1, 3), Param("tick_length", 0, 9),
                     Param("tick_width", 1, 4)),
           _clock, "clock: a ring of any radius, thickness and centre with four edge ticks"),
    Family("noise", (Param("rate", 1, 10), Param("block", 0, len(BLOCKS) - 1),
                     Param("seed", 0, SEED_RANGE, free=True)),
           _noise, "random and the noise sweep: binary noise of rate 0.05-0.5 in square blocks",
           trained_by="bg_sample (binary block-sampled backgrounds)"),
    Family("grey", (Param("level", 0, 127),), _grey, "grey-*: a constant grey level",
           trained_by="grey_share (smooth grey fields)"),
    Family("ramp", (Param("direction", 0, len(DIRECTIONS) - 1), Param("start", 0, 255),
                    Param("end", 0, 255)),
           _ramp, "gradient-h/v: linear ramps in 8 directions between two levels"),
    Family("smooth", (Param("grid", 2, 8), Param("seed", 0, SEED_RANGE, free=True),
                      Param("peak", 1, 10)),
           _smooth, "smooth-*: bilinear smooth noise on a 2x2 to 8x8 grid",
           trained_by="grey_share (smooth grey fields)"),
)}
NAMES: tuple[str, ...] = tuple(FAMILIES)
MAX_PARAMS = max(len(f.params) for f in FAMILIES.values())


def family(name: str) -> Family:
    """The registered family ``name``, with a clear error for an unknown one."""
    if name not in FAMILIES:
        raise BgbenchError(f"unknown background family {name!r}; choose from {', '.join(NAMES)}")
    return FAMILIES[name]


def draw_bytes(name: str, params: np.ndarray, size: int) -> np.ndarray:
    """``uint8 [n, size, size]``: the members ``params [n, k]`` of family ``name`` as bytes."""
    fam = family(name)
    params = np.atleast_2d(np.asarray(params, np.int64))
    if params.shape[1] != len(fam.params):
        raise BgbenchError(f"family {name} takes {len(fam.params)} parameters "
                           f"({', '.join(p.name for p in fam.params)}), got {params.shape[1]}")
    if ((params < fam.low) | (params > fam.high)).any():
        raise BgbenchError(f"a parameter of family {name} is outside its range "
                           f"({', '.join(f'{p.name} {p.low}..{p.high}' for p in fam.params)})")
    out = fam.draw(params, size)
    return out.astype(np.uint8) * np.uint8(255) if out.dtype == np.bool_ else quantise(out)


def admissible(backgrounds: np.ndarray) -> np.ndarray:
    """``bool [n]``: which ``uint8 [n, S, S]`` backgrounds meet the mean rule."""
    return backgrounds.reshape(len(backgrounds), -1).mean(axis=1) <= ADMISSIBLE_MEAN


def background(name: str, params: dict[str, int] | list[int], size: int = 32) -> np.ndarray:
    """One member as ``uint8 [size, size]``; ``params`` by name (as results record them) or
    in order. Raises if it is not admissible."""
    fam = family(name)
    if isinstance(params, dict):
        missing = [p.name for p in fam.params if p.name not in params]
        if missing or len(params) != len(fam.params):
            raise BgbenchError(f"family {name} takes {', '.join(p.name for p in fam.params)}; "
                               f"got {', '.join(params) or 'none'}")
        params = [params[p.name] for p in fam.params]
    out = draw_bytes(name, np.asarray([params]), size)
    if not admissible(out)[0]:
        raise BgbenchError(f"{name} {params} has mean {out.mean() / 255:.3f} > 0.5: not an "
                           "admissible background")
    return out[0]
