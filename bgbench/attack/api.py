"""The worst-case search from Python: ``attack`` for ONNX models (as ``bgbench attack``
runs it) and ``attack_predictor`` for a classifier in this process."""

from __future__ import annotations

import os

from bgbench.attack.search import DEFAULT_BUDGET, DEFAULT_SEED, WorstCase, check_budget, search
from bgbench.harness.evaluate import (
    DEFAULT_BATCH_SIZE,
    Evaluator,
    ModelPlan,
    ModelResult,
    Predict,
    TestSetResult,
)
from bgbench.harness.predictor import predictor_result, predictor_scorer
from bgbench.harness.progress import Progress
from bgbench.harness.testsets import CLEAN, TestSet, TestSuite


def _clean(wc: WorstCase) -> list[TestSetResult]:
    # The clean set as an evaluation records it, so that merge joins the two.
    return [TestSetResult(TestSet(CLEAN), wc.n_images, wc.clean, wc.clean_seconds,
                          wc.correct.pop(CLEAN), wc.images_sha256)]


def attack(models: list[str | os.PathLike] | str | os.PathLike, *, dataset: str | None = None,
           budget: int = DEFAULT_BUDGET, seed: int = DEFAULT_SEED,
           providers: list[str] | tuple[str, ...] = ("cpu",),
           provider_options: list[str] | tuple[str, ...] = (), threads: int | None = None,
           batch_size: int | None = None, data_root: str | os.PathLike | None = None,
           limit: int | None = None, layout: str = "auto", output: str | None = None,
           input_scale: float | None = None, mean: float | None = None,
           std: float | None = None, suites: dict[str, TestSuite] | None = None,
           progress: Progress | None = None) -> list[ModelResult]:
    """Search each ONNX classifier for its worst backgrounds (``bgbench.attack.search``).

    Takes the models and input options of ``bgbench.harness.evaluate``. Each result holds
    clean accuracy in ``test_sets`` and the search in ``worst_case``; write them with
    ``write_results``.
    """
    check_budget(budget)
    plan = ModelPlan.from_arguments(models, locals())
    results = []
    for info, suite in plan.suites():
        evaluator = Evaluator(info, plan.providers, plan.threads, batch_size)
        wc = search(evaluator, suite, budget, seed, progress)
        results.append(evaluator.result(_clean(wc), worst_case=wc))
        if progress is not None:
            progress.done(results[-1])
    return results


def attack_predictor(predict: Predict, dataset: str, *, input_size: int = 32,
                     layout: str = "nchw", input_dtype: str = "float32",
                     input_scale: float | None = None, mean: float | None = None,
                     std: float | None = None, batch_size: int = DEFAULT_BATCH_SIZE,
                     budget: int = DEFAULT_BUDGET, seed: int = DEFAULT_SEED,
                     data_root: str | os.PathLike | None = None, limit: int | None = None,
                     threads: int | None = None, suites: dict[str, TestSuite] | None = None,
                     name: str = "predictor", method: str = "unknown",
                     progress: Progress | None = None) -> ModelResult:
    """The worst-case search of ``predict`` in this process, with the input options of
    ``bgbench.harness.evaluate_predictor``."""
    check_budget(budget)
    scorer, suite, threads = predictor_scorer(
        predict, dataset, input_size=input_size, layout=layout, input_dtype=input_dtype,
        input_scale=input_scale, mean=mean, std=std, batch_size=batch_size,
        data_root=data_root, limit=limit, threads=threads, suites=suites, name=name)
    wc = search(scorer, suite, budget, seed, progress)
    return predictor_result(scorer, method, threads, _clean(wc), worst_case=wc)
