"""The threat model's background families: exact members, admissibility, vectorised draws,
the seeded pool and the local moves (docs/threat-model.md)."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from bgbench import backgrounds as bgs
from bgbench import extended as ext
from bgbench.attack import families as fams
from bgbench.attack import members as mem
from bgbench.errors import BgbenchError

# (family, parameters, the paper's or the extended suite's background at 32x32 as bytes)
EXACT = [
    ("stripes", {"direction": 3, "period": 10, "width": 2, "phase": 1}, bgs.stripes() * 255),
    ("board", {"cell_h": 6, "cell_w": 6, "phase_y": 2, "phase_x": 2, "parity": 0},
     bgs.board() * 255),
    ("frame", {"width": 2, "inset": 0}, bgs.border() * 255),
    ("grey", {"level": 64}, ext.quantise(np.full((32, 32), 0.25))),
    ("ramp", {"direction": 0, "start": 0, "end": 255},
     ext.quantise(np.tile(np.arange(32) / 31, (32, 1)))),
    ("ramp", {"direction": 1, "start": 0, "end": 255},
     ext.quantise(np.tile(np.arange(32)[:, None] / 31, (1, 32)))),
]
# sha256 of the pool (seed 0, 32x32, 27 members): family indices, parameters, bytes.
POOL_SHA256 = "07377b85a88ce1ce46aa1894066d73135696c662a1ac167ba08bd92f1bbd33c4"


@pytest.mark.parametrize("name,params,expected", EXACT, ids=[e[0] for e in EXACT])
def test_paper_and_extended_backgrounds_are_exact_members(name, params, expected):
    np.testing.assert_array_equal(fams.background(name, params, 32), expected)


def test_near_members_overlap_the_paper_patterns():
    # Rings by distance, not Bresenham: most of the paper's pixels, not all.
    for name, params, paper in [("circles", [2, 6, 1, 0, 0], bgs.circles()),
                                ("clock", [0, 0, 15, 2, 7, 3], bgs.clock())]:
        ours = fams.background(name, params, 32) > 0
        assert (ours & (paper > 0)).sum() / (ours | (paper > 0)).sum() > 0.75, name


@pytest.mark.parametrize("name", fams.NAMES)
@pytest.mark.parametrize("size", [32, 28])
def test_vectorised_draw_equals_one_at_a_time(name, size):
    family = fams.FAMILIES[name]
    params = np.random.default_rng(0).integers(family.low, family.high + 1,
                                               (16, len(family.params)))
    batch = fams.draw_bytes(name, params, size)
    assert batch.dtype == np.uint8 and batch.shape == (16, size, size)
    for row, one in zip(params, batch, strict=True):
        np.testing.assert_array_equal(fams.draw_bytes(name, row[None], size)[0], one)


def test_inadmissible_and_out_of_range_members_are_refused():
    with pytest.raises(BgbenchError, match="not an admissible background"):
        fams.background("ramp", {"direction": 0, "start": 200, "end": 255}, 32)
    with pytest.raises(BgbenchError, match="outside its range"):
        fams.draw_bytes("grey", np.array([[200]]), 32)
    with pytest.raises(BgbenchError, match="takes level"):
        fams.background("grey", {"lvl": 3}, 32)
    with pytest.raises(BgbenchError, match="unknown background family"):
        fams.family("plaid")
    # The mean rule on bytes: 127 is admissible, the extended suite's grey-0.5 (128) is not.
    assert fams.admissible(np.full((2, 4, 4), 127, np.uint8)).all()
    assert not fams.admissible(np.full((1, 4, 4), 128, np.uint8)).any()


def test_noise_sets_an_exact_share_of_blocks():
    for block_index, block in enumerate(fams.BLOCKS):
        out = fams.draw_bytes("noise", np.array([[5, block_index, 7]]), 32)[0] > 0
        cells = -(-32 // block)
        on = out[::block, ::block][:cells, :cells]
        assert on.sum() == round(0.25 * cells * cells)


def _pool_digest(pool: mem.Members) -> str:
    digest = hashlib.sha256()
    for array in (pool.family, pool.params, pool.bytes):
        digest.update(np.ascontiguousarray(array).tobytes())
    return digest.hexdigest()


def test_pool_is_seeded_admissible_and_covers_every_family():
    pool = mem.pool(0, 32, 27)
    assert fams.admissible(pool.bytes).all()
    assert sorted(pool.family[:len(fams.NAMES)]) == list(range(len(fams.NAMES)))
    assert _pool_digest(pool) == _pool_digest(mem.pool(0, 32, 27))
    assert _pool_digest(pool) != _pool_digest(mem.pool(1, 32, 27))
    # A longer pool starts with the shorter one: worst-of-k is the same for every budget >= k.
    np.testing.assert_array_equal(mem.pool(0, 32, 40).bytes[:27], pool.bytes)
    assert _pool_digest(pool) == POOL_SHA256, _pool_digest(pool)


def test_moves_are_admissible_local_and_reproducible():
    parents = mem.pool(3, 32, 90)
    keys = mem.stream_keys(0, 5, np.arange(len(parents)), 0)
    children = mem.move(parents, keys, 32)
    again = mem.move(parents, keys, 32)
    np.testing.assert_array_equal(children.params, again.params)
    assert fams.admissible(children.bytes).all()
    np.testing.assert_array_equal(children.family, parents.family)
    changed = (children.params != parents.params).sum(axis=1)
    # One parameter stepped, or (rarely) a fresh member of the family.
    assert (changed <= 1).mean() > 0.9
    for i in range(len(children)):
        fam = fams.FAMILIES[fams.NAMES[children.family[i]]]
        np.testing.assert_array_equal(
            children.bytes[i], fams.draw_bytes(fam.name, children.params[i, :len(fam.params)], 32)[0])
