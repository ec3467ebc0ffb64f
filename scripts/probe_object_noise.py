"""Accuracy of ONNX models on validation images whose object is noisy or has holes.

A diagnostic, not a test set: it scores models on 3,000 images of the validation split that
bgbench's training holds out (split seed 0, 5,000 images), never on test images, so that a
training choice it informs stays a validation choice. Conditions: clean; shot noise as the
extended suite defines it (``Poisson(12 x) / 12``, clipped at 1); Gaussian noise of standard
deviation 0.1/0.2/0.3 added inside the object region (``bgbench.backgrounds.foreground``),
clipped to [0, 1]; and holes: 20% of the non-zero pixels set to 0, independently.

    python scripts/probe_object_noise.py DATASET MODEL.onnx [MODEL.onnx ...]
"""

from __future__ import annotations

import sys

import numpy as np
import onnxruntime as ort

from bgbench.backgrounds import foreground
from bgbench.data.load import load_numpy

VAL_SIZE, SPLIT_SEED, N_IMAGES, BATCH = 5000, 0, 3000, 500


def conditions(images: np.ndarray) -> dict[str, np.ndarray]:
    """Each condition's float images ``[N, 28, 28]`` in [0, 1], drawn with one seed."""
    rng = np.random.default_rng(0)
    x = images.astype(np.float32) / 255
    region = foreground(images)
    out = {"clean": x, "shot-noise": np.minimum(rng.poisson(x * 12) / 12, 1)}
    for sigma in (0.1, 0.2, 0.3):
        noise = rng.normal(0, sigma, x.shape)
        out[f"gauss-{sigma}"] = np.clip(np.where(region, x + noise, x), 0, 1)
    out["holes-0.2"] = np.where(rng.random(x.shape) < 0.2, 0, x)
    return {k: v.astype(np.float32) for k, v in out.items()}


def validation_images(dataset: str) -> tuple[np.ndarray, np.ndarray]:
    """The first ``N_IMAGES`` of bgbench's validation split of the training set."""
    from bgbench.train.data import split_indices  # imports torch

    images, labels = load_numpy(dataset, "train")
    val, _ = split_indices(len(labels), VAL_SIZE, SPLIT_SEED)
    index = val.numpy()[:N_IMAGES]
    return images[index], labels[index]


def accuracy(session: ort.InferenceSession, x: np.ndarray, labels: np.ndarray) -> float:
    """Top-1 accuracy of a 32x32 NCHW float model on 28x28 images zero-padded to 32x32."""
    name = session.get_inputs()[0].name
    padded = np.pad(x, ((0, 0), (2, 2), (2, 2)))[:, None]
    logits = np.concatenate([session.run(None, {name: padded[i:i + BATCH]})[0]
                             for i in range(0, len(x), BATCH)])
    return float((logits.argmax(1) == labels).mean())


def main(argv: list[str]) -> None:
    dataset, models = argv[0], argv[1:]
    images, labels = validation_images(dataset)
    sets = conditions(images)
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    print("| model | " + " | ".join(sets) + " |")
    print("|---|" + "---:|" * len(sets))
    for path in models:
        session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
        cells = [f"{100 * accuracy(session, x, labels):.1f}" for x in sets.values()]
        print(f"| {path.rsplit('/', 1)[-1]} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main(sys.argv[1:])
