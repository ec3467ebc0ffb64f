"""Evaluate any ONNX classifier on the paper's backgrounds with onnxruntime; torch-free.

>>> from bgbench.harness import evaluate
>>> [result] = evaluate("model.onnx", noise_sweep=True)      # doctest: +SKIP
>>> result.background_average, result.accuracy["stripes"]    # doctest: +SKIP
"""

from bgbench.harness.evaluate import (
    DEFAULT_BATCH_SIZE,
    Evaluator,
    ModelResult,
    TestSetResult,
    default_threads,
    evaluate,
    evaluate_model,
)
from bgbench.harness.model import ModelInfo, inspect_model, open_session, resolve_providers
from bgbench.harness.results import (
    format_table,
    read_results,
    results_document,
    write_results,
)
from bgbench.harness.testsets import TestSet, TestSuite, load_suite, standard_test_sets

__all__ = [
    "DEFAULT_BATCH_SIZE", "Evaluator", "ModelInfo", "ModelResult", "TestSet", "TestSetResult",
    "TestSuite", "default_threads", "evaluate", "evaluate_model", "format_table",
    "inspect_model", "load_suite", "open_session", "read_results", "resolve_providers",
    "results_document", "standard_test_sets", "write_results",
]
