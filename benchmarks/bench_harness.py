"""asv: the onnxruntime harness on the paper's VGG-block classifier (random, seeded weights).

Inference per batch size and thread count (onnxruntime, and PyTorch eager beside it), one
whole-model evaluation (test-set building included) on a subset sized to keep a sample under
a second, its peak memory, and its images per second.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

WHOLE_IMAGES = 32  # x 27 test sets: 864 images, a few tenths of a second


def _export_vgg(path: Path) -> str:
    import onnx
    import torch

    from bgbench.export import build_metadata, to_onnx
    from bgbench.models.classifier import VGGClassifier

    torch.manual_seed(0)
    proto = to_onnx(VGGClassifier().eval())
    onnx.helper.set_model_props(proto, build_metadata("mnist", "bench", 32))
    onnx.save(proto, str(path), save_as_external_data=False)
    return str(path.resolve())


def _batch(batch_size: int) -> np.ndarray:
    return np.random.default_rng(0).random((batch_size, 1, 32, 32), dtype=np.float32)


class OnnxruntimeInference:
    """One ``session.run`` of a batch, CPU provider."""

    params = ([1, 64, 256], [1, 2])
    param_names = ["batch_size", "threads"]

    def setup_cache(self) -> str:
        return _export_vgg(Path("vgg.onnx"))

    def setup(self, model: str, batch_size: int, threads: int) -> None:
        from bgbench.harness import inspect_model, open_session

        info = inspect_model(model)
        self.session = open_session(info, ["CPUExecutionProvider"], threads)
        self.feed = {info.input_name: _batch(batch_size)}
        self.outputs = [info.output_name]
        self.session.run(self.outputs, self.feed)

    def time_run(self, model: str, batch_size: int, threads: int) -> None:
        self.session.run(self.outputs, self.feed)


class TorchEagerInference:
    """The same weights in PyTorch eager mode (inference_mode), same threads, for comparison."""

    params = ([1, 64, 256], [1, 2])
    param_names = ["batch_size", "threads"]

    def setup(self, batch_size: int, threads: int) -> None:
        import torch

        from bgbench.models.classifier import VGGClassifier

        torch.manual_seed(0)
        torch.set_num_threads(threads)
        self.torch = torch
        self.model = VGGClassifier().eval()
        self.x = torch.from_numpy(_batch(batch_size))
        self.time_forward(batch_size, threads)

    def time_forward(self, batch_size: int, threads: int) -> None:
        with self.torch.inference_mode():
            self.model(self.x)


class WholeEvaluation:
    """Clean + six backgrounds + 20 noise rates on the first 32 MNIST test images, from scratch."""

    timeout = 120

    def setup_cache(self) -> str:
        return _export_vgg(Path("vgg.onnx"))

    def setup(self, model: str) -> None:
        from bgbench.data import load_numpy
        from bgbench.errors import BgbenchError
        from bgbench.harness import default_threads, inspect_model, standard_test_sets

        try:
            images, labels = load_numpy("mnist", "test")
        except BgbenchError as err:
            raise NotImplementedError(f"needs prepared MNIST: {err}") from None
        self.images, self.labels = images[:WHOLE_IMAGES], labels[:WHOLE_IMAGES]
        self.info = inspect_model(model)
        self.sets = standard_test_sets(noise_sweep=True)
        self.threads = default_threads()

    def _evaluate(self):
        from bgbench.harness import TestSuite, evaluate_model

        suite = TestSuite("mnist", self.images, self.labels, threads=self.threads)
        suite.build(self.sets)
        return evaluate_model(self.info, suite, self.sets, ["CPUExecutionProvider"],
                              self.threads, batch_size=500)

    def time_evaluate(self, model: str) -> None:
        self._evaluate()

    def peakmem_evaluate(self, model: str) -> None:
        self._evaluate()

    def track_images_per_second(self, model: str) -> float:
        return self._evaluate().images_per_second

    track_images_per_second.unit = "images/s"
