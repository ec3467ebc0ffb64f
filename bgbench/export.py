"""Export a trained classifier to one self-contained ONNX file that meets the ONNX contract.

The exported file is checked before it is written: ``onnx.checker``, the harness's own
contract check, and onnxruntime against PyTorch on real test images (max abs logit
difference at most ``PARITY_ATOL``, identical predictions). A model that fails is not written.

A run's model carries its provenance in the ONNX metadata: the commit, preset, options hash,
training time, device and precision of the training run (``bgbench.train_*``,
``bgbench.preset``, ``bgbench.options_sha256``, ``bgbench.precision``, and
``bgbench.trained_families`` when stage 3 drew threat-model families) beside the commit
that exported it (``bgbench.git_commit``).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from bgbench import __version__
from bgbench.errors import BgbenchError, ParameterError
from bgbench.fileio import refuse_overwrite

if TYPE_CHECKING:
    import torch

OPSET = 18
INPUT_NAME = "images"
OUTPUT_NAME = "logits"
PARITY_ATOL = 1e-4
DEFAULT_PARITY_IMAGES = 500


@dataclass(frozen=True)
class ExportReport:
    """What was written and how closely onnxruntime matched PyTorch."""

    path: Path
    n_images: int
    max_abs_diff: float
    metadata: dict[str, str]


def parity_images(dataset: str, n_images: int = DEFAULT_PARITY_IMAGES, input_size: int = 32,
                  data_root: str | os.PathLike | None = None) -> np.ndarray:
    """``n_images`` test images as float32 ``[n_images, 1, S, S]``: half clean, half under the
    six backgrounds, built by the harness as an ``S`` x ``S`` model is evaluated on them.

    Backgrounds push activations where the clean set never goes, so parity covers both.
    """
    from bgbench.backgrounds import BACKGROUNDS
    from bgbench.data import load_numpy
    from bgbench.harness.testsets import CLEAN, Composites, TestSet, to_model_input

    if n_images < 2:
        raise ParameterError(f"`n_images` must be at least 2, got {n_images}")
    composites = Composites(load_numpy(dataset, "test", data_root=data_root)[0][:n_images])
    n = len(composites)
    out = composites.composite(TestSet(CLEAN), input_size).copy()
    for name, chunk in zip(BACKGROUNDS, np.array_split(np.arange(n // 2, n), len(BACKGROUNDS)),
                           strict=True):
        out[chunk] = composites.composite(TestSet(name), input_size)[chunk]
    return to_model_input(out, input_size)


def build_metadata(dataset: str, method: str, input_size: int,
                   extra: dict[str, Any] | None = None) -> dict[str, str]:
    """The ``metadata_props`` of the ONNX contract (dataset, method, input size, version, export
    commit and time), plus each ``extra`` item that is not None as ``bgbench.<key>``."""
    from bgbench.provenance import git_commit

    meta = {
        "bgbench.dataset": dataset,
        "bgbench.method": method,
        "bgbench.input_size": str(input_size),
        "bgbench.version": __version__,
        "bgbench.git_commit": git_commit(),
        "bgbench.exported": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    for key, value in (extra or {}).items():
        if value is not None:
            meta[f"bgbench.{key}"] = str(value)
    return meta


def to_onnx(model: torch.nn.Module, input_size: int = 32):
    """The dynamo export of ``model`` (opset 18, dynamic batch) as an ``onnx.ModelProto``."""
    import torch

    model = model.eval()
    example = torch.zeros(2, 1, input_size, input_size)
    try:
        program = torch.onnx.export(
            model, (example,), dynamo=True, opset_version=OPSET, input_names=[INPUT_NAME],
            output_names=[OUTPUT_NAME], dynamic_shapes=({0: torch.export.Dim("batch")},),
            verbose=False)
    except Exception as err:  # torch.export raises many types; the first line says what failed
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise BgbenchError(f"the dynamo ONNX exporter failed: {first}") from err
    return program.model_proto


def export_model(model: torch.nn.Module, path: str | os.PathLike, *, images: np.ndarray,
                 metadata: dict[str, str], force: bool = False) -> ExportReport:
    """Export ``model``, check it against PyTorch on ``images`` and write it to ``path``.

    ``images`` are float32 ``[N, 1, S, S]``; ``metadata`` must name the dataset, method and
    input size (see ``build_metadata``). Refuses to overwrite ``path`` unless ``force``.
    """
    import onnx
    import torch

    from bgbench.fileio import atomic_path
    from bgbench.harness.model import inspect_model, open_session

    path = Path(path)
    refuse_overwrite(path, force, "path")
    input_size = int(images.shape[-1])
    proto = to_onnx(model, input_size)
    del proto.metadata_props[:]
    onnx.helper.set_model_props(proto, metadata)
    try:
        onnx.checker.check_model(proto, full_check=True)
    except onnx.checker.ValidationError as err:
        raise BgbenchError(f"the exported graph fails onnx.checker: "
                           f"{str(err).strip().splitlines()[0]}") from None

    with torch.inference_mode():
        expected = model.eval()(torch.from_numpy(images)).numpy()
    with atomic_path(path) as tmp:
        # One file: the dynamo exporter may otherwise split weights into model.onnx.data.
        onnx.save(proto, str(tmp), save_as_external_data=False)
        info = inspect_model(tmp)
        session = open_session(info, ["CPUExecutionProvider"], threads=1)
        got = session.run([OUTPUT_NAME], {INPUT_NAME: images})[0]
        single = session.run([OUTPUT_NAME], {INPUT_NAME: images[:1]})[0]
        diff = float(np.max(np.abs(got - expected)))
        diff = max(diff, float(np.max(np.abs(single - expected[:1]))))
        mismatched = int(np.sum(got.argmax(1) != expected.argmax(1)))
        if not diff <= PARITY_ATOL or mismatched:
            raise BgbenchError(f"onnxruntime disagrees with PyTorch on {len(images)} test images "
                               f"(max abs logit difference {diff:.2e} > {PARITY_ATOL:.0e} or "
                               f"{mismatched} different predictions); not writing {path}")
    return ExportReport(path=path, n_images=len(images), max_abs_diff=diff, metadata=metadata)


def export_run(run_dir: str | os.PathLike, out: str | os.PathLike | None = None, *,
               force: bool = False, n_images: int = DEFAULT_PARITY_IMAGES,
               data_root: str | os.PathLike | None = None) -> ExportReport:
    """Export the classifier of a finished training run (default ``RUN_DIR/model.onnx``)."""
    run_dir = Path(run_dir)
    if not (run_dir / "config.json").is_file():
        raise BgbenchError(f"{run_dir} is not a training run (no config.json); "
                           "train one with `bgbench train --out RUN_DIR`")
    if not (run_dir / "done.json").is_file():
        raise BgbenchError(f"training in {run_dir} has not finished (no done.json); "
                           "finish it with `bgbench train ... --resume` first")
    from bgbench.train import load_classifier

    model, config = load_classifier(run_dir)
    input_size = int(config.get("input_size", 32))
    out = run_dir / "model.onnx" if out is None else Path(out)
    refuse_overwrite(out, force)
    images = parity_images(config["dataset"], n_images, input_size, data_root)
    metadata = build_metadata(config["dataset"], config["method"], input_size,
                              run_provenance(run_dir, config))
    return export_model(model, out, images=images, metadata=metadata, force=force)


def run_provenance(run_dir: Path, config: dict[str, Any]) -> dict[str, Any]:
    """What the model's metadata records about its training run (``config.json`` and
    ``done.json``); an item the run did not record is None and left out of the metadata."""
    from bgbench.provenance import options_sha256
    from bgbench.train.config import UNRECORDED_AT

    done_path = run_dir / "done.json"
    try:
        done = json.loads(done_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise BgbenchError(f"{done_path} is unreadable ({err}); retrain the run") from None
    return {"run": run_dir.name, "seed": config.get("seed"), "preset": config.get("preset"),
            "options_sha256": options_sha256(config["options"]),
            "train_commit": config.get("git_commit"),
            "train_seconds": done.get("train_seconds"), "train_device": config.get("device"),
            "precision": config["options"].get("precision", UNRECORDED_AT["precision"]),
            "trained_families": _trained_families(config.get("method"), config["options"])}


def _trained_families(method: str | None, options: dict[str, Any]) -> str | None:
    """The threat-model families stage 3 drew (comma-separated, as recorded), or None
    without a family share or for a method whose stages draw none."""
    from bgbench.train.config import UNRECORDED_AT
    from bgbench.vocab import FAMILY_METHODS

    if method not in FAMILY_METHODS or not options.get("family_share",
                                                       UNRECORDED_AT["family_share"]):
        return None
    return options.get("train_families", UNRECORDED_AT["train_families"])
