"""Run classifiers over the test sets and return the numbers (no files; progress on request).

A ``Scorer`` feeds test images through any ``predict`` function and refuses an output it
cannot score honestly; ``Evaluator`` is the scorer of one ONNX model in onnxruntime. The one
pass over each test set keeps, beside the accuracy, which images were right and what
``bgbench.harness.measures`` derives from the outputs (confusion, flip rate, calibration).
"""

from __future__ import annotations

import dataclasses
import hashlib
import inspect
import os
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from bgbench import backgrounds as bgs
from bgbench import extended
from bgbench.errors import BgbenchError
from bgbench.harness import measures as ms
from bgbench.harness.conventions import InputConvention
from bgbench.harness.model import (
    NUM_CLASSES,
    ModelInfo,
    inspect_model,
    open_session,
)
from bgbench.harness.params import ParameterError, check_positive
from bgbench.harness.progress import Progress
from bgbench.harness.providers import Resolved, provider_record, resolve_providers
from bgbench.harness.sizes import size_rule
from bgbench.harness.stats import wilson
from bgbench.harness.testsets import (
    CLEAN,
    EXTENDED_SUITE,
    NOISE,
    PAPER_SUITE,
    TestSet,
    TestSuite,
)

DEFAULT_BATCH_SIZE = 500

Predict = Callable[[np.ndarray], Any]


def default_threads() -> int:
    """The cores this process may use (what onnxruntime would pick, but recorded explicitly)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


@dataclass(frozen=True)
class TestSetResult:
    """Accuracy and speed of one model on one test set; ``correct`` (bool ``[N]``) says which
    images were right, ``definition`` identifies the images fed (``composites_sha256``) and
    ``measures`` holds what the outputs showed besides (None where not measured)."""

    __test__ = False  # not a pytest class, despite the name

    test_set: TestSet
    n_images: int
    n_correct: int
    seconds: float
    correct: np.ndarray | None = field(default=None, compare=False, repr=False)
    definition: str | None = None
    measures: ms.SetMeasures | None = field(default=None, compare=False, repr=False)

    @property
    def accuracy(self) -> float:
        """Fraction of the test set classified correctly."""
        return self.n_correct / self.n_images

    @property
    def interval(self) -> tuple[float, float]:
        """The 95% Wilson interval of ``accuracy``."""
        return wilson(self.n_correct, self.n_images)

    @property
    def images_per_second(self) -> float:
        """Throughput of feeding, inference and scoring on this test set."""
        return self.n_images / self.seconds if self.seconds > 0 else float("inf")


@dataclass
class ModelResult:
    """Everything measured for one model; accuracies are fractions in [0, 1].

    ``sha256`` is None for an in-process predictor; ``provider`` is then ``in-process``.
    """

    model: str
    sha256: str | None
    dataset: str
    method: str
    provider: str
    providers: list[str]
    threads: int
    batch_size: int
    convention: InputConvention
    output: str | None
    fixed_batch: int | None
    test_sets: list[TestSetResult]
    fooled_by_any: float | None
    metadata: dict[str, str] = field(default_factory=dict)
    # Each provider the session used, with the options asked for it.
    provider_options: list[dict[str, object]] = field(default_factory=list)
    # The worst-case background search (``bgbench.attack``), where it ran.
    worst_case: Any = None

    @property
    def input_size(self) -> int:
        """Side of the square images the model takes."""
        return self.convention.size

    @property
    def size_rule(self) -> str:
        """The rule that built the test sets at ``input_size`` (see ``bgbench.harness.sizes``)."""
        return size_rule(self.input_size)

    def _by_name(self) -> dict[str, TestSetResult]:
        return {r.test_set.name: r for r in self.test_sets
                if r.test_set.name != NOISE and r.test_set.suite == PAPER_SUITE}

    @property
    def suite(self) -> str:
        """``extended`` if any extended-suite set was evaluated, else ``paper``."""
        return (EXTENDED_SUITE if any(r.test_set.suite == EXTENDED_SUITE for r in self.test_sets)
                else PAPER_SUITE)

    @property
    def accuracy(self) -> dict[str, float]:
        """Accuracy on ``clean`` and on each of the paper's backgrounds evaluated, in
        evaluation order (the extended suite's sets are in ``extended_accuracy``)."""
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
    def extended_accuracy(self) -> dict[str, float]:
        """Accuracy on each extended-suite set evaluated, in registry order ({} under ``paper``)."""
        return {r.test_set.name: r.accuracy for r in self.test_sets
                if r.test_set.suite == EXTENDED_SUITE}

    def _extended_average(self, names: tuple[str, ...]) -> float | None:
        values = [v for k, v in self.extended_accuracy.items() if k in names]
        return float(np.mean(values)) if values else None

    @property
    def extended_background_average(self) -> float | None:
        """Mean accuracy over the extended suite's background sets (None if not evaluated)."""
        return self._extended_average(extended.BACKGROUND_SETS)

    @property
    def extended_photometric_average(self) -> float | None:
        """Mean accuracy over the extended suite's photometric sets (None if not evaluated)."""
        return self._extended_average(extended.PHOTOMETRIC_SETS)

    @property
    def noise_sweep(self) -> dict[str, float]:
        """Accuracy per noise rate, keyed by the rate as written in results.json (``"0.01"``)."""
        return {str(r.test_set.parameter): r.accuracy
                for r in self.test_sets if r.test_set.name == NOISE}

    @property
    def output_kind(self) -> str | None:
        """``logits``, ``probabilities`` or ``neither`` (``bgbench.harness.measures``); None
        where the outputs were not kept."""
        measures = self.test_sets[0].measures
        return measures.output_kind if measures else None

    @property
    def images_per_second(self) -> float:
        """Images over seconds, summed over every test set of this model."""
        seconds = sum(r.seconds for r in self.test_sets)
        return sum(r.n_images for r in self.test_sets) / seconds if seconds > 0 else float("inf")


def check_batch_size(name: str, batch_size: int, fixed_batch: int | None) -> None:
    """``batch_size`` must be positive, and equal to the batch a model's graph fixes, if any."""
    check_positive("batch_size", batch_size)
    if fixed_batch is not None and batch_size != fixed_batch:
        raise ParameterError("batch_size", f"must be {fixed_batch} for {name}, whose batch "
                             f"dimension is fixed at {fixed_batch}", batch_size,
                             "leave it unset")


class Scorer:
    """Feeds test images to ``predict`` batch by batch and checks every output it returns.

    ``predict`` maps one input batch (shaped and typed by ``convention``) to logits or
    probabilities ``[batch, classes]``. With ``fixed_batch`` every call gets exactly that
    many images: the last batch is padded with blank images whose outputs are dropped.
    """

    def __init__(self, name: str, predict: Predict, convention: InputConvention, dataset: str,
                 batch_size: int, fixed_batch: int | None = None):
        check_batch_size(name, batch_size, fixed_batch)
        self.name = name
        self.run = predict
        self.convention = convention
        self.dataset = dataset
        self.num_classes = NUM_CLASSES[dataset]
        self.batch_size = batch_size
        self.fixed_batch = fixed_batch

    def outputs(self, images_u8: np.ndarray, test_set: TestSet | None = None) -> np.ndarray:
        """The checked outputs ``[N, classes]`` for ``uint8 [N, S, S]`` images, in the dtype
        of the model's first batch."""
        out: np.ndarray | None = None
        for start, logits in self.batches(images_u8, test_set.label if test_set else None):
            if out is None:
                out = np.empty((images_u8.shape[0], self.num_classes), logits.dtype)
            out[start:start + len(logits)] = logits
        if out is None:
            where = f"{self.name} on {test_set.label if test_set else 'a batch'}"
            raise BgbenchError(f"{where}: no image to score")
        return out

    def predict(self, images_u8: np.ndarray, test_set: TestSet | None = None) -> np.ndarray:
        """Predicted class of each ``uint8 [N, S, S]`` image, as int64 ``[N]``."""
        return self.outputs(images_u8, test_set).argmax(axis=1)

    def batches(self, images_u8: np.ndarray, label: str | None = None
                ) -> Iterator[tuple[int, np.ndarray]]:
        """``(start, checked outputs [n, classes])`` for each batch of ``uint8 [N, S, S]``
        images; ``label`` names what is scored in errors."""
        where = f"{self.name} on {label or 'a batch'}"
        for start in range(0, images_u8.shape[0], self.batch_size):
            chunk = images_u8[start:start + self.batch_size]
            n = chunk.shape[0]
            if self.fixed_batch is not None and n < self.fixed_batch:
                blank = np.zeros((self.fixed_batch - n, *chunk.shape[1:]), np.uint8)
                chunk = np.concatenate([chunk, blank])
            yield start, self._checked(self.run(self.convention.feed(chunk)), chunk.shape[0],
                                       where)[:n]

    def _checked(self, output: Any, fed: int, where: str) -> np.ndarray:
        try:
            logits = np.asarray(output)
        except Exception as err:  # torch tensors that need grad, lists of lists, ...
            raise BgbenchError(f"{where}: the output ({type(output).__name__}) is not an array "
                               f"({type(err).__name__}); return a numpy array [batch, classes]"
                               ) from None
        if logits.ndim != 2 or logits.shape[0] != fed:
            raise BgbenchError(f"{where}: output has shape {list(logits.shape)} for a batch of "
                               f"{fed}; it must be [batch, classes]")
        if logits.shape[1] != self.num_classes:
            raise BgbenchError(f"{where}: output has {logits.shape[1]} classes but "
                               f"{self.dataset} has {self.num_classes}; is this a model for "
                               "another dataset?")
        if not np.issubdtype(logits.dtype, np.number):
            raise BgbenchError(f"{where}: output is {logits.dtype}, not numbers")
        finite = np.isfinite(logits).all(axis=1)
        if not finite.all():
            kinds = " and ".join(k for k, bad in (("NaN", np.isnan(logits).any()),
                                                 ("infinite", np.isinf(logits).any())) if bad)
            raise BgbenchError(f"{where}: {kinds} outputs for {int((~finite).sum())} of {fed} "
                               "images; a model whose outputs are not finite cannot be scored")
        return logits

    def score(self, suite: TestSuite, test_set: TestSet) -> tuple[TestSetResult, np.ndarray]:
        """Result on ``test_set`` (with its per-image correctness) and the model's outputs
        ``[N, classes]``."""
        images = suite.composite(test_set, self.convention.size)
        start = time.perf_counter()
        outputs = self.outputs(images, test_set)
        correct = outputs.argmax(axis=1) == suite.labels
        seconds = time.perf_counter() - start
        return TestSetResult(test_set, len(suite), int(correct.sum()), seconds, correct,
                             composites_sha256(images, suite.labels)), outputs


def composites_sha256(images: np.ndarray, labels: np.ndarray) -> str:
    """SHA-256 of a test set's composites and labels: two models were scored on the same
    images exactly when these agree."""
    digest = hashlib.sha256(f"{images.dtype} {list(images.shape)};".encode())
    digest.update(np.ascontiguousarray(images).data)
    digest.update(np.ascontiguousarray(labels, np.int64).data)
    return digest.hexdigest()


class Evaluator(Scorer):
    """One onnxruntime session for one checked model; scores it on test sets of its dataset."""

    def __init__(self, info: ModelInfo, providers: Resolved | list[str], threads: int,
                 batch_size: int | None = None):
        check_positive("threads", threads)
        if batch_size is None:
            batch_size = info.fixed_batch or DEFAULT_BATCH_SIZE
        super().__init__(str(info.path), self._run, info.convention, info.dataset, batch_size,
                         info.fixed_batch)
        self.info = info
        self.threads = threads
        self.session = open_session(info, providers, threads)
        self.providers = self.session.get_providers()
        asked = [(p, {}) if isinstance(p, str) else p for p in providers]
        self.provider_options = provider_record(asked, self.providers)

    def _run(self, batch: np.ndarray) -> np.ndarray:
        (logits,) = self.session.run([self.info.output_name], {self.info.input_name: batch})
        return logits

    def result(self, test_sets: list[TestSetResult], fooled_by_any: float | None = None,
               worst_case: Any = None) -> ModelResult:
        """This model's ``ModelResult`` from what was measured with this evaluator."""
        info = self.info
        return ModelResult(model=str(info.path), sha256=info.sha256, dataset=info.dataset,
                           method=info.method, provider=self.providers[0],
                           providers=list(self.providers), threads=self.threads,
                           batch_size=self.batch_size, convention=info.convention,
                           output=info.output_name, fixed_batch=info.fixed_batch,
                           test_sets=test_sets, fooled_by_any=fooled_by_any,
                           metadata=dict(info.metadata), provider_options=self.provider_options,
                           worst_case=worst_case)


def score_all(scorer: Scorer, suite: TestSuite, test_sets: list[TestSet],
              progress: Progress | None = None) -> tuple[list[TestSetResult], float | None]:
    """Every test set's result (with its ``measures``), and the share of images right on clean
    but fooled by a background.

    The outputs of every set are kept until the last is scored: whether they are logits or
    probabilities is decided over all of them, and the flip rate needs the clean predictions.
    """
    if not test_sets:
        raise BgbenchError("no test set to evaluate")
    results, outputs = [], []
    clean_correct = clean_pred = None
    fooled = np.zeros(len(suite), bool)
    n_backgrounds = 0
    progress = progress or Progress(quiet=True)
    for test_set in progress.over(scorer.name, test_sets):
        result, out = scorer.score(suite, test_set)
        results.append(result)
        outputs.append(out)
        if test_set.name == CLEAN:
            clean_correct, clean_pred = result.correct, out.argmax(axis=1)
        elif test_set.name in bgs.BACKGROUNDS:
            fooled |= ~result.correct
            n_backgrounds += 1
    fooled_by_any = None
    if clean_correct is not None and n_backgrounds:
        fooled_by_any = float((clean_correct & fooled).mean())
    kind = ms.output_kind(outputs)
    results = [dataclasses.replace(r, measures=ms.set_measures(
        out, suite.labels, kind, scorer.num_classes,
        None if r.test_set.name == CLEAN else clean_pred, clean_correct))
        for r, out in zip(results, outputs, strict=True)]
    return results, fooled_by_any


def evaluate_model(info: ModelInfo, suite: TestSuite, test_sets: list[TestSet],
                   providers: Resolved | list[str], threads: int,
                   batch_size: int | None = None,
                   progress: Progress | None = None) -> ModelResult:
    """Score one checked model on ``test_sets`` of ``suite`` (which must be its dataset)."""
    if suite.dataset != info.dataset:
        raise BgbenchError(f"{info.path} is a {info.dataset} model but the test suite is "
                           f"{suite.dataset}")
    evaluator = Evaluator(info, providers, threads, batch_size)
    results, fooled_by_any = score_all(evaluator, suite, test_sets, progress)
    result = evaluator.result(results, fooled_by_any)
    if progress is not None:
        progress.done(result)
    return result


def evaluate(models: list[str | os.PathLike] | str | os.PathLike, *, dataset: str | None = None,
             backgrounds: list[str] | None = None, noise_sweep: bool = False,
             providers: list[str] | tuple[str, ...] = ("cpu",),
             provider_options: list[str] | tuple[str, ...] = (), threads: int | None = None,
             batch_size: int | None = None, data_root: str | os.PathLike | None = None,
             limit: int | None = None, layout: str = "auto", output: str | None = None,
             input_scale: float | None = None, mean: float | None = None,
             std: float | None = None, suite: str = PAPER_SUITE,
             suites: dict[str, TestSuite] | None = None,
             progress: Progress | None = None) -> list[ModelResult]:
    """Evaluate ONNX classifiers on clean, the backgrounds and optionally the noise sweep.

    Every model is checked before any is run. Test sets are built once per dataset and input
    size and shared by all models (pass ``suites`` to reuse them across calls, or to supply
    your own images). ``backgrounds`` defaults to all six; ``suite="extended"`` adds the
    extended suite (``bgbench.extended``) to them; ``threads`` defaults to the cores
    available; ``batch_size`` to 500, or the batch a model's graph fixes. ``layout``,
    ``output``, ``input_scale``, ``mean`` and ``std`` apply to every model (see
    ``inspect_model``); ``provider_options`` are ``[PROVIDER:]KEY=VALUE`` items for the
    execution providers (``providers.resolve_providers``); ``progress`` reports each model as
    it runs.
    """
    from bgbench.harness.testsets import standard_test_sets

    test_sets = standard_test_sets(backgrounds, noise_sweep, suite)
    plan = ModelPlan.from_arguments(models, locals())
    results = []
    for info, test_suite in plan.suites():
        test_suite.build(test_sets, info.input_size)
        results.append(evaluate_model(info, test_suite, test_sets, plan.providers,
                                      plan.threads, batch_size, progress))
    return results


@dataclass
class ModelPlan:
    """ONNX models checked before any is run, with the providers, threads and test suites
    they will be scored with (``evaluate`` and the worst-case search share it)."""

    infos: list[ModelInfo]
    providers: Resolved
    threads: int
    data_root: str | os.PathLike | None
    limit: int | None
    test_suites: dict[str, TestSuite]

    @classmethod
    def from_arguments(cls, models: list[str | os.PathLike] | str | os.PathLike,
                       arguments: Mapping[str, Any]) -> ModelPlan:
        """``check`` with its options taken by name from ``arguments`` (a caller's
        ``locals()``): ``evaluate`` and ``attack`` take the same options, passed here once."""
        names = inspect.signature(cls.check).parameters.keys() - {"models"}
        return cls.check(models, **{name: arguments[name] for name in names})

    @classmethod
    def check(cls, models: list[str | os.PathLike] | str | os.PathLike, *,
              dataset: str | None, providers: list[str] | tuple[str, ...],
              provider_options: list[str] | tuple[str, ...], threads: int | None,
              batch_size: int | None, data_root: str | os.PathLike | None, limit: int | None,
              layout: str, output: str | None, input_scale: float | None, mean: float | None,
              std: float | None, suites: dict[str, TestSuite] | None) -> ModelPlan:
        """Check every argument and model (see ``evaluate``); nothing is run yet."""
        paths = [models] if isinstance(models, (str, os.PathLike)) else list(models)
        if not paths:
            raise BgbenchError("no model given; pass one or more .onnx files")
        check_positive("threads", threads)
        check_positive("batch_size", batch_size)
        check_positive("limit", limit)
        threads = default_threads() if threads is None else threads
        full_providers = resolve_providers(list(providers), list(provider_options))
        infos = [inspect_model(Path(p), dataset, layout=layout, output=output,
                               input_scale=input_scale, mean=mean, std=std) for p in paths]
        for info in infos:
            if batch_size is not None:
                check_batch_size(str(info.path), batch_size, info.fixed_batch)
        return cls(infos, full_providers, threads, data_root, limit,
                   {} if suites is None else suites)

    def suites(self) -> Iterator[tuple[ModelInfo, TestSuite]]:
        """Each model with its dataset's test suite, loaded on first use and shared."""
        from bgbench.harness.testsets import load_suite

        for info in self.infos:
            if info.dataset not in self.test_suites:
                self.test_suites[info.dataset] = load_suite(info.dataset, self.data_root,
                                                            self.limit, self.threads)
            yield info, self.test_suites[info.dataset]
