"""asv: the worst-case search (``bgbench attack``) on the published MNIST proposal model,
beside plain scoring of the same images, so that its speed relative to evaluation is tracked."""

from __future__ import annotations

from pathlib import Path

MODEL = Path(__file__).resolve().parents[1] / "results" / "models" / "mnist-proposal-seed0.onnx"
IMAGES = 200


class WorstCaseSearch:
    """One search (pool, universal, worst-of-k, adaptive) per budget, and plain scoring."""

    params = ([10, 30],)
    param_names = ["budget"]

    def setup(self, budget: int) -> None:
        from bgbench.bench.harness import _test_images
        from bgbench.harness import Evaluator, TestSuite, inspect_model, standard_test_sets

        info = inspect_model(MODEL)
        images, labels, _ = _test_images(info.dataset, IMAGES, None)
        self.suite = TestSuite(info.dataset, images, labels, threads=1)
        self.sets = standard_test_sets()
        self.suite.build(self.sets)
        self.evaluator = Evaluator(info, ["CPUExecutionProvider"], 1)

    def time_search(self, budget: int) -> None:
        from bgbench.attack.search import search

        search(self.evaluator, self.suite, budget)

    def time_eval_paper_sets(self, budget: int) -> None:
        from bgbench.harness.evaluate import score_all

        score_all(self.evaluator, self.suite, self.sets)
