"""Models from other toolchains: scikit-learn via skl2onnx, and JAX via jax2onnx.

Each is trained for seconds on a slice of MNIST, exported the way its toolchain does it, and
evaluated by ``bgbench eval`` with the flags its input convention needs. The clean accuracy
must be exactly what plain onnxruntime gives on the original 28x28 test images. Needs the
``interop`` extra (the tests skip without it).
"""

from __future__ import annotations

import json

import numpy as np
import onnxruntime as ort
import pytest

from bgbench.cli import main

pytestmark = [pytest.mark.slow, pytest.mark.realdata]

N_TRAIN = 2000
LIMIT = 500
MEAN, STD = 0.1307, 0.3081


@pytest.fixture(scope="module")
def mnist(real_data_root):
    from bgbench.data import load_numpy

    train_x, train_y = load_numpy("mnist", "train", real_data_root)
    test_x, test_y = load_numpy("mnist", "test", real_data_root)
    return train_x[:N_TRAIN], train_y[:N_TRAIN], test_x[:LIMIT], test_y[:LIMIT]


def plain_onnxruntime_accuracy(path, feed: np.ndarray, output: str, labels) -> float:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (scores,) = session.run([output], {session.get_inputs()[0].name: feed})
    return float(np.mean(scores.argmax(axis=1) == labels))


def bgbench_eval(tmp_path, path, data_root, *flags: str) -> dict:
    out = tmp_path / "res"
    code = main(["eval", str(path), "--dataset", "mnist", "--limit", str(LIMIT),
                 "--backgrounds", "border,clock", "--threads", "2", "--quiet", "--data-root",
                 str(data_root), "--out", str(out), *flags])
    assert code == 0
    [entry] = json.loads((out / "results.json").read_text())["models"]
    return entry


def test_scikit_learn_mlp_via_skl2onnx(tmp_path, mnist, real_data_root, capsys):
    pytest.importorskip("sklearn")
    pytest.importorskip("skl2onnx")
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier

    train_x, train_y, test_x, test_y = mnist
    clf = MLPClassifier(hidden_layer_sizes=(64,), max_iter=8, random_state=0)
    with pytest.warns(ConvergenceWarning):  # a few seconds of training, on purpose
        clf.fit(train_x.reshape(N_TRAIN, -1) / 255.0, train_y)
    types = [("input", FloatTensorType([None, 784]))]
    # skl2onnx's defaults: a label output and probabilities as a sequence of maps.
    zipmap = tmp_path / "zipmap.onnx"
    zipmap.write_bytes(convert_sklearn(clf, initial_types=types).SerializeToString())
    assert main(["eval", str(zipmap), "--dataset", "mnist", "--out", str(tmp_path / "z")]) == 1
    assert "options={'zipmap': False}" in capsys.readouterr().err
    # Without ZipMap: a label (int64 [N]) and probabilities (float [N, 10]) output.
    path = tmp_path / "mlp.onnx"
    proto = convert_sklearn(clf, initial_types=types, options={type(clf): {"zipmap": False}})
    path.write_bytes(proto.SerializeToString())

    entry = bgbench_eval(tmp_path, path, real_data_root)
    feed = test_x.reshape(LIMIT, -1).astype(np.float32) / np.float32(255)
    expected = plain_onnxruntime_accuracy(path, feed, "probabilities", test_y)
    assert entry["accuracy"]["clean"] == expected > 0.8
    assert entry["input"]["layout"] == "flat" and entry["output"] == "probabilities"
    assert (entry["input_size"], entry["size_rule"]) == (28, "native-28")


def test_jax_mlp_via_jax2onnx_nhwc_normalised(tmp_path, mnist, real_data_root):
    jax = pytest.importorskip("jax")
    pytest.importorskip("jax2onnx")
    import jax.numpy as jnp
    from jax2onnx import to_onnx

    train_x, train_y, test_x, test_y = mnist
    # The usual MNIST normalisation, channels last (Flax and Keras habit).
    x = ((train_x.astype(np.float32) / 255 - MEAN) / STD)[..., None]
    k1, k2 = jax.random.split(jax.random.PRNGKey(0))
    params = {"w1": jax.random.normal(k1, (784, 64)) * 0.05, "b1": jnp.zeros(64),
              "w2": jax.random.normal(k2, (64, 10)) * 0.05, "b2": jnp.zeros(10)}

    def apply(p, xb):
        # jax.nn.relu, not jnp.maximum(..., 0): jax2onnx traces that Python 0 as a float64
        # (a warning that JAX truncates it to float32).
        hidden = jax.nn.relu(xb.reshape(xb.shape[0], -1) @ p["w1"] + p["b1"])
        return hidden @ p["w2"] + p["b2"]

    def loss(p, xb, yb):
        return -jnp.mean(jax.nn.log_softmax(apply(p, xb))[jnp.arange(len(yb)), yb])

    @jax.jit
    def step(p, xb, yb):
        return jax.tree_util.tree_map(lambda a, g: a - 0.1 * g, p, jax.grad(loss)(p, xb, yb))

    for _ in range(3):
        for i in range(0, N_TRAIN, 100):
            params = step(params, x[i:i + 100], train_y[i:i + 100])
    proto = to_onnx(lambda xb: apply(params, xb), [("B", 28, 28, 1)])
    path = tmp_path / "jax.onnx"
    path.write_bytes(proto.SerializeToString())

    entry = bgbench_eval(tmp_path, path, real_data_root, "--mean", str(MEAN), "--std", str(STD))
    feed = ((test_x.astype(np.float32) / np.float32(255) - np.float32(MEAN))
            / np.float32(STD))[..., None]
    expected = plain_onnxruntime_accuracy(path, feed, proto.graph.output[0].name, test_y)
    assert entry["accuracy"]["clean"] == expected > 0.7
    assert entry["input"]["layout"] == "nhwc"
    assert (entry["input"]["mean"], entry["input"]["std"]) == (MEAN, STD)
