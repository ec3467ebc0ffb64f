"""Run ONNX classifiers over the test sets and return the numbers (no files, no printing)."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from bgbench import backgrounds as bgs
from bgbench.errors import BgbenchError
from bgbench.harness.model import (
    NUM_CLASSES,
    ModelInfo,
    inspect_model,
    open_session,
    resolve_providers,
)
from bgbench.harness.testsets import CLEAN, NOISE, TestSet, TestSuite, to_model_input

DEFAULT_BATCH_SIZE = 500


def default_threads() -> int:
    """The cores this process may use (what onnxruntime would pick, but recorded explicitly)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


@dataclass(frozen=True)
class TestSetResult:
    """Accuracy and speed of one model on one test set."""

    __test__ = False  # not a pytest class, despite the name

    test_set: TestSet
    n_images: int
    n_correct: int
    seconds: float

    @property
    def accuracy(self) -> float:
        """Fraction of the test set classified correctly."""
        return self.n_correct / self.n_images

    @property
    def images_per_second(self) -> float:
        """Throughput of feeding, inference and scoring on this test set."""
        return self.n_images / self.seconds if self.seconds > 0 else float("inf")


@dataclass
class ModelResult:
    """Everything measured for one model; accuracies are fractions in [0, 1]."""

    model: str
    sha256: str
    dataset: str
    method: str
    provider: str
    providers: list[str]
    threads: int
    batch_size: int
    input_size: int
    test_sets: list[TestSetResult]
    fooled_by_any: float | None
    metadata: dict[str, str] = field(default_factory=dict)

    def _by_name(self) -> dict[str, TestSetResult]:
        return {r.test_set.name: r for r in self.test_sets if r.test_set.name != NOISE}

    @property
    def accuracy(self) -> dict[str, float]:
        """Accuracy on ``clean`` and on each background evaluated, in evaluation order."""
        return {name: r.accuracy for name, r in self._by_name().items()}

    @property
    def clean(self) -> float:
        """Accuracy on the unchanged test set."""
        return self._by_name()[CLEAN].accuracy

    @property
    def background_accuracies(self) -> dict[str, float]:
        """Accuracy on each background evaluated (clean excluded)."""
        return {k: v for k, v in self.accuracy.items() if k != CLEAN}

    @property
    def background_average(self) -> float | None:
        """Mean accuracy over the backgrounds evaluated (the paper's "average" column)."""
        values = list(self.background_accuracies.values())
        return float(np.mean(values)) if values else None

    @property
    def background_worst(self) -> float | None:
        """Lowest accuracy over the backgrounds evaluated."""
        values = list(self.background_accuracies.values())
        return min(values) if values else None

    @property
    def noise_sweep(self) -> dict[str, float]:
        """Accuracy per noise rate, keyed by the rate as written in results.json (``"0.01"``)."""
        return {str(r.test_set.parameter): r.accuracy
                for r in self.test_sets if r.test_set.name == NOISE}

    @property
    def images_per_second(self) -> float:
        """Images over seconds, summed over every test set of this model."""
        seconds = sum(r.seconds for r in self.test_sets)
        return sum(r.n_images for r in self.test_sets) / seconds if seconds > 0 else float("inf")


class Evaluator:
    """One onnxruntime session for one checked model; scores it on test sets of its dataset."""

    def __init__(self, info: ModelInfo, providers: list[str], threads: int, batch_size: int):
        if batch_size <= 0:
            raise BgbenchError(f"--batch-size must be positive, got {batch_size}")
        if threads <= 0:
            raise BgbenchError(f"--threads must be positive, got {threads}")
        self.info = info
        self.threads = threads
        self.batch_size = batch_size
        self.session = open_session(info, providers, threads)
        self.providers = self.session.get_providers()

    def predict(self, images_u8: np.ndarray) -> np.ndarray:
        """Predicted class of each ``uint8 [N, 32, 32]`` image, as int64 ``[N]``."""
        info = self.info
        preds = np.empty(images_u8.shape[0], np.int64)
        for start in range(0, images_u8.shape[0], self.batch_size):
            batch = to_model_input(images_u8[start:start + self.batch_size], info.input_size)
            (logits,) = self.session.run([info.output_name], {info.input_name: batch})
            if logits.ndim != 2 or logits.shape[0] != batch.shape[0]:
                raise BgbenchError(f"{info.path}: output has shape {list(logits.shape)} for a "
                                   f"batch of {batch.shape[0]}; it must be [batch, classes]")
            if info.num_classes is None and logits.shape[1] != NUM_CLASSES[info.dataset]:
                raise BgbenchError(f"{info.path}: output has {logits.shape[1]} classes but "
                                   f"{info.dataset} has {NUM_CLASSES[info.dataset]}; is this a "
                                   "model for another dataset?")
            preds[start:start + batch.shape[0]] = logits.argmax(axis=1)
        return preds

    def score(self, suite: TestSuite, test_set: TestSet) -> tuple[TestSetResult, np.ndarray]:
        """Result on ``test_set`` and the per-image correctness (bool ``[N]``)."""
        images = suite.composite(test_set)
        start = time.perf_counter()
        correct = self.predict(images) == suite.labels
        seconds = time.perf_counter() - start
        return TestSetResult(test_set, len(suite), int(correct.sum()), seconds), correct


def evaluate_model(info: ModelInfo, suite: TestSuite, test_sets: list[TestSet],
                   providers: list[str], threads: int, batch_size: int) -> ModelResult:
    """Score one checked model on ``test_sets`` of ``suite`` (which must be its dataset)."""
    if suite.dataset != info.dataset:
        raise BgbenchError(f"{info.path} is a {info.dataset} model but the test suite is "
                           f"{suite.dataset}")
    evaluator = Evaluator(info, providers, threads, batch_size)
    results = []
    clean_correct = None
    fooled = np.zeros(len(suite), bool)
    n_backgrounds = 0
    for test_set in test_sets:
        result, correct = evaluator.score(suite, test_set)
        results.append(result)
        if test_set.name == CLEAN:
            clean_correct = correct
        elif test_set.name in bgs.BACKGROUNDS:
            fooled |= ~correct
            n_backgrounds += 1
    fooled_by_any = None
    if clean_correct is not None and n_backgrounds:
        fooled_by_any = float((clean_correct & fooled).mean())
    return ModelResult(model=str(info.path), sha256=info.sha256, dataset=info.dataset,
                       method=info.method, provider=evaluator.providers[0],
                       providers=list(evaluator.providers), threads=threads,
                       batch_size=batch_size, input_size=info.input_size, test_sets=results,
                       fooled_by_any=fooled_by_any, metadata=dict(info.metadata))


def evaluate(models: list[str | os.PathLike] | str | os.PathLike, *, dataset: str | None = None,
             backgrounds: list[str] | None = None, noise_sweep: bool = False,
             providers: list[str] | tuple[str, ...] = ("cpu",), threads: int | None = None,
             batch_size: int = DEFAULT_BATCH_SIZE, data_root: str | os.PathLike | None = None,
             limit: int | None = None,
             suites: dict[str, TestSuite] | None = None) -> list[ModelResult]:
    """Evaluate ONNX classifiers on clean, the backgrounds and optionally the noise sweep.

    Every model is checked before any is run. Test sets are built once per dataset and shared
    by all models (pass ``suites`` to reuse them across calls, or to supply your own images).
    ``backgrounds`` defaults to all six; ``threads`` to the cores available.
    """
    from bgbench.harness.testsets import load_suite, standard_test_sets

    paths = [models] if isinstance(models, (str, os.PathLike)) else list(models)
    if not paths:
        raise BgbenchError("no model given; pass one or more .onnx files")
    threads = default_threads() if threads is None else threads
    full_providers = resolve_providers(list(providers))
    test_sets = standard_test_sets(backgrounds, noise_sweep)
    infos = [inspect_model(Path(p), dataset) for p in paths]
    suites = {} if suites is None else suites
    results = []
    for info in infos:
        if info.dataset not in suites:
            suites[info.dataset] = load_suite(info.dataset, data_root, limit, threads)
        suite = suites[info.dataset]
        suite.build(test_sets)
        results.append(evaluate_model(info, suite, test_sets, full_providers, threads,
                                      batch_size))
    return results
