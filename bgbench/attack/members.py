"""Batches of family members: drawing them, the seeded pool, and the search's local moves.

A batch is ``family int64 [n]`` (an index into ``families.NAMES``) and ``params int64 [n,
MAX_PARAMS]`` (each row's first ``len(family.params)`` entries are used, the rest are 0).
Every random choice of the adaptive search comes from a counter-based hash of (seed, image
index, step, draw), so an image's search path does not depend on which other images are
searched with it, on ``--limit`` or on batching.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from bgbench.attack import families as fams
from bgbench.errors import BgbenchError

# Tries before a move gives up on admissibility and draws a fresh member of the family.
MOVE_TRIES = 4
SAMPLE_TRIES = 200


@dataclass(frozen=True)
class Members:
    """``n`` family members; ``bytes`` holds their backgrounds ``uint8 [n, S, S]``."""

    family: np.ndarray
    params: np.ndarray
    bytes: np.ndarray

    def __len__(self) -> int:
        return int(self.family.shape[0])

    def take(self, index: np.ndarray | slice) -> Members:
        """The selected members."""
        return Members(self.family[index], self.params[index], self.bytes[index])

    def describe(self, i: int) -> dict[str, Any]:
        """``{"family": name, "params": {name: value}}`` of member ``i`` (as results record it)."""
        fam = fams.FAMILIES[fams.NAMES[int(self.family[i])]]
        return {"family": fam.name, "params": fam.describe(self.params[i, :len(fam.params)])}


def draw(family: np.ndarray, params: np.ndarray, size: int) -> np.ndarray:
    """``uint8 [n, size, size]``: the backgrounds of a batch, each member drawn once."""
    out = np.empty((len(family), size, size), np.uint8)
    # Members repeat (many images move from the same parents): draw each distinct one once.
    keys = np.concatenate([family[:, None], params], axis=1)
    unique, inverse = np.unique(keys, axis=0, return_inverse=True)
    inverse = inverse.reshape(-1)
    drawn = np.empty((len(unique), size, size), np.uint8)
    for f in np.unique(unique[:, 0]):
        rows = np.flatnonzero(unique[:, 0] == f)
        fam = fams.FAMILIES[fams.NAMES[int(f)]]
        drawn[rows] = fams.draw_bytes(fam.name, unique[rows, 1:1 + len(fam.params)], size)
    out[:] = drawn[inverse]
    return out


def hash_uniforms(keys: np.ndarray, count: int) -> np.ndarray:
    """``float64 [n, count]`` uniforms in [0, 1), a fixed function of each ``uint64`` key."""
    return fams._hash_uniform(keys, count)


def stream_keys(seed: int, step: int, index: np.ndarray, draw_id: int) -> np.ndarray:
    """The hash keys of (seed, step, image index, draw) for each image in ``index``."""
    # Each field gets its own bits: image index < 2^24, step < 2^16, draw < 2^8, seed < 2^16.
    return ((np.uint64(seed & 0xFFFF) << np.uint64(48)) | (np.uint64(step & 0xFFFF) << np.uint64(32))
            | (np.uint64(draw_id & 0xFF) << np.uint64(24))
            | index.astype(np.uint64) & np.uint64(0xFFFFFF))


def _tables() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per family and parameter slot: low, high, free (padding slots: 0, 0, False), and
    each family's parameter count."""
    shape = (len(fams.NAMES), fams.MAX_PARAMS)
    low, high, free = np.zeros(shape, np.int64), np.zeros(shape, np.int64), np.zeros(shape, bool)
    for f, name in enumerate(fams.NAMES):
        params = fams.FAMILIES[name].params
        low[f, :len(params)] = [p.low for p in params]
        high[f, :len(params)] = [p.high for p in params]
        free[f, :len(params)] = [p.free for p in params]
    return low, high, free, np.array([len(fams.FAMILIES[n].params) for n in fams.NAMES])


LOW, HIGH, FREE, N_PARAMS = _tables()


def _uniform_params(family: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Parameters drawn uniformly in each family's ranges from uniforms ``u [n, MAX_PARAMS]``."""
    params = LOW[family] + np.floor(u * (HIGH - LOW + 1)[family]).astype(np.int64)
    params[np.arange(fams.MAX_PARAMS)[None] >= N_PARAMS[family][:, None]] = 0
    return params


def sample(family: np.ndarray, keys: np.ndarray, size: int) -> Members:
    """One admissible member of each ``family[i]``, drawn uniformly by rejection from its
    parameter ranges with the uniforms of ``keys[i]``."""
    params = np.zeros((len(family), fams.MAX_PARAMS), np.int64)
    out = np.empty((len(family), size, size), np.uint8)
    todo = np.arange(len(family))
    for attempt in range(SAMPLE_TRIES):
        u = hash_uniforms(keys[todo] ^ np.uint64(attempt * 0x9E37), fams.MAX_PARAMS)
        params[todo] = _uniform_params(family[todo], u)
        out[todo] = draw(family[todo], params[todo], size)
        todo = todo[~fams.admissible(out[todo])]
        if not len(todo):
            return Members(family, params, out)
    raise BgbenchError(f"could not draw an admissible member of {fams.NAMES[family[todo[0]]]} "
                       f"in {SAMPLE_TRIES} tries; its parameter ranges are wrong")


def pool(seed: int, size: int, count: int) -> Members:
    """The seeded pool: ``count`` members, the families in a fresh random order each round
    (so the first ``len(NAMES)`` hold one of each), the same for every model."""
    # RandomState: numpy keeps its streams fixed across versions, so the pool is too.
    rng = np.random.RandomState([0x6267, seed])
    rounds = -(-count // len(fams.NAMES))
    # Drawn round by round, so a longer pool starts with the shorter one.
    drawn = [(rng.permutation(len(fams.NAMES)),
              rng.randint(0, 2**63, len(fams.NAMES), dtype=np.uint64)) for _ in range(rounds)]
    family = np.concatenate([f for f, _ in drawn])[:count]
    keys = np.concatenate([k for _, k in drawn])[:count]
    return sample(family, keys, size)


def move(parents: Members, keys: np.ndarray, size: int) -> Members:
    """A local move from each parent: one parameter stepped (a seed redrawn), admissible.

    The step is at least 1 and about a sixth of the parameter's range at most; a parent
    with no admissible move in ``MOVE_TRIES`` tries is replaced by a fresh member of its
    family.
    """
    n = len(parents)
    params = parents.params.copy()
    out = parents.bytes.copy()
    todo = np.arange(n)
    for attempt in range(MOVE_TRIES):
        u = hash_uniforms(keys[todo] ^ np.uint64(0x51ED + attempt), 3)
        fam_idx = parents.family[todo]
        j = np.floor(u[:, 0] * N_PARAMS[fam_idx]).astype(np.int64)
        low, high, free = LOW[fam_idx, j], HIGH[fam_idx, j], FREE[fam_idx, j]
        current = parents.params[todo, j]
        magnitude = 1 + np.floor(u[:, 1] ** 2 * (high - low) / 6).astype(np.int64)
        step = np.where(u[:, 2] < 0.5, -magnitude, magnitude)
        stepped = current + step
        # Off the range: step the other way instead.
        stepped = np.where((stepped < low) | (stepped > high), current - step, stepped)
        redrawn = low + np.floor(u[:, 1] * (high - low + 1)).astype(np.int64)
        candidate = params[todo].copy()
        candidate[np.arange(len(todo)), j] = np.clip(np.where(free, redrawn, stepped), low, high)
        drawn = draw(fam_idx, candidate, size)
        ok = fams.admissible(drawn)
        params[todo[ok]] = candidate[ok]
        out[todo[ok]] = drawn[ok]
        todo = todo[~ok]
        if not len(todo):
            return Members(parents.family, params, out)
    fresh = sample(parents.family[todo], keys[todo] ^ np.uint64(0xF7E5), size)
    params[todo] = fresh.params
    out[todo] = fresh.bytes
    return Members(parents.family, params, out)
