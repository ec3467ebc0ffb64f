"""Evaluate classifiers on the paper's backgrounds (and, with ``suite="extended"``, bgbench's
extended suite) with onnxruntime, or in process; torch-free.

>>> from bgbench.harness import evaluate, evaluate_predictor
>>> [result] = evaluate("model.onnx", noise_sweep=True)      # doctest: +SKIP
>>> result.background_average, result.accuracy["stripes"]    # doctest: +SKIP
>>> [ext] = evaluate("model.onnx", suite="extended")          # doctest: +SKIP
>>> ext.extended_background_average, ext.extended_accuracy["haze"]  # doctest: +SKIP
>>> evaluate_predictor(lambda x: x.reshape(len(x), -1) @ w, "mnist", layout="flat")  # doctest: +SKIP
"""

from bgbench.harness.conventions import LAYOUTS, InputConvention, make_convention
from bgbench.harness.evaluate import (
    DEFAULT_BATCH_SIZE,
    Evaluator,
    ModelResult,
    Scorer,
    TestSetResult,
    default_threads,
    evaluate,
    evaluate_model,
)
from bgbench.harness.model import ModelInfo, inspect_model, open_session
from bgbench.harness.params import ParameterError
from bgbench.harness.predictor import evaluate_predictor
from bgbench.harness.progress import Progress
from bgbench.harness.providers import resolve_providers
from bgbench.harness.results import (
    format_table,
    merge_results,
    read_results,
    results_document,
    write_results,
)
from bgbench.harness.sizes import INPUT_SIZES, SIZE_RULES
from bgbench.harness.testsets import (
    SUITES,
    Composites,
    TestSet,
    TestSuite,
    load_suite,
    standard_test_sets,
)

__all__ = [
    "Composites", "DEFAULT_BATCH_SIZE", "Evaluator", "INPUT_SIZES", "InputConvention", "LAYOUTS",
    "ModelInfo",
    "ModelResult", "ParameterError", "Progress", "SIZE_RULES", "SUITES", "Scorer", "TestSet",
    "TestSetResult", "TestSuite", "default_threads", "evaluate", "evaluate_model",
    "evaluate_predictor", "format_table", "inspect_model", "load_suite", "make_convention",
    "merge_results",
    "open_session", "read_results", "resolve_providers", "results_document",
    "standard_test_sets", "write_results",
]
