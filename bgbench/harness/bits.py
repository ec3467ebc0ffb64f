"""``correct.npz``: which images each model got right, per test set, beside results.json.

The file maps a model (its path as in results.json) to ``{set label: bool [N]}``, bit-packed,
with what ``bgbench compare`` needs to refuse pairs that were not scored alike: the model's
dataset, input size, test-image limit and SHA-256, and per set a ``definition`` (for the
harness's own sets, the SHA-256 of the composites and labels the model was fed). Any
command may add its own sets to a model already in the file (``add_sets``), e.g. a
worst-case search as ``worst-case/adaptive``; they are then paired like the others.

Layout (docs/results-schema.md): ``index`` holds UTF-8 JSON as ``uint8``; every set is one
``uint8`` array of ``np.packbits`` of its bits, named in the index. No pickles: the file is
read with ``allow_pickle=False``.
"""

from __future__ import annotations

import io
import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from bgbench.errors import BgbenchError
from bgbench.fileio import write_bytes

CORRECT_FILE = "correct.npz"
FORMAT = 1


@dataclass
class ModelBits:
    """Per-image correctness of one model: ``sets`` maps a set label to ``bool [n_images]``."""

    model: str
    sha256: str | None
    dataset: str
    input_size: int
    limit: int | None
    n_images: int
    sets: dict[str, np.ndarray] = field(default_factory=dict)
    definitions: dict[str, str] = field(default_factory=dict)

    def add(self, label: str, correct: np.ndarray, definition: str) -> None:
        """Record ``correct`` (``bool [n_images]``) for the set ``label``."""
        correct = np.asarray(correct)
        if correct.dtype != bool or correct.shape != (self.n_images,):
            raise BgbenchError(f"{self.model} on {label}: per-image correctness must be bool "
                               f"[{self.n_images}], got {correct.dtype} {list(correct.shape)}")
        self.sets[label] = correct
        self.definitions[label] = definition


def bits_path(directory: str | os.PathLike) -> Path:
    """Where a results directory keeps its ``correct.npz``."""
    return Path(directory) / CORRECT_FILE


def write_bits(directory: str | os.PathLike, models: Iterable[ModelBits]) -> Path:
    """Write ``correct.npz`` into ``directory`` atomically (replacing any) from ``models``,
    which must name each model once."""
    index: dict[str, Any] = {"format": FORMAT, "models": {}}
    arrays: dict[str, np.ndarray] = {}
    for m in models:
        if m.model in index["models"]:
            raise BgbenchError(f"{m.model} is given twice for {CORRECT_FILE}; evaluate each "
                               "model once per results directory")
        sets = {}
        for label, correct in m.sets.items():
            name = f"b{len(arrays)}"
            arrays[name] = np.packbits(correct)
            sets[label] = {"array": name, "definition": m.definitions[label]}
        index["models"][m.model] = {"sha256": m.sha256, "dataset": m.dataset,
                                    "input_size": m.input_size, "limit": m.limit,
                                    "n_images": m.n_images, "sets": sets}
    arrays["index"] = np.frombuffer(json.dumps(index).encode("utf-8"), np.uint8)
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    path = bits_path(directory)
    write_bytes(path, buffer.getvalue())
    return path


def read_bits(directory: str | os.PathLike) -> dict[str, ModelBits]:
    """The models of ``directory``'s ``correct.npz`` by model path; {} when there is none
    (results written before bgbench kept per-image correctness)."""
    path = bits_path(directory)
    if not path.is_file():
        return {}
    try:
        with np.load(path, allow_pickle=False) as npz:
            index = json.loads(npz["index"].tobytes().decode("utf-8"))
            out = {}
            for model, m in index["models"].items():
                bits = ModelBits(model, m["sha256"], m["dataset"], m["input_size"], m["limit"],
                                 m["n_images"])
                for label, s in m["sets"].items():
                    packed = npz[s["array"]]
                    bits.add(label, np.unpackbits(packed, count=m["n_images"]).astype(bool),
                             s["definition"])
                out[model] = bits
    except (OSError, ValueError, KeyError, TypeError, json.JSONDecodeError) as err:
        raise BgbenchError(f"{path} is not a bgbench {CORRECT_FILE} ({type(err).__name__}: "
                           f"{err}); re-run `bgbench eval`") from None
    if index.get("format") != FORMAT:
        raise BgbenchError(f"{path} has format {index.get('format')}, this bgbench reads "
                           f"{FORMAT}; re-run `bgbench eval`")
    return out


def add_sets(directory: str | os.PathLike, model: str,
             sets: Mapping[str, tuple[np.ndarray, str]], replace: bool = False) -> Path:
    """Add ``{label: (bool [N], definition)}`` to ``model`` in ``directory``'s
    ``correct.npz`` (the model must be there already, from ``bgbench eval``); refuses to
    replace a set it holds unless ``replace``."""
    models = read_bits(directory)
    if model not in models:
        known = ", ".join(models) or "none"
        raise BgbenchError(f"{bits_path(directory)} holds no model {model} (it holds: "
                           f"{known}); evaluate it with `bgbench eval --out {directory}` first")
    bits = models[model]
    for label, (correct, definition) in sets.items():
        if label in bits.sets and not replace:
            raise BgbenchError(f"{model} already has the set {label} in "
                               f"{bits_path(directory)}; pass replace=True to replace it")
        bits.add(label, correct, definition)
    return write_bits(directory, models.values())
