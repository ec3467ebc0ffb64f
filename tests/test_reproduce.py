"""``bgbench reproduce``: the whole pipeline once, tiny, then skipping and resuming."""

from __future__ import annotations

import json

import pytest

from bgbench.errors import ParameterError
from bgbench.reproduce import Plan, parse_list, parse_seeds, reproduce
from bgbench.vocab import METHODS

TINY = ["--train-subset", "200", "--val-size", "100", "--epochs", "1", "--batch-size", "50"]


def test_lists_and_seeds_are_checked():
    assert parse_list("all", METHODS, "methods") == METHODS
    assert parse_list("proposal,traditional,proposal", METHODS, "methods") == (
        "proposal", "traditional")
    with pytest.raises(ParameterError, match="`methods`: unknown magic"):
        parse_list("traditional,magic", METHODS, "methods")
    assert parse_seeds("2,0") == (2, 0)
    for bad in ("", "a", "-1"):
        with pytest.raises(ParameterError, match="`seeds`"):
            parse_seeds(bad)


@pytest.mark.realdata
@pytest.mark.slow
def test_ablation_seeds_apply_to_the_ablations_only(tmp_path):
    plan = Plan(out=tmp_path, datasets=("mnist",), methods=("traditional", "truemask", "proposal"),
                seeds=(0, 1, 2), ablation_seeds=(0,))
    assert plan.configurations() == [("mnist", "traditional", 0), ("mnist", "traditional", 1),
                                     ("mnist", "traditional", 2), ("mnist", "truemask", 0),
                                     ("mnist", "proposal", 0), ("mnist", "proposal", 1),
                                     ("mnist", "proposal", 2)]
    assert Plan(out=tmp_path, methods=("noisebg",), seeds=(3, 4)).seeds_for("noisebg") == (3, 4)
    with pytest.raises(ParameterError, match="`ablation_seeds` must be"):
        parse_seeds("x", "ablation_seeds")


def test_reproduce_end_to_end_then_skips_and_resumes(tmp_path, real_data_root, capsys):
    plan = Plan(out=tmp_path / "out", datasets=("mnist",), methods=("traditional",),
                seeds=(0,), threads=1, limit=200, data_root=str(real_data_root),
                train_args=TINY)
    report = reproduce(plan)
    first = capsys.readouterr().out
    assert "$ bgbench train" in first and "$ bgbench export" in first and "$ bgbench eval" in first
    assert "$ bgbench attack" in first and "--budget 10 " in first
    model = tmp_path / "out" / "models" / "mnist-traditional-seed0.onnx"
    run_dir = tmp_path / "out" / "runs" / "mnist-traditional-seed0"
    doc = json.loads((tmp_path / "out" / "results" / "results.json").read_text())
    [entry] = doc["models"]
    assert entry["model"] == str(model) and entry["method"] == "traditional"
    assert entry["noise_sweep"] and doc["limit"] == 200
    assert entry["suite"] == "extended" and entry["extended_background_average"] is not None
    search = entry["worst_case"]
    assert search["budget"] == 10 and search["n_images"] == 200
    assert search["adaptive_accuracy"] <= search["worst_of_k"]["10"] <= entry["accuracy"]["clean"]
    text = report.read_text()
    assert "Traditional: ours (1 model)" in text and "worst-of-10" in text

    stamp = model.stat().st_mtime_ns
    reproduce(plan)
    second = capsys.readouterr().out
    assert "trained (skipping)" in second and "exported (skipping)" in second
    assert "mnist-traditional-seed0: evaluated (skipping)" in second
    assert "mnist-traditional-seed0: searched (skipping)" in second
    assert "$ bgbench eval" not in second and "$ bgbench attack" not in second
    assert "$ bgbench merge" in second
    assert "$ bgbench train" not in second and model.stat().st_mtime_ns == stamp

    (run_dir / "done.json").unlink()  # as if training had been interrupted
    reproduce(plan)
    third = capsys.readouterr().out
    assert "--resume" in third and (run_dir / "done.json").is_file()


def test_cli_names_flags_and_refuses_the_paper_preset(tmp_path, capsys):
    from bgbench.cli import main

    out = ["--out", str(tmp_path / "out")]
    assert main(["reproduce", "--methods", "traditional,magic", *out]) == 2
    assert "--methods: unknown magic" in capsys.readouterr().err
    assert main(["reproduce", "--preset", "paper", *out]) == 2
    err = capsys.readouterr().err
    assert "'full'" in err and "'faithful'" in err
    assert not (tmp_path / "out").exists()
