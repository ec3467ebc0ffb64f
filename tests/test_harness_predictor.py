"""``evaluate_predictor``: in-process models (numpy, torch) score as their ONNX twins; progress."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from onnx_linear import linear_onnx

from bgbench.errors import BgbenchError, ParameterError
from bgbench.harness import Progress, TestSuite, evaluate, evaluate_predictor, write_results

N_IMAGES = 240
WEIGHTS = np.random.default_rng(5).normal(size=(32 * 32, 10)).astype(np.float32)


@pytest.fixture
def suites() -> dict[str, TestSuite]:
    rng = np.random.default_rng(0)
    images = np.zeros((N_IMAGES, 28, 28), np.uint8)
    images[:, 6:22, 6:22] = rng.integers(0, 256, (N_IMAGES, 16, 16), dtype=np.uint8)
    labels = rng.integers(0, 10, N_IMAGES).astype(np.int64)
    return {"mnist": TestSuite("mnist", images, labels, threads=1)}


def onnx_twin(tmp_path, weights: np.ndarray, size: int = 32):
    return linear_onnx(tmp_path / "twin.onnx", weights, size=size)


def counts(result) -> dict[str, int]:
    return {r.test_set.label: r.n_correct for r in result.test_sets}


def test_numpy_predictor_scores_as_its_onnx_twin(tmp_path, suites):
    [expected] = evaluate(onnx_twin(tmp_path, WEIGHTS), dataset="mnist", threads=1,
                          noise_sweep=True, suites=suites)
    result = evaluate_predictor(lambda x: x.reshape(len(x), -1) @ WEIGHTS, "mnist",
                                threads=1, noise_sweep=True, suites=suites, name="numpy-linear")
    assert counts(result) == counts(expected)
    assert (result.provider, result.sha256, result.model) == ("in-process", None, "numpy-linear")
    json_path, csv_path = write_results(tmp_path / "out", [result])
    [entry] = json.loads(json_path.read_text())["models"]
    assert entry["accuracy"] == expected.accuracy and entry["sha256"] is None
    assert entry["input"]["layout"] == "nchw" and entry["output"] is None


def test_torch_module_in_process_at_28(tmp_path, suites, one_torch_thread):
    import torch

    weights = WEIGHTS[:28 * 28]
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(28 * 28, 10, bias=False))
    with torch.no_grad():
        model[1].weight.copy_(torch.from_numpy(weights.T))
    model.eval()

    def predict(x: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return model(torch.from_numpy(x)).numpy()

    [expected] = evaluate(onnx_twin(tmp_path, weights, size=28), dataset="mnist", threads=1,
                          suites=suites)
    result = evaluate_predictor(predict, "mnist", input_size=28, layout="nhwc", threads=1,
                                batch_size=64, suites=suites)
    assert result.size_rule == "native-28"
    # Same weights, float32 sums in another order: a flipped near-tie at most.
    for label, n in counts(expected).items():
        assert abs(counts(result)[label] - n) <= 1, label


def test_predictor_outputs_are_checked(suites):
    def nan(x):
        return np.full((len(x), 10), np.nan, np.float32)

    with pytest.raises(BgbenchError, match="^nan-model on clean: NaN outputs for 240 of 240"):
        evaluate_predictor(nan, "mnist", threads=1, suites=suites, name="nan-model")
    with pytest.raises(BgbenchError, match=r"output has shape \[10\] for a batch of 100"):
        evaluate_predictor(lambda x: np.zeros(10), "mnist", threads=1, batch_size=100,
                           suites=suites)
    with pytest.raises(ParameterError, match="`predict` must be a function"):
        evaluate_predictor(np.zeros(3), "mnist", suites=suites)
    with pytest.raises(ParameterError, match="^`batch_size` must be a positive integer, got 0$"):
        evaluate_predictor(nan, "mnist", batch_size=0, suites=suites)
    with pytest.raises(ParameterError, match="^`dataset` is not a dataset bgbench has, got 'cifar10'"):
        evaluate_predictor(nan, "cifar10", suites=suites)
    with pytest.raises(ParameterError, match="^`input_size` must be one of 32, 28"):
        evaluate_predictor(nan, "mnist", input_size=24, suites=suites)


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_bar_on_a_terminal_and_silence_when_quiet(suites):
    def predict(x):
        return x.reshape(len(x), -1) @ WEIGHTS

    terminal = Terminal()
    evaluate_predictor(predict, "mnist", threads=1, suites=suites, name="tty-model",
                       progress=Progress(stream=terminal))
    shown = terminal.getvalue()
    assert "tty-model" in shown and "7/7" in shown
    log = io.StringIO()
    evaluate_predictor(predict, "mnist", threads=1, suites=suites, name="logged",
                       progress=Progress(stream=log))
    assert log.getvalue().count("\n") == 1 and log.getvalue().startswith("logged: 7 test sets")
    quiet = Terminal()
    evaluate_predictor(predict, "mnist", threads=1, suites=suites,
                       progress=Progress(quiet=True, stream=quiet))
    assert quiet.getvalue() == ""
