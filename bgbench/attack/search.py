"""The worst-case background search of one classifier (protocol ``PROTOCOL``).

Given a ``Scorer`` (any model, any input convention) and a ``TestSuite`` at the model's
input size, with a budget of ``B`` background queries per image:

- **pool**: the seeded pool's ``B`` members (``members.pool``, the same for every model) are
  composited behind every image and scored once each;
- **universal**: the one pool member that leaves the fewest images right;
- **worst-of-k**: the images right on clean and on every one of the pool's first ``k``
  members, for ``k`` in ``CURVE`` (those up to ``B``) and ``B``;
- **adaptive**: a sequential attacker with memory. Images are attacked in chunks of
  ``CHUNK`` in dataset order. Each image first gets ``ceil(EXPLORE_SHARE * B)`` backgrounds:
  those that fooled the most images of earlier chunks (the library), after at least
  ``POOL_FLOOR`` of the pool's first members (the first chunk: the pool's first members
  only); then, alternately, the pool's next member and a local move (``members.move``)
  from the ``ELITE`` backgrounds with the lowest margin for that image (true class output
  minus the largest other), one query each, until it is fooled or has used ``B`` queries.
  The pool's remaining members come in the order of how many images of earlier chunks each
  fooled, of the image's class first (the pool is scored on every image for worst-of-k, so
  its outcomes on earlier images are part of the attacker's memory, as the library is; an
  image's own outcomes count only for the members it tries, one query each). Every
  background that fools an image joins the library. An image right on clean and never
  fooled counts as right.

An image is right when the argmax of the model's output is its label. Queries are counted per
image, as an attacker that stops at its first success would spend them; the library costs no
query beyond those. The constants were chosen on training-split images, never test images.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from bgbench.attack import families as fams
from bgbench.attack import members as mem
from bgbench.attack.protocol import (
    CHUNK,
    CURVE,
    DEFAULT_BUDGET,
    DEFAULT_SEED,
    ELITE,
    EXAMPLES,
    EXPLORE_SHARE,
    MOVE_SHARE,
    POOL_FLOOR,
    PROTOCOL,
    SUITE,
)
from bgbench.harness.evaluate import Scorer, composites_sha256
from bgbench.harness.params import ParameterError
from bgbench.harness.progress import Progress
from bgbench.harness.stats import wilson
from bgbench.harness.testsets import CLEAN, TestSuite


@dataclass
class WorstCase:
    """Counts of images right under each search, for one model; ``correct`` holds the
    per-image outcome of each (``bool [N]``, keyed ``worst-case/universal``,
    ``worst-case/worst-of-K``, ``worst-case/adaptive``) and of ``clean``."""

    budget: int
    seed: int
    n_images: int
    clean: int
    universal: dict[str, Any]
    worst_of_k: dict[int, int]
    adaptive: int
    per_family: dict[str, dict[str, Any]]
    queries: dict[str, float]
    seconds: float
    clean_seconds: float
    correct: dict[str, np.ndarray] = field(default_factory=dict, repr=False)
    # The images searched (``composites_sha256`` of the clean set) and the protocol, budget
    # and seed: two searches are comparable image by image exactly when these agree.
    images_sha256: str = ""

    @property
    def definition(self) -> str:
        """What identifies this search's test sets in ``correct.npz``."""
        return f"{PROTOCOL};budget={self.budget};seed={self.seed};images={self.images_sha256}"

    def accuracy(self, n_correct: int) -> float:
        """A count as a share of the test images."""
        return n_correct / self.n_images

    @property
    def adaptive_accuracy(self) -> float:
        """Share of images right on clean and under every background the adaptive search tried."""
        return self.accuracy(self.adaptive)

    @property
    def universal_accuracy(self) -> float:
        """Share of images right under the pool's single worst background."""
        return self.accuracy(self.universal["n_correct"])

    def to_json(self) -> dict[str, Any]:
        """The ``worst_case`` object of results.json (docs/results-schema.md)."""
        return {
            "protocol": PROTOCOL,
            "budget": self.budget,
            "seed": self.seed,
            "n_images": self.n_images,
            "families": list(fams.NAMES),
            "clean_accuracy": self.accuracy(self.clean),
            "universal_accuracy": self.universal_accuracy,
            "universal": {**self.universal, "accuracy": self.universal_accuracy},
            "worst_of_k": {str(k): self.accuracy(v) for k, v in self.worst_of_k.items()},
            "adaptive_accuracy": self.adaptive_accuracy,
            "n_correct": self._counts(),
            "intervals": {key: dict(zip(("ci_low", "ci_high"), wilson(n, self.n_images),
                                        strict=True))
                          for key, n in self._counts().items()},
            "per_family": self.per_family,
            "queries": self.queries,
            "seconds": self.seconds,
        }


    def _counts(self) -> dict[str, int]:
        return {"clean": self.clean, "universal": self.universal["n_correct"],
                **{f"worst-of-{k}": v for k, v in self.worst_of_k.items()},
                "adaptive": self.adaptive}

    def csv_rows(self) -> list[tuple[str, str, int | str, int, int]]:
        """``(suite, test_set, parameter, n_images, n_correct)`` per results.csv row: the
        universal background, each worst-of-k, the adaptive search, each family's pool."""
        rows: list[tuple[str, str, int | str, int, int]] = [
            (SUITE, "universal", "", self.n_images, self.universal["n_correct"])]
        rows += [(SUITE, "worst-of-k", k, self.n_images, v) for k, v in self.worst_of_k.items()]
        rows.append((SUITE, "adaptive", "", self.n_images, self.adaptive))
        rows += [(SUITE, f"family:{name}", "", self.n_images, f["worst_of_pool_n_correct"])
                 for name, f in self.per_family.items()]
        return rows


def check_budget(budget: int) -> None:
    """The budget must be an integer of at least 2 (one pool member and one move)."""
    if isinstance(budget, bool) or not isinstance(budget, int) or budget < 2:
        raise ParameterError("budget", "must be an integer of at least 2 (background "
                             "queries per image)", budget)


def curve(budget: int) -> tuple[int, ...]:
    """The ``k`` of the worst-of-k curve: ``CURVE`` up to the budget, and the budget."""
    return tuple(sorted({k for k in CURVE if k <= budget} | {budget}))


def _score(scorer: Scorer, images: np.ndarray, labels: np.ndarray, label: str
           ) -> tuple[np.ndarray, np.ndarray]:
    """Per image: right (``bool``) and margin (``float32``: the true class's output minus the
    largest other) of ``uint8 [n, S, S]`` composites."""
    correct = np.empty(len(images), bool)
    margin = np.empty(len(images), np.float32)
    for start, out in scorer.batches(images, label):
        rows = np.arange(len(out))
        y = labels[start:start + len(out)]
        true = out[rows, y].astype(np.float32)
        others = out.astype(np.float32)
        others[rows, y] = -np.inf
        correct[start:start + len(out)] = out.argmax(axis=1) == y
        margin[start:start + len(out)] = true - others.max(axis=1)
    return correct, margin


def _per_family(pool: mem.Members, pool_correct: np.ndarray, clean: np.ndarray
                ) -> dict[str, dict[str, Any]]:
    out = {}
    for f, name in enumerate(fams.NAMES):
        rows = np.flatnonzero(pool.family == f)
        if not len(rows):
            continue
        counts = pool_correct[rows].sum(axis=1)
        worst = int(rows[np.argmin(counts)])
        out[name] = {"n_backgrounds": len(rows),
                     "universal": {**pool.describe(worst),
                                   "n_correct": int(pool_correct[worst].sum())},
                     "worst_of_pool_n_correct": int((clean & pool_correct[rows].all(axis=0)).sum()),
                     "trained_by": fams.FAMILIES[name].trained_by}
    return out


def search(scorer: Scorer, suite: TestSuite, budget: int = DEFAULT_BUDGET,
           seed: int = DEFAULT_SEED, progress: Progress | None = None) -> WorstCase:
    """Run the three searches on every image of ``suite`` at ``scorer``'s input size."""
    check_budget(budget)
    start_time = time.perf_counter()
    size = scorer.convention.size
    images, mask, labels = suite.images_at(size), suite.object_mask(size), suite.labels
    n = len(suite)
    clean, _ = _score(scorer, images, labels, "clean")
    clean_seconds = time.perf_counter() - start_time
    pool = mem.pool(seed, size, budget)
    pool_correct = np.empty((budget, n), bool)
    pool_margin = np.empty((budget, n), np.float32)
    progress = progress or Progress(quiet=True)
    for j in progress.over(f"{scorer.name} (pool)", list(range(budget))):
        composite = np.where(mask, images, pool.bytes[j][None])
        pool_correct[j], pool_margin[j] = _score(scorer, composite, labels, f"pool member {j}")

    correct: dict[str, np.ndarray] = {}
    worst_of_k = {}
    for k in curve(budget):
        correct[f"{SUITE}/worst-of-{k}"] = clean & pool_correct[:k].all(axis=0)
        worst_of_k[k] = int(correct[f"{SUITE}/worst-of-{k}"].sum())
    counts = pool_correct.sum(axis=1)
    worst = int(np.argmin(counts))
    correct[f"{SUITE}/universal"] = pool_correct[worst]
    fooled = np.flatnonzero(clean & ~pool_correct[worst])[:EXAMPLES]
    universal = {**pool.describe(worst), "pool_index": worst, "n_correct": int(counts[worst]),
                 "fooled_examples": [int(i) for i in fooled]}

    right, queries = _adaptive(scorer, images, mask, labels, clean, pool, pool_correct,
                               pool_margin, budget, seed, progress)
    correct[f"{SUITE}/adaptive"] = right
    correct[CLEAN] = clean
    attacked = queries[clean]
    return WorstCase(
        budget=budget, seed=seed, n_images=n, clean=int(clean.sum()), universal=universal,
        worst_of_k=worst_of_k, adaptive=int(right.sum()),
        per_family=_per_family(pool, pool_correct, clean),
        queries={"clean": n, "pool": n * budget, "adaptive": int(queries.sum()),
                 "adaptive_per_image_mean": float(attacked.mean()) if len(attacked) else 0.0,
                 "adaptive_per_image_max": int(queries.max()) if n else 0},
        seconds=time.perf_counter() - start_time, clean_seconds=clean_seconds, correct=correct,
        images_sha256=composites_sha256(images, labels))


class Library:
    """The backgrounds that fooled an image so far, with how many images each fooled: what
    a sequential attacker remembers from the images it has attacked."""

    def __init__(self) -> None:
        self.counts: dict[tuple[int, ...], int] = {}
        self.members: dict[tuple[int, ...], tuple[int, np.ndarray, np.ndarray]] = {}

    def add(self, members: mem.Members) -> None:
        """Count one fooled image for each of ``members``."""
        for i in range(len(members)):
            key = (int(members.family[i]), *map(int, members.params[i]))
            self.counts[key] = self.counts.get(key, 0) + 1
            self.members.setdefault(key, (key[0], members.params[i], members.bytes[i]))

    def best(self, count: int) -> mem.Members | None:
        """The ``count`` members that fooled the most images (first found first on ties)."""
        keys = sorted(self.counts, key=lambda k: -self.counts[k])[:count]
        if not keys or count <= 0:
            return None
        family, params, backgrounds = zip(*(self.members[k] for k in keys), strict=True)
        return mem.Members(np.array(family, np.int64), np.stack(params), np.stack(backgrounds))


def _adaptive(scorer: Scorer, images: np.ndarray, mask: np.ndarray, labels: np.ndarray,
              clean: np.ndarray, pool: mem.Members, pool_correct: np.ndarray,
              pool_margin: np.ndarray, budget: int, seed: int, progress: Progress
              ) -> tuple[np.ndarray, np.ndarray]:
    """Per image: right after the adaptive search, and the queries it spent.

    Images are attacked in chunks of ``CHUNK`` in dataset order. A chunk first tries the
    ``explore`` backgrounds that fooled the most images of the chunks before it (the
    library; the pool's first members where the library is short), then moves locally.
    """
    explore = min(budget - 1, math.ceil(EXPLORE_SHARE * budget))
    right = np.zeros(len(images), bool)
    queries = np.zeros(len(images), np.int64)
    library = Library()
    chunks = [np.arange(a, min(a + CHUNK, len(images))) for a in range(0, len(images), CHUNK)]
    for chunk in progress.over(f"{scorer.name} (adaptive)", chunks):
        known = library.best(max(0, explore - POOL_FLOOR))
        n_known = 0 if known is None else len(known)
        n_pool = explore - n_known
        correct = np.empty((explore, len(chunk)), bool)
        margin = np.empty((explore, len(chunk)), np.float32)
        correct[:n_pool], margin[:n_pool] = pool_correct[:n_pool, chunk], pool_margin[:n_pool, chunk]
        for j in range(n_known):
            composite = np.where(mask[chunk], images[chunk], known.bytes[j][None])
            correct[n_pool + j], margin[n_pool + j] = _score(scorer, composite, labels[chunk],
                                                             f"library member {j}")
        tried = pool.take(slice(0, n_pool)) if known is None else _concat(
            pool.take(slice(0, n_pool)), known)
        fooled = ~correct
        ever = fooled.any(axis=0)
        first = np.where(ever, fooled.argmax(axis=0) + 1, explore)
        queries[chunk] = np.where(clean[chunk], first, 0)
        hit = clean[chunk] & ever
        library.add(tried.take(fooled.argmax(axis=0)[hit]))
        alive = clean[chunk] & ~ever
        tail = (pool, pool_correct, pool_margin,
                _tail_order(pool_correct, clean, labels, chunk, n_pool))
        found = _local_search(scorer, images, mask, labels, chunk, alive, tried, margin, tail,
                              budget - explore, seed, queries)
        library.add(found)
        right[chunk] = alive
    return right, queries


def _tail_order(pool_correct: np.ndarray, clean: np.ndarray, labels: np.ndarray,
                chunk: np.ndarray, n_pool: int) -> np.ndarray:
    """``int [len(chunk), budget - n_pool]``: per image of ``chunk``, the pool's members after
    its first ``n_pool`` (those it tried first), ordered by how many images of the chunks
    before it they fooled: of the image's class first, then of any class; by index on ties."""
    budget, seen = len(pool_correct), chunk[0]
    fooled = ~pool_correct[n_pool:, :seen] & clean[:seen]  # [budget - n_pool, seen]
    overall = fooled.sum(axis=1)
    order = np.empty((len(chunk), budget - n_pool), np.int64)
    for label in np.unique(labels[chunk]):
        own = fooled[:, labels[:seen] == label].sum(axis=1)
        order[labels[chunk] == label] = n_pool + np.argsort(-(own * (seen + 1) + overall),
                                                            kind="stable")
    return order


def _concat(a: mem.Members, b: mem.Members) -> mem.Members:
    return mem.Members(np.concatenate([a.family, b.family]), np.concatenate([a.params, b.params]),
                       np.concatenate([a.bytes, b.bytes]))


def _local_search(scorer: Scorer, images: np.ndarray, mask: np.ndarray, labels: np.ndarray,
                  chunk: np.ndarray, alive: np.ndarray, tried: mem.Members, margin: np.ndarray,
                  tail: tuple[mem.Members, np.ndarray, np.ndarray, np.ndarray], steps: int,
                  seed: int, queries: np.ndarray) -> mem.Members:
    """The images of ``chunk`` still right (``alive``, updated in place): a share
    ``MOVE_SHARE`` of the ``steps`` are local moves from the ``ELITE`` tried members with the
    lowest margin for each image, the others the pool's next members in each image's order
    (``tail``: the pool, its scores on every image, already computed, and ``_tail_order``);
    one query a step. Returns the members that fooled an image."""
    elite = min(ELITE, len(tried))
    order = np.argsort(margin, axis=0, kind="stable")[:elite]  # [E, chunk]
    family, params = tried.family[order], tried.params[order]
    backgrounds = tried.bytes[order]
    best = np.take_along_axis(margin, order, axis=0)
    pool, pool_correct, pool_margin, order_tail = tail
    found = []
    moves = 0
    for step in range(steps):
        pos = np.flatnonzero(alive)
        if not len(pos):
            break
        idx = chunk[pos]
        next_pool = step - moves
        if next_pool < order_tail.shape[1] and (step + 1) * (1 - MOVE_SHARE) >= next_pool + 1:
            # The pool's next member: exploration, its scores computed with the pool's.
            members = order_tail[pos, next_pool]
            children = pool.take(members)
            right, m = pool_correct[members, idx], pool_margin[members, idx]
            slot = np.argmax(best[:, pos], axis=0)
        else:
            slot = np.full(len(pos), moves % elite)
            moves += 1
            parents = mem.Members(family[slot, pos], params[slot, pos], backgrounds[slot, pos])
            children = mem.move(parents, mem.stream_keys(seed, step, idx, 0), images.shape[-1])
            composite = np.where(mask[idx], images[idx], children.bytes)
            right, m = _score(scorer, composite, labels[idx], f"adaptive step {step}")
        queries[idx] += 1
        alive[pos[~right]] = False
        found.append(children.take(~right))
        better = right & (m < best[slot, pos])
        rows, slots = pos[better], slot[better]
        family[slots, rows] = children.family[better]
        params[slots, rows] = children.params[better]
        backgrounds[slots, rows] = children.bytes[better]
        best[slots, rows] = m[better]
    if not found:
        return tried.take(slice(0, 0))
    return mem.Members(np.concatenate([f.family for f in found]),
                       np.concatenate([f.params for f in found]),
                       np.concatenate([f.bytes for f in found]))
