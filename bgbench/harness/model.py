"""Open an ONNX classifier, check it against the contract in DESIGN.md, and start a session.

Every way a model can break the contract is a ``BgbenchError`` naming the problem and the fix,
raised before any test image is fed, so a long evaluation never dies half way through.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path

import onnx
import onnxruntime as ort

from bgbench.data import DATASETS
from bgbench.data import NUM_CLASSES as _CLASSES
from bgbench.errors import BgbenchError, UsageError

NUM_CLASSES: dict[str, int] = {name: _CLASSES for name in DATASETS}
INPUT_SIZES = (32, 28)

# Short names a user types on the command line; full onnxruntime names are accepted too.
PROVIDER_ALIASES: dict[str, str] = {
    "cpu": "CPUExecutionProvider",
    "cuda": "CUDAExecutionProvider",
    "tensorrt": "TensorrtExecutionProvider",
    "rocm": "ROCMExecutionProvider",
    "openvino": "OpenVINOExecutionProvider",
    "dml": "DmlExecutionProvider",
    "coreml": "CoreMLExecutionProvider",
}


@dataclass(frozen=True)
class ModelInfo:
    """What the harness needs to know about one checked ONNX classifier."""

    path: Path
    sha256: str
    dataset: str
    method: str
    input_name: str
    output_name: str
    input_size: int
    num_classes: int | None  # None where the graph leaves the class dimension symbolic
    metadata: dict[str, str] = field(default_factory=dict)


def resolve_providers(names: list[str] | tuple[str, ...]) -> list[str]:
    """Map ``cpu``/``cuda``/... to onnxruntime provider names; an unavailable one is an error."""
    if not names:
        raise UsageError("no execution provider given; use e.g. --providers cpu")
    available = ort.get_available_providers()
    resolved = []
    for name in names:
        full = PROVIDER_ALIASES.get(name.lower(), name)
        if full not in available:
            hint = (" (install onnxruntime-gpu in place of onnxruntime: "
                    "pip install 'bgbench[gpu]')" if full == "CUDAExecutionProvider" else "")
            raise UsageError(f"execution provider {name!r} is not available in this onnxruntime; "
                             f"available: {', '.join(available)}{hint}")
        resolved.append(full)
    return resolved


def file_sha256(path: Path) -> str:
    """SHA-256 of a file's bytes, as hex."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _dims(value_info: onnx.ValueInfoProto) -> list[int | str | None]:
    """Static sizes as ints, symbolic ones as their name (or None when unnamed)."""
    if not value_info.type.HasField("tensor_type"):
        return []
    shape = value_info.type.tensor_type.shape
    return [d.dim_value if d.HasField("dim_value") else (d.dim_param or None) for d in shape.dim]


def inspect_model(path: str | os.PathLike, dataset: str | None = None) -> ModelInfo:
    """Load and check ``path`` against the ONNX contract; ``dataset`` overrides nothing, it fills in.

    The dataset comes from the ``bgbench.dataset`` metadata, else from ``dataset``; if both are
    present they must agree.
    """
    path = Path(path)
    if not path.is_file():
        raise BgbenchError(f"model file {path} does not exist; give the path to an .onnx file")
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as err:  # onnx raises DecodeError, ValueError, ... for non-ONNX bytes
        raise BgbenchError(f"{path} is not an ONNX model ({type(err).__name__}); "
                           "export one with `bgbench export RUN_DIR`") from None
    if not model.graph.node and not model.graph.output:
        raise BgbenchError(f"{path} is not an ONNX model (no graph); "
                           "export one with `bgbench export RUN_DIR`")
    metadata = {p.key: p.value for p in model.metadata_props}

    meta_dataset = metadata.get("bgbench.dataset")
    if meta_dataset and dataset and meta_dataset != dataset:
        raise UsageError(f"{path} was exported for dataset {meta_dataset!r} but --dataset is "
                         f"{dataset!r}; drop --dataset or evaluate a {dataset} model")
    dataset = meta_dataset or dataset
    if not dataset:
        raise UsageError(f"{path} has no bgbench.dataset metadata; say which test set to use "
                         f"with --dataset {{{','.join(NUM_CLASSES)}}}")
    if dataset not in NUM_CLASSES:
        raise UsageError(f"unknown dataset {dataset!r} for {path}; "
                         f"choose from {', '.join(NUM_CLASSES)}")

    initializers = {init.name for init in model.graph.initializer}
    inputs = [i for i in model.graph.input if i.name not in initializers]
    if len(inputs) != 1:
        names = ", ".join(i.name for i in inputs) or "none"
        raise BgbenchError(f"{path} has {len(inputs)} inputs ({names}); the harness needs "
                           "exactly one image input [batch, 1, 32, 32]")
    image = inputs[0]
    elem = image.type.tensor_type.elem_type
    if elem != onnx.TensorProto.FLOAT:
        raise BgbenchError(f"{path}: input {image.name!r} is "
                           f"{onnx.TensorProto.DataType.Name(elem)}, not FLOAT; the harness feeds "
                           "float32 images in [0, 1] (put any casting inside the graph)")
    dims = _dims(image)
    if len(dims) != 4:
        raise BgbenchError(f"{path}: input {image.name!r} has rank {len(dims)} {dims}; "
                           "it must be [batch, 1, 32, 32] (or [batch, 1, 28, 28])")
    if isinstance(dims[0], int) and dims[0] > 0:
        raise BgbenchError(f"{path}: input batch dimension is fixed at {dims[0]}; "
                           "re-export it with a dynamic batch dimension")
    if dims[1] != 1 or dims[2] != dims[3] or dims[2] not in INPUT_SIZES:
        raise BgbenchError(f"{path}: input {image.name!r} has shape {dims}; it must be "
                           "[batch, 1, 32, 32] (or [batch, 1, 28, 28])")

    outputs = list(model.graph.output)
    if len(outputs) != 1:
        raise BgbenchError(f"{path} has {len(outputs)} outputs; the harness needs exactly one, "
                           "the logits or probabilities [batch, classes]")
    out_dims = _dims(outputs[0])
    if len(out_dims) != 2:
        raise BgbenchError(f"{path}: output {outputs[0].name!r} has shape {out_dims}; it must be "
                           "[batch, classes]")
    num_classes = out_dims[1] if isinstance(out_dims[1], int) and out_dims[1] > 0 else None
    if num_classes is not None and num_classes != NUM_CLASSES[dataset]:
        raise BgbenchError(f"{path}: output has {num_classes} classes but {dataset} has "
                           f"{NUM_CLASSES[dataset]}; is this a model for another dataset?")

    return ModelInfo(path=path, sha256=file_sha256(path), dataset=dataset,
                     method=metadata.get("bgbench.method", "unknown"), input_name=image.name,
                     output_name=outputs[0].name, input_size=int(dims[2]),
                     num_classes=num_classes, metadata=metadata)


def open_session(info: ModelInfo, providers: list[str], threads: int) -> ort.InferenceSession:
    """An inference session with explicit options; the requested providers must all be used."""
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.intra_op_num_threads = threads
    # One model runs at a time: inter-op threads would only compete with intra-op ones.
    options.inter_op_num_threads = 1
    # Batches are hundreds of images, so spin-waiting between ops saves nothing measurable;
    # on a shared machine it burns cores other processes need (measured: 5-10% faster here).
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    try:
        session = ort.InferenceSession(str(info.path), sess_options=options, providers=providers)
    except Exception as err:  # onnxruntime raises its own Fail/InvalidGraph/... types
        first_line = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise BgbenchError(f"onnxruntime cannot load {info.path}: {first_line}") from None
    used = session.get_providers()
    missing = [p for p in providers if p not in used]
    if missing:
        raise BgbenchError(f"onnxruntime did not enable {', '.join(missing)} for {info.path} "
                           f"(it uses {', '.join(used)}); check the driver and library install")
    return session
