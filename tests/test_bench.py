"""The printed benchmarks: their registry, target checks, exit codes, and the torch-free core."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from bgbench import bench
from bgbench.bench._common import check_targets


def test_registry_lists_benchmarks_not_helpers():
    assert bench.available() == ["attack", "core", "harness", "op", "scoring", "train"]


def test_check_targets_counts_misses_and_skips_unmeasured(capsys):
    missed = check_targets({"a": 2.0, "b": 0.5}, {"a": 1.5, "b": 1.0, "c": 3.0})
    out = capsys.readouterr().out
    assert missed == 1
    assert "MISSED" in next(ln for ln in out.splitlines() if ln.strip().startswith("b "))
    assert "not measured" in next(ln for ln in out.splitlines() if ln.strip().startswith("c "))


def test_core_benchmark_and_its_asv_suite_import_no_torch():
    code = ("import sys, bgbench.bench.core, benchmarks.bench_core; "
            "assert 'torch' not in sys.modules, 'torch was imported'")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_core_benchmark_states_equal_thread_counts(capsys):
    pytest.importorskip("bgbench._core")
    from bgbench.bench.core import bench_core, core_label

    ratios = bench_core(threads=2, rounds=1)
    assert set(ratios) == {core_label(1), core_label(2)}
    assert core_label(1) == "core vs numpy+skimage, 1 vs 1 thread"
    assert "(1 vs 1 thread)" in capsys.readouterr().out


@pytest.mark.slow
def test_harness_benchmark_exits_nonzero_over_budget(monkeypatch, capsys):
    pytest.importorskip("torch")
    from bgbench.bench import harness

    monkeypatch.setattr(harness, "OVERHEAD_LIMIT", -1.0)  # any overhead is over
    assert harness.main(["--images", "64", "--repeats", "1", "--threads", "1"]) == 1
    assert "(OVER the -100% budget)" in capsys.readouterr().out


@pytest.mark.realdata
def test_attack_benchmark_reports_the_ratio(monkeypatch, capsys, real_data_root):
    from bgbench.bench import attack

    monkeypatch.setattr(attack, "RATIO_TARGET", 1e9)  # no search is that fast
    published = Path(__file__).resolve().parents[1] / attack.DEFAULT_MODEL
    assert attack.main(["--model", str(published), "--images", "60", "--budget", "4",
                        "--rounds", "1", "--threads", "1"]) == 1
    assert "ratio search / eval" in capsys.readouterr().out
