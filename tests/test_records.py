"""The records (``bgbench.records``, ``bgbench.backgrounds.BACKGROUNDS``) and what derives from
them: a method or a paper-style background added as one record reaches the vocabulary, the
CLI's choices and help, the report's order, titles, colours and Table 1, and the size rules.

Names, choices and tables are derived when their modules are imported, so each addition runs
in a fresh interpreter whose registry holds the one record more before anything imports it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from bgbench import backgrounds as bgs
from bgbench import records, vocab
from bgbench.data.datasets import SPECS
from bgbench.report.paper import DATASET_TITLES, METHOD_ORDER, METHOD_TITLES, PAPER_TABLE1

ROOT = Path(__file__).resolve().parents[1]


def run_fresh(script: str) -> None:
    """Run ``script`` in a fresh interpreter on this checkout; fail with its output."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])}
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(script)], env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr


def test_every_stage_name_of_the_records_is_a_stage():
    pytest.importorskip("torch")
    from bgbench.train.stages import METHOD_STAGES, STAGE_BY_NAME

    used = {s for m in records.METHODS for s in m.stages}
    assert used == set(STAGE_BY_NAME)
    assert list(METHOD_STAGES) == [m.name for m in records.METHODS]
    assert [s.name for s in METHOD_STAGES["truemask"]] == ["classifier", "adversarial"]
    assert METHOD_STAGES["truemask"][1].masks == "true"
    assert METHOD_STAGES["noisebg"][2].backgrounds == "noise"


def test_names_titles_and_the_papers_tables_derive_from_the_records():
    assert vocab.METHODS == METHOD_ORDER == tuple(m.name for m in records.METHODS)
    assert vocab.MAIN_METHODS == ("traditional", "proposal")
    assert vocab.DATASETS == tuple(SPECS) == tuple(DATASET_TITLES)
    assert METHOD_TITLES["attention"] == "Attention (AG-CNN)"
    assert vocab.PRESET_ALIASES == {"paper": "full"}
    assert vocab.read_preset("paper") == "full" and vocab.read_preset(None) is None
    assert vocab.SUITES == (vocab.PAPER_SUITE, vocab.EXTENDED_SUITE) == ("paper", "extended")
    assert vocab.DEFAULT_PRESET in vocab.PRESETS and vocab.DEFAULT_SUITE in vocab.SUITES
    # Each background names its own column of the paper's Table 1, one each.
    columns = [b.paper_column for b in bgs.BACKGROUNDS.values()]
    assert sorted(columns) == list(range(len(columns)))
    for m in records.METHODS:
        for dataset, row in m.paper.items():
            assert len(row) == len(columns) + 1
            assert PAPER_TABLE1[(dataset, m.name)] == row
    assert PAPER_TABLE1[("mnist", "traditional")][bgs.BACKGROUNDS["clock"].paper_column] == 19.7


def test_adding_a_method_is_one_record():
    run_fresh("""
        from bgbench import records
        records.METHODS = (*records.METHODS, records.Method(
            "mixup", "Mixup", "tab:red", ("classifier",),
            paper={"mnist": (1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 3.5)}))

        from bgbench import vocab
        from bgbench.cli import build_parser
        from bgbench.report import group_entries
        from bgbench.report.paper import (METHOD_ORDER, PAPER_TABLE1, method_colour,
                                          method_title, paper_average)

        assert vocab.METHODS[-1] == "mixup" and "mixup" not in vocab.MAIN_METHODS
        args = build_parser().parse_args(["train", "--dataset", "mnist", "--method", "mixup",
                                          "--out", "run"])
        assert args.method == "mixup"
        assert METHOD_ORDER[-1] == "mixup"
        assert (method_title("mixup"), method_colour("mixup")) == ("Mixup", "tab:red")
        assert PAPER_TABLE1[("mnist", "mixup")][0] == 1.0 and paper_average("mnist", "mixup") == 3.5

        def entry(method):
            return {"dataset": "mnist", "method": method, "model": f"{method}.onnx",
                    "n_images": 10, "accuracy": {"clean": 1.0}}

        order = [g.method for g in group_entries([entry("zzz"), entry("mixup"),
                                                  entry("traditional")])]
        assert order == ["traditional", "mixup", "zzz"], order

        from bgbench.train.stages import METHOD_STAGES
        assert [s.name for s in METHOD_STAGES["mixup"]] == ["classifier"]
    """)


def test_adding_a_paper_style_background_is_one_record():
    run_fresh("""
        import numpy as np

        from bgbench import backgrounds as bgs

        def dots(size=bgs.SIZE):
            out = np.zeros((size, size), np.uint8)
            out[::4, ::4] = 1
            return out

        bgs.BACKGROUNDS["dots"] = bgs.PaperBackground("dots", dots, lambda: dots(28), None)

        from bgbench.cli import build_parser
        from bgbench.harness import sizes
        from bgbench.harness.testsets import standard_test_sets
        from bgbench.report.grouping import Group
        from bgbench.report.paper import BACKGROUND_NAMES, PAPER_TABLE1
        from bgbench.report.tables import table1

        assert BACKGROUND_NAMES[-1] == "dots"
        assert (sizes.background_at("dots", 32) == dots()).all()
        assert (sizes.background_at("dots", 28) == dots(28)).all()
        assert [t.name for t in standard_test_sets()][-1] == "dots"
        # Not in the paper: its Table 1 cell is missing, the others keep their columns.
        assert PAPER_TABLE1[("mnist", "traditional")][-2:] == (None, 31.2)
        accuracy = {"clean": 0.9, **{n: 0.5 for n in BACKGROUND_NAMES}}
        entry = {"dataset": "mnist", "method": "traditional", "model": "t.onnx", "n_images": 10,
                 "accuracy": accuracy, "background_average": 0.5, "background_worst": 0.5,
                 "fooled_by_any": 0.4}
        header, _, paper, ours, diff = table1([Group("mnist", "traditional", None, [entry])]
                                              ).splitlines()[2:7]
        assert "| dots | average |" in header, header
        assert paper.split(" | ")[1:8] == ["38.0", "24.3", "61.4", "32.9", "19.7", "11.2", "–"]
        assert diff.split(" | ")[7] == "–"
        eval_help = next(a.help for a in build_parser()._subparsers._group_actions[0]
                         .choices["eval"]._actions if a.dest == "backgrounds")
        assert "random,dots)" in eval_help, eval_help
    """)
