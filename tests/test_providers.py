"""Execution-provider names, options, GPU library preloading and the recorded provider list."""

import importlib.metadata

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper

from bgbench.errors import BgbenchError, UsageError
from bgbench.harness import providers as prov

GPU_BUILD = ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"]


@pytest.fixture
def gpu_onnxruntime(monkeypatch):
    """onnxruntime-gpu as it looks from Python; records preload_dlls calls."""
    calls = []
    monkeypatch.setattr(ort, "get_available_providers", lambda: list(GPU_BUILD))
    monkeypatch.setattr(ort, "preload_dlls", lambda: calls.append(True), raising=False)
    return calls


def _installed_only(monkeypatch, *names):
    real = importlib.metadata.version

    def version(dist):
        if dist in ("onnxruntime", "onnxruntime-gpu"):
            if dist in names:
                return "1.32.0"
            raise importlib.metadata.PackageNotFoundError(dist)
        return real(dist)

    monkeypatch.setattr(importlib.metadata, "version", version)


def test_cpu_resolves_with_no_options():
    assert prov.resolve_providers(["cpu"]) == [("CPUExecutionProvider", {})]
    assert prov.resolve_providers([" CPUExecutionProvider "]) == [("CPUExecutionProvider", {})]


def test_cuda_and_tensorrt_with_options_preload_gpu_libraries(gpu_onnxruntime):
    resolved = prov.resolve_providers(["tensorrt", "cuda", "cpu"],
                                      ["trt_fp16_enable=1", "cuda:device_id=0",
                                       "CUDAExecutionProvider:cudnn_conv_algo_search=HEURISTIC"])
    assert resolved == [("TensorrtExecutionProvider", {"trt_fp16_enable": "1"}),
                        ("CUDAExecutionProvider", {"device_id": "0",
                                                   "cudnn_conv_algo_search": "HEURISTIC"}),
                        ("CPUExecutionProvider", {})]
    assert gpu_onnxruntime == [True]


def test_cpu_only_request_does_not_preload(gpu_onnxruntime):
    prov.resolve_providers(["cpu"])
    assert gpu_onnxruntime == []


def test_preload_is_skipped_where_onnxruntime_has_none(monkeypatch):
    monkeypatch.delattr(ort, "preload_dlls", raising=False)
    assert prov.preload_gpu_libraries() is False


def test_preload_failure_names_the_fix(monkeypatch):
    def broken():
        raise OSError("libcudnn.so.9: cannot open shared object file")

    monkeypatch.setattr(ort, "preload_dlls", broken, raising=False)
    with pytest.raises(BgbenchError, match=r"libcudnn\.so\.9.*onnxruntime-gpu\[cuda,cudnn\]"):
        prov.preload_gpu_libraries()


def test_cuda_on_the_cpu_package_says_to_replace_it(monkeypatch):
    monkeypatch.setattr(ort, "get_available_providers", lambda: ["CPUExecutionProvider"])
    _installed_only(monkeypatch, "onnxruntime")
    with pytest.raises(UsageError, match=r"'cuda' is not available.*pip uninstall -y onnxruntime "
                                         r"&& pip install 'bgbench\[gpu\]'"):
        prov.resolve_providers(["cuda"])


def test_cuda_with_both_packages_installed_says_to_keep_one(monkeypatch):
    monkeypatch.setattr(ort, "get_available_providers", lambda: ["CPUExecutionProvider"])
    _installed_only(monkeypatch, "onnxruntime", "onnxruntime-gpu")
    with pytest.raises(UsageError, match="both installed.*pip uninstall -y onnxruntime onnxruntime-gpu"):
        prov.resolve_providers(["cuda"])


def test_tensorrt_missing_from_a_gpu_build(monkeypatch):
    monkeypatch.setattr(ort, "get_available_providers",
                        lambda: ["CUDAExecutionProvider", "CPUExecutionProvider"])
    _installed_only(monkeypatch, "onnxruntime-gpu")
    with pytest.raises(UsageError, match="'tensorrt' is not available.*does not include it"):
        prov.resolve_providers(["tensorrt"])


@pytest.mark.parametrize("names, options, message", [
    ([], [], "no execution provider"),
    (["cpu", "CPUExecutionProvider"], [], "given twice"),
    (["nosuch"], [], "'nosuch' is not available"),
    (["cpu"], ["device_id"], "not KEY=VALUE"),
    (["cpu"], ["=1"], "not KEY=VALUE"),
    (["cpu"], ["cuda:device_id=0"], "not among the requested providers"),
    (["cpu"], ["a=1", "cpu:a=2"], "given twice for CPUExecutionProvider"),
])
def test_bad_requests_are_usage_errors(names, options, message):
    with pytest.raises(UsageError, match=message):
        prov.resolve_providers(names, options)


def test_record_lists_the_providers_used_with_their_options():
    resolved = [("CUDAExecutionProvider", {"device_id": "0"})]
    used = ["CUDAExecutionProvider", "CPUExecutionProvider"]
    assert prov.provider_record(resolved, used) == [
        {"name": "CUDAExecutionProvider", "options": {"device_id": "0"}},
        {"name": "CPUExecutionProvider", "options": {}},
    ]


def test_resolved_list_opens_a_session(tmp_path):
    # The resolved form, options included, is what InferenceSession takes as its providers.
    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 2])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 2])])
    path = tmp_path / "relu.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)]), path)
    resolved = prov.resolve_providers(["cpu"], ["use_arena=0"])
    session = ort.InferenceSession(str(path), providers=resolved)
    assert session.get_providers() == ["CPUExecutionProvider"]
    out = session.run(None, {"x": np.array([[-1.0, 2.0]], dtype=np.float32)})[0]
    assert out.tolist() == [[0.0, 2.0]]
