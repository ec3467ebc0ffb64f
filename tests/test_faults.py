"""Faults injected into every writing command, each checked for nothing lost or silently
wrong: SIGKILL at seeded points, a full or failing disk, corrupt files, an output directory
that cannot be written, and a second writer. ``FAULTS`` is the list; docs/reliability.md
lists the same cases with what the user sees, and states their number.
"""

from __future__ import annotations

import errno
import json
import os
import random
import re
import signal
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from faultkit import (
    child,
    held_by_another_process,
    points,
    recording,
    tree,
    without,
    written_file,
)
from test_harness import make_model, synthetic_data

from bgbench import fileio, locks
from bgbench.cli import main
from bgbench.errors import BgbenchError
from bgbench.train import make_config, train
from bgbench.train.checkpoint import StageCheckpoint
from bgbench.train.data import synthetic

SEED = 20260127  # picks the kill points; the same seed kills at the same points every time
DOC = Path(__file__).resolve().parents[1] / "docs" / "reliability.md"


@dataclass(frozen=True)
class Fault:
    """One injected fault: ``id`` (as docs/reliability.md names it), the command it hits,
    its class and what is injected."""

    id: str
    command: str
    kind: str
    injected: str


FAULTS = [
    *[Fault(f"train-kill-{phase}", "train", "kill",
            f"SIGKILL at a seeded point while {what}")
      for phase, what in [("classifier", "stage 1 (classifier) trains or checkpoints"),
                          ("mask", "stage 2 (mask generator) trains or checkpoints"),
                          ("adversarial", "stage 3 (adversarial) trains or checkpoints"),
                          ("finish", "the final weights and done.json are written")]],
    Fault("train-kill-twice", "train", "kill", "SIGKILL at two seeded points in a row, then "
          "a third run finishes"),
    Fault("eval-kill-json", "eval", "kill", "SIGKILL at a seeded point while results.json "
          "is written"),
    Fault("eval-kill-csv", "eval", "kill", "SIGKILL at a seeded point while results.csv is "
          "written"),
    Fault("merge-kill-json", "merge", "kill", "SIGKILL at a seeded point while the merged "
          "results.json is written"),
    Fault("merge-kill-csv", "merge", "kill", "SIGKILL at a seeded point while the merged "
          "results.csv is written"),
    Fault("reproduce-kill-train", "reproduce", "kill", "SIGKILL at a seeded point while "
          "reproduce trains"),
    Fault("reproduce-kill-evaluate", "reproduce", "kill", "SIGKILL at a seeded point while "
          "reproduce exports, evaluates, merges or reports"),
    Fault("train-enospc-checkpoint", "train", "disk", "ENOSPC part-way through a checkpoint"),
    Fault("train-eio-metrics", "train", "disk", "EIO syncing a metrics.jsonl line"),
    Fault("train-enospc-weights", "train", "disk", "ENOSPC part-way through classifier.pt"),
    Fault("eval-enospc-results", "eval", "disk", "ENOSPC syncing results.csv over earlier "
          "results (--force)"),
    Fault("merge-eio-results", "merge", "disk", "EIO syncing the merged results.json over "
          "an earlier merge (--force)"),
    Fault("train-corrupt-metrics", "train", "corrupt", "a garbage line inside metrics.jsonl, "
          "then --resume"),
    Fault("train-corrupt-config", "train", "corrupt", "config.json cut short, then --resume"),
    Fault("train-corrupt-done", "train", "corrupt", "done.json cut short, then --resume"),
    Fault("train-truncated-checkpoint", "train", "corrupt", "a stage checkpoint cut short, "
          "then --resume"),
    Fault("export-truncated-weights", "export", "corrupt", "classifier.pt cut short"),
    Fault("merge-corrupt-json", "merge", "corrupt", "a per-model results.json cut short"),
    Fault("merge-truncated-csv", "merge", "corrupt", "a per-model results.csv cut short"),
    Fault("reproduce-corrupt-eval", "reproduce", "corrupt", "a per-model "
          "evals/NAME/results.json cut short, then reproduce again"),
    *[Fault(f"{command}-parent-blocked", command, "parent", "the output's parent is a file "
            "(cannot be created)") for command in
      ("train", "eval", "merge", "export", "report", "reproduce")],
    *[Fault(f"{command}-read-only", command, "parent", "the output directory is read-only "
            "(EROFS)") for command in ("train", "eval")],
    *[Fault(f"{command}-second-writer", command, "lock", "a second process writes the same "
            "output directory") for command in
      ("train", "eval", "merge", "export", "report", "reproduce")],
]
BY_ID = {f.id: f for f in FAULTS}
USED: set[str] = set()


def cases(kind: str, command: str | None = None) -> list[str]:
    """The ids of ``FAULTS`` of one kind (and command), recorded as covered by a test."""
    ids = [f.id for f in FAULTS if f.kind == kind and command in (None, f.command)]
    USED.update(ids)
    return ids


def one_line_error(capsys, code: int, rc: int) -> str:
    err = capsys.readouterr().err
    assert rc == code, err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    return err


# --- train: SIGKILL anywhere, then --resume ------------------------------------------------

# Every stage of the proposal method, two epochs where best-epoch choice matters.
TINY = {"epochs": 2, "mask_epochs": 1, "adv_epochs": 2, "local_epochs": 1, "batch_size": 32,
        "train_subset": 0, "val_size": 64, "unet_width": 4, "gen_width": 8, "cc_iterations": 8}
IMAGES = 256
TIMING = ("seconds", "images_per_second", "train_seconds", "last_session_seconds",
          "finished", "created")


def tiny_config():
    return make_config("synthetic", "proposal", "quick", seed=0, overrides=TINY)


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """An uninterrupted run, and the events (writes) it made."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    run = tmp_path_factory.mktemp("reference") / "run"
    try:
        with recording() as events:
            train(tiny_config(), run, quiet=True, tensors=synthetic(IMAGES, seed=0))
    finally:
        torch.set_num_threads(threads)
    return run, events


def train_phases(events, run: Path) -> dict[str, list[tuple[int, str, str]]]:
    """Kill points by the stage they fall in (a metrics line belongs to the stage of the
    checkpoint after it) or ``finish`` (the final weights and done.json)."""
    phases: dict[str, list] = {}
    pending: list = []
    for point in points(events):
        rel = Path(point[2]).relative_to(run)
        if rel.parts[0] == "checkpoints":
            phases.setdefault(rel.stem, []).extend([*pending, point])
            pending = []
        elif rel.name in ("metrics.jsonl", "config.json"):
            pending.append(point)
        else:
            phases.setdefault("finish", []).append(point)
    return phases


def assert_same_run(reference_run: Path, run: Path) -> None:
    """``run`` holds the same files as ``reference_run``: the same weight and checkpoint
    bytes, and the same metrics, config and summary but for timings."""
    ref, got = tree(reference_run), tree(run)
    assert sorted(got) == sorted(ref)  # no temporary file, no lock file left
    for name in ref:
        if name.endswith(".pt"):
            assert got[name] == ref[name], name
    assert ([without(json.loads(line), *TIMING) for line in got["metrics.jsonl"].splitlines()]
            == [without(json.loads(line), *TIMING) for line in ref["metrics.jsonl"].splitlines()])
    for name in ("config.json", "done.json"):
        assert without(json.loads(got[name]), *TIMING) == without(json.loads(ref[name]), *TIMING)


def kill_train(run: Path, point: tuple[int, str, str], cwd: Path, resume: bool = False
               ) -> int:
    """Train (or resume) ``run`` in a child killed at ``point``; its return code."""
    spec = {"target": point[0], "mode": point[1], "torch": True,
            "train": {"method": "proposal", "overrides": TINY, "images": IMAGES,
                      "out": str(run), "resume": resume}}
    proc = child(spec, cwd)
    assert proc.returncode in ((0, -signal.SIGKILL) if resume else (-signal.SIGKILL,)), \
        proc.stderr
    return proc.returncode


def resume(run: Path) -> None:
    train(tiny_config(), run, resume=True, quiet=True, tensors=synthetic(IMAGES, seed=0))


@pytest.mark.usefixtures("one_torch_thread")
@pytest.mark.parametrize("fault", cases("kill", "train"))
def test_train_killed_anywhere_resumes_to_the_same_bytes(tmp_path, reference, fault):
    reference_run, events = reference
    rng = random.Random(f"{SEED}-{fault}")
    run = tmp_path / "run"
    if fault == "train-kill-twice":
        every = points(events)
        kill_train(run, rng.choice(every[: len(every) // 2]), tmp_path)
        # Event numbers count from the resumed run's start, so this kill falls after the
        # first one (or not at all, if the resumed run is shorter).
        kill_train(run, rng.choice(every[: len(every) // 3]), tmp_path, resume=True)
    else:
        point = rng.choice(train_phases(events, reference_run)[fault.split("-")[-1]])
        kill_train(run, point, tmp_path)
        if not point[2].endswith("done.json"):
            assert not (run / "done.json").exists()
    resume(run)
    assert_same_run(reference_run, run)


# --- eval and merge: SIGKILL while the results are written, then the rerun ---------------

def comparable_results(out: Path) -> tuple[dict, list[list[str]]]:
    """results.json and results.csv of ``out`` without their timings."""
    doc = json.loads((out / "results.json").read_text())
    models = [without(m, "images_per_second") for m in doc.pop("models")]
    rows = [line.split(",") for line in (out / "results.csv").read_text().splitlines()]
    seconds = rows[0].index("seconds")
    return ({**without(doc, "created"), "models": models},
            [row[:seconds] + row[seconds + 1:] for row in rows])


@pytest.fixture
def fake_test_data(monkeypatch):
    """bgbench eval's test images: the harness tests' synthetic set, not the real one."""
    images, labels = synthetic_data()
    monkeypatch.setattr("bgbench.data.load_numpy",
                        lambda dataset, split, data_root=None: (images, labels))


@pytest.fixture
def evaluations(tmp_path, fake_test_data):
    """Two per-model evaluation directories (as reproduce writes them)."""
    import numpy as np

    dirs = []
    for name, weights in (("a", None), ("b", np.random.default_rng(2).normal(
            size=(1024, 10)).astype(np.float32))):
        model = make_model(tmp_path / f"{name}.onnx", weights=weights)
        assert main(["eval", str(model), "--threads", "1", "--quiet", "--out",
                     str(tmp_path / f"evals-{name}")]) == 0
        dirs.append(tmp_path / f"evals-{name}")
    return dirs


def written(out: Path) -> dict[str, bytes]:
    """``tree(out)`` without the lock file (bookkeeping, rewritten by every writer)."""
    return {k: v for k, v in tree(out).items() if k != locks.LOCK_FILE}


def rerun_after_kill(argv: list[str], out: Path, capsys) -> None:
    """Rerun a killed command as a user would: as it was (refused, touching nothing, if it
    had written a results file), then with --force."""
    capsys.readouterr()
    before = written(out)
    rc = main(argv)
    if {"results.json", "results.csv"} & set(before):
        assert "already exist" in one_line_error(capsys, 2, rc)
        assert written(out) == before
        assert main([*argv, "--force"]) == 0
    else:
        assert rc == 0


def kill_and_rerun(fault: str, argv: list[str], ref: Path, out: Path, tmp_path, capsys,
                   **spec) -> None:
    with recording() as events:
        assert main([*argv, "--out", str(ref)]) == 0
    name = "results.json" if fault.endswith("json") else "results.csv"
    rng = random.Random(f"{SEED}-{fault}")
    point = rng.choice([p for p in points(events) if p[2].endswith(name)])
    proc = child({"target": point[0], "mode": point[1], "argv": [*argv, "--out", str(out)],
                  **spec}, tmp_path)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    rerun_after_kill([*argv, "--out", str(out)], out, capsys)
    assert comparable_results(out) == comparable_results(ref)
    assert not (out / locks.LOCK_FILE).exists()


@pytest.mark.parametrize("fault", cases("kill", "eval"))
def test_eval_killed_then_rerun_gives_the_same_results(tmp_path, fake_test_data, capsys,
                                                       fault):
    model = make_model(tmp_path / "corner.onnx")
    kill_and_rerun(fault, ["eval", str(model), "--threads", "1", "--quiet"],
                   tmp_path / "ref", tmp_path / "out", tmp_path, capsys, synthetic_eval=True)


@pytest.mark.parametrize("fault", cases("kill", "merge"))
def test_merge_killed_then_rerun_gives_the_same_results(tmp_path, evaluations, capsys, fault):
    kill_and_rerun(fault, ["merge", *map(str, evaluations)], tmp_path / "ref",
                   tmp_path / "out", tmp_path, capsys)
