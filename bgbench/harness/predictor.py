"""Evaluate a classifier that is not an ONNX file: any function from an image batch to logits."""

from __future__ import annotations

import os
from typing import Any

from bgbench.harness.conventions import make_convention
from bgbench.harness.evaluate import (
    DEFAULT_BATCH_SIZE,
    ModelResult,
    Predict,
    Scorer,
    TestSetResult,
    default_threads,
    score_all,
)
from bgbench.harness.model import check_dataset
from bgbench.harness.params import ParameterError, check_positive
from bgbench.harness.progress import Progress
from bgbench.harness.testsets import PAPER_SUITE, TestSuite, load_suite, standard_test_sets

IN_PROCESS = "in-process"


def evaluate_predictor(predict: Predict, dataset: str, *, input_size: int = 32,
                       layout: str = "nchw", input_dtype: str = "float32",
                       input_scale: float | None = None, mean: float | None = None,
                       std: float | None = None, batch_size: int = DEFAULT_BATCH_SIZE,
                       backgrounds: list[str] | None = None, noise_sweep: bool = False,
                       suite: str = PAPER_SUITE,
                       data_root: str | os.PathLike | None = None, limit: int | None = None,
                       threads: int | None = None, suites: dict[str, TestSuite] | None = None,
                       name: str = "predictor", method: str = "unknown",
                       progress: Progress | None = None) -> ModelResult:
    """Evaluate ``predict`` in this process, as ``evaluate`` does an ONNX model.

    ``predict`` gets one batch shaped by ``layout`` (float32 ``(pixel / 255 * input_scale -
    mean) / std``, or the raw pixels with ``input_dtype="uint8"``) and returns logits or
    probabilities ``[batch, classes]`` as anything ``numpy.asarray`` accepts. ``name``
    identifies the model in results. ``backgrounds``, ``noise_sweep`` and ``suite`` choose the
    test sets as in ``evaluate``. ``threads`` is for building the test sets; the
    predictor's own threading is its business. The result can be written with
    ``write_results``.
    """
    test_sets = standard_test_sets(backgrounds, noise_sweep, suite)
    scorer, test_suite, threads = predictor_scorer(
        predict, dataset, input_size=input_size, layout=layout, input_dtype=input_dtype,
        input_scale=input_scale, mean=mean, std=std, batch_size=batch_size,
        data_root=data_root, limit=limit, threads=threads, suites=suites, name=name)
    test_suite.build(test_sets, input_size)
    results, fooled_by_any = score_all(scorer, test_suite, test_sets, progress)
    result = predictor_result(scorer, method, threads, results, fooled_by_any)
    if progress is not None:
        progress.done(result)
    return result


def predictor_scorer(predict: Predict, dataset: str, *, input_size: int, layout: str,
                     input_dtype: str, input_scale: float | None, mean: float | None,
                     std: float | None, batch_size: int, data_root: str | os.PathLike | None,
                     limit: int | None, threads: int | None,
                     suites: dict[str, TestSuite] | None, name: str
                     ) -> tuple[Scorer, TestSuite, int]:
    """Check an in-process predictor's arguments: its scorer, its dataset's test suite
    (loaded, or taken from ``suites``) and the threads for building test sets."""
    check_dataset(dataset)
    if not callable(predict):
        raise ParameterError("predict", "must be a function from a batch to logits",
                             type(predict).__name__)
    check_positive("threads", threads)
    check_positive("limit", limit)
    convention = make_convention(input_size, layout, input_dtype, input_scale, mean, std)
    scorer = Scorer(name, predict, convention, dataset, batch_size)
    threads = default_threads() if threads is None else threads
    suites = {} if suites is None else suites
    if dataset not in suites:
        suites[dataset] = load_suite(dataset, data_root, limit, threads)
    return scorer, suites[dataset], threads


def predictor_result(scorer: Scorer, method: str, threads: int, test_sets: list[TestSetResult],
                     fooled_by_any: float | None = None, worst_case: Any = None) -> ModelResult:
    """The ``ModelResult`` of an in-process predictor from what was measured with ``scorer``."""
    return ModelResult(model=scorer.name, sha256=None, dataset=scorer.dataset, method=method,
                       provider=IN_PROCESS, providers=[], threads=threads,
                       batch_size=scorer.batch_size, convention=scorer.convention, output=None,
                       fixed_batch=None, test_sets=test_sets, fooled_by_any=fooled_by_any,
                       worst_case=worst_case)
