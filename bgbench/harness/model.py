"""Open an ONNX classifier, check it against the ONNX contract (docs/onnx-contract.md), and
start a session.

Every way a model can break the contract is a ``BgbenchError`` naming the problem and the fix,
raised before any test image is fed, so a long evaluation never dies half way through.
"""

from __future__ import annotations

import hashlib
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import onnx
import onnxruntime as ort

from bgbench.data import DATASETS
from bgbench.data import NUM_CLASSES as _CLASSES
from bgbench.errors import BgbenchError
from bgbench.harness.conventions import LAYOUTS, InputConvention, make_convention
from bgbench.harness.params import ParameterError
from bgbench.harness.sizes import INPUT_SIZES

NUM_CLASSES: dict[str, int] = {name: _CLASSES for name in DATASETS}

# Short names a user types on the command line; full onnxruntime names are accepted too.
@dataclass(frozen=True)
class ModelInfo:
    """What the harness needs to know about one checked ONNX classifier."""

    path: Path
    sha256: str
    dataset: str
    method: str
    input_name: str
    output_name: str
    convention: InputConvention
    fixed_batch: int | None  # the batch size the graph fixes, None where it is dynamic
    metadata: dict[str, str] = field(default_factory=dict)

    @property
    def input_size(self) -> int:
        """Side of the square images the model takes (28 or 32)."""
        return self.convention.size


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


def inspect_model(path: str | os.PathLike, dataset: str | None = None, *,
                  layout: str = "auto", output: str | None = None,
                  input_scale: float | None = None, mean: float | None = None,
                  std: float | None = None) -> ModelInfo:
    """Load and check ``path`` against the ONNX contract (docs/onnx-contract.md).

    The dataset comes from the ``bgbench.dataset`` metadata, else from ``dataset``; if both are
    present they must agree. ``layout`` (``auto`` detects it from the input shape) and
    ``output`` (the one float ``[batch, classes]`` output unless named) override detection;
    ``input_scale``, ``mean`` and ``std`` set how a float input is scaled (see
    ``bgbench.harness.conventions``).
    """
    path = Path(path)
    if path.is_dir():
        raise BgbenchError(f"{path} is a directory, not a model file; {_onnx_inside(path)}")
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
    dataset = _dataset(path, metadata.get("bgbench.dataset"), dataset)

    initializers = {init.name for init in model.graph.initializer}
    inputs = [i for i in model.graph.input if i.name not in initializers]
    if len(inputs) != 1:
        names = ", ".join(i.name for i in inputs) or "none"
        raise BgbenchError(f"{path} has {len(inputs)} inputs ({names}); the harness needs "
                           "exactly one image input")
    image = inputs[0]
    dims = _dims(image)
    dtype = _input_dtype(path, image)
    layout, size = _layout_and_size(path, image.name, dims, layout)
    convention = make_convention(size, layout, dtype, input_scale, mean, std)
    fixed_batch = dims[0] if isinstance(dims[0], int) and dims[0] > 0 else None
    output_name = _select_output(path, list(model.graph.output), output, NUM_CLASSES[dataset],
                                 dataset)
    return ModelInfo(path=path, sha256=file_sha256(path), dataset=dataset,
                     method=metadata.get("bgbench.method", "unknown"), input_name=image.name,
                     output_name=output_name, convention=convention, fixed_batch=fixed_batch,
                     metadata=metadata)


def _onnx_inside(folder: Path, shown: int = 3) -> str:
    """The fix for a directory given as a model: the first few ``*.onnx`` in it, or that it
    has none."""
    found = sorted(folder.glob("*.onnx"))
    if not found:
        return "it holds no .onnx file; give the path to an .onnx file"
    more = f" (and {len(found) - shown} more)" if len(found) > shown else ""
    return (f"give the .onnx files in it, e.g. {folder / '*.onnx'}: "
            f"{', '.join(str(p) for p in found[:shown])}{more}")


def _dataset(path: Path, meta_dataset: str | None, dataset: str | None) -> str:
    if meta_dataset and dataset and meta_dataset != dataset:
        raise ParameterError("dataset", f"disagrees with {path}, which was exported for dataset "
                             f"{meta_dataset!r}", dataset,
                             f"drop {{dataset}} or evaluate a {dataset} model")
    dataset = meta_dataset or dataset
    if not dataset:
        raise ParameterError("dataset", f"must be given: {path} has no bgbench.dataset metadata",
                             fix=f"say which test set to use: {', '.join(NUM_CLASSES)}")
    check_dataset(dataset)
    return dataset


def check_dataset(dataset: str) -> None:
    """``dataset`` must be one bgbench has test sets for."""
    if dataset not in NUM_CLASSES:
        raise ParameterError("dataset", "is not a dataset bgbench has", dataset,
                             f"choose from {', '.join(NUM_CLASSES)}")


_INPUT_DTYPES = {onnx.TensorProto.FLOAT: "float32", onnx.TensorProto.UINT8: "uint8"}
_FLOAT_OUTPUTS = (onnx.TensorProto.FLOAT, onnx.TensorProto.DOUBLE, onnx.TensorProto.FLOAT16)
_RANKS = {"nchw": 4, "nhwc": 4, "hw": 3, "flat": 2}


def _input_dtype(path: Path, image: onnx.ValueInfoProto) -> str:
    elem = image.type.tensor_type.elem_type if image.type.HasField("tensor_type") else 0
    if elem not in _INPUT_DTYPES:
        name = onnx.TensorProto.DataType.Name(elem) if elem else "not a tensor"
        raise BgbenchError(f"{path}: input {image.name!r} is {name}; the harness feeds FLOAT "
                           "(scaled pixels) or UINT8 (raw pixels); put any other cast inside "
                           "the graph")
    return _INPUT_DTYPES[elem]


def _spatial(layout: str, dims: list) -> tuple[list, list]:
    """The image dims and the channel dims (which must be 1 or symbolic) of ``dims`` under ``layout``."""
    if layout == "nchw":
        return dims[2:4], dims[1:2]
    if layout == "nhwc":
        return dims[1:3], dims[3:4]
    return dims[1:], []


def _layout_and_size(path: Path, name: str, dims: list, layout: str) -> tuple[str, int]:
    shape = f"input {name!r} has shape {dims}"
    accepted = ("[batch, 1, S, S] (nchw), [batch, S, S, 1] (nhwc), [batch, S, S] (hw) or "
                "[batch, S*S] (flat), S = " + " or ".join(map(str, INPUT_SIZES)))
    if layout != "auto" and layout not in LAYOUTS:
        raise ParameterError("layout", f"must be auto or one of {', '.join(LAYOUTS)}", layout)
    candidates = [la for la in LAYOUTS if _RANKS[la] == len(dims)] if layout == "auto" else [layout]
    if layout != "auto" and _RANKS[layout] != len(dims):
        raise BgbenchError(f"{path}: {shape}, which is not {layout}; the harness accepts "
                           f"{accepted}")
    fitting = []
    for la in candidates:
        image, channels = _spatial(la, dims)
        if any(isinstance(c, int) and c != 1 for c in channels):
            continue
        # A side of 1 is a channel axis, never an image side.
        if any(isinstance(d, int) and d <= 1 for d in image):
            continue
        if la == "flat" or image[0] == image[1] or not all(isinstance(d, int) for d in image):
            fitting.append(la)
    if not fitting:
        if layout != "auto":
            raise BgbenchError(f"{path}: {shape}, which is not {layout}; the harness accepts "
                               f"{accepted}")
        channels = [c for la in candidates for c in _spatial(la, dims)[1] if isinstance(c, int)]
        hint = (f" (the test images are grayscale: {channels[0]} channels cannot be fed)"
                if channels and all(c > 1 for c in channels) else "")
        raise BgbenchError(f"{path}: {shape}{hint}; the harness accepts {accepted}")
    if len(fitting) > 1:
        raise ParameterError("layout", f"cannot be told from {path}'s input shape {dims}", "auto",
                             f"set {{layout}} to one of {', '.join(fitting)}")
    [chosen] = fitting
    image = _spatial(chosen, dims)[0]
    if not all(isinstance(d, int) and d > 0 for d in image):
        raise BgbenchError(f"{path}: {shape}; its image dimensions must be fixed numbers "
                           f"({accepted})")
    if chosen == "flat":
        side = math.isqrt(image[0])
        if side * side != image[0] or side not in INPUT_SIZES:
            raise BgbenchError(f"{path}: {shape}; a flat input must hold "
                               + " or ".join(f"{s * s} ({s}x{s})" for s in INPUT_SIZES)
                               + " pixels")
        return chosen, side
    if image[0] not in INPUT_SIZES:
        raise BgbenchError(f"{path}: {shape}: {image[0]}x{image[0]} images are not supported; "
                           "the test sets exist at "
                           + " and ".join(f"{s}x{s}" for s in INPUT_SIZES))
    return chosen, image[0]


def _describe(value: onnx.ValueInfoProto) -> str:
    kind = value.type.WhichOneof("value")
    if kind != "tensor_type":
        return f"{value.name} ({kind.removesuffix('_type') if kind else 'untyped'})"
    elem = onnx.TensorProto.DataType.Name(value.type.tensor_type.elem_type)
    return f"{value.name} ({elem} {_dims(value)})"


def _select_output(path: Path, outputs: list[onnx.ValueInfoProto], wanted: str | None,
                   classes: int, dataset: str) -> str:
    listing = ", ".join(_describe(o) for o in outputs)

    def fits(o: onnx.ValueInfoProto) -> bool:
        dims = _dims(o)
        return (o.type.HasField("tensor_type") and len(dims) == 2
                and o.type.tensor_type.elem_type in _FLOAT_OUTPUTS)

    def check_classes(o: onnx.ValueInfoProto) -> None:
        n = _dims(o)[1]
        if isinstance(n, int) and n > 0 and n != classes:
            raise BgbenchError(f"{path}: output {o.name!r} has {n} classes but {dataset} has "
                               f"{classes}; is this a model for another dataset?")

    if wanted is not None:
        named = [o for o in outputs if o.name == wanted]
        if not named:
            raise ParameterError("output", f"names no output of {path}", wanted,
                                 f"its outputs are {listing}")
        if not fits(named[0]):
            raise BgbenchError(f"{path}: output {_describe(named[0])} is not a float tensor "
                               "shaped [batch, classes]")
        check_classes(named[0])
        return wanted
    shaped = [o for o in outputs if fits(o)]
    matching = [o for o in shaped
                if not (isinstance(_dims(o)[1], int) and _dims(o)[1] > 0)
                or _dims(o)[1] == classes]
    if len(matching) == 1:
        return matching[0].name
    if len(matching) > 1:
        raise ParameterError("output", f"must be given: {path} has "
                             f"{len(matching)} float outputs shaped [batch, classes]",
                             fix=f"name one of {', '.join(o.name for o in matching)}")
    if len(shaped) == 1:
        check_classes(shaped[0])
    zipmap = (" (skl2onnx writes probabilities as a sequence of maps unless converted with "
              "options={'zipmap': False})"
              if any(o.type.HasField("sequence_type") for o in outputs) else "")
    raise BgbenchError(f"{path} has no float output shaped [batch, classes]{zipmap}; its outputs "
                       f"are {listing}")


def open_session(info: ModelInfo, providers: Sequence[str | tuple[str, dict[str, str]]],
                 threads: int) -> ort.InferenceSession:
    """An inference session with explicit options; the requested providers (full names, or
    ``(name, options)`` as ``providers.resolve_providers`` gives) must all be used."""
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
    names = [p if isinstance(p, str) else p[0] for p in providers]
    missing = [p for p in names if p not in used]
    if missing:
        raise BgbenchError(f"onnxruntime did not enable {', '.join(missing)} for {info.path} "
                           f"(it uses {', '.join(used)}); check the driver and library install")
    return session
