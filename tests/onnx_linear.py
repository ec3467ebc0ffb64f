"""A linear classifier as an ONNX graph, for tests that need a model whose answers they can
compute by hand: ``logits = flatten(images) @ W (+ b)``, images ``[batch, 1, size, size]``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def linear_onnx(path: Path, weights: np.ndarray, bias: np.ndarray | None = None,
                size: int = 32) -> Path:
    """Write the linear model of ``weights`` ``[size*size, 10]`` (and ``bias`` ``[10]``)."""
    nodes = [helper.make_node("Reshape", ["images", "shape"], ["flat"]),
             helper.make_node("MatMul", ["flat", "W"], ["mm" if bias is not None else "logits"])]
    inits = [numpy_helper.from_array(np.array([-1, size * size], np.int64), "shape"),
             numpy_helper.from_array(weights, "W")]
    if bias is not None:
        nodes.append(helper.make_node("Add", ["mm", "b"], ["logits"]))
        inits.append(numpy_helper.from_array(bias, "b"))
    graph = helper.make_graph(
        nodes, "linear", [helper.make_tensor_value_info("images", TensorProto.FLOAT,
                                                        ["batch", 1, size, size])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 10])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 9
    onnx.save(model, str(path))
    return path
