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
import shlex
import shutil
import signal
import socket
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
from faultkit import (
    child,
    held_by_another_process,
    points,
    recording,
    train_child,
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
                          ("mask", "stage 2 (mask generator) writes a checkpoint (inside "
                           "the write)"),
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
      ("train", "eval", "attack", "merge", "export", "report", "reproduce")],
    *[Fault(f"{command}-read-only", command, "parent", "the output directory is read-only "
            "(EROFS)") for command in
      ("train", "eval", "attack", "merge", "export", "report", "reproduce")],
    *[Fault(f"{command}-second-writer", command, "lock", "a second process writes the same "
            "output directory") for command in
      ("train", "eval", "attack", "merge", "export", "report", "reproduce")],
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
        "train_subset": 0, "val_size": 32, "unet_width": 4, "gen_width": 8, "cc_iterations": 8}
IMAGES = 128
TIMING = ("seconds", "val_seconds", "images_per_second", "train_seconds", "last_session_seconds",
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


def kill_train(run: Path, point: tuple[int, str, str], resume: bool = False) -> None:
    """Train (or resume) ``run`` in a child killed at ``point`` (a resumed run may end
    before it)."""
    code = train_child(point[0], point[1], method="proposal", overrides=TINY, images=IMAGES,
                       out=run, resume=resume)
    assert code in ((0, -signal.SIGKILL) if resume else (-signal.SIGKILL,)), code


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
        kill_train(run, rng.choice(every[: len(every) // 2]))
        # Event numbers count from the resumed run's start, so this kill falls after the
        # first one (or not at all, if the resumed run is shorter).
        kill_train(run, rng.choice(every[: len(every) // 3]), resume=True)
    else:
        phase = fault.split("-")[-1]
        choices = train_phases(events, reference_run)[phase]
        if phase == "mask":  # inside a checkpoint write: the temporary file cut short
            choices = [p for p in choices if p[1] == "torn" and p[2].endswith(".pt")]
        point = rng.choice(choices)
        kill_train(run, point)
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


# --- a full or failing disk: one line naming the file and the cause, the old file intact ---

def fail_writes_of(monkeypatch, path: Path, nth: int = 1) -> None:
    """The ``nth`` atomic write of ``path`` goes to /dev/full: ENOSPC part-way through."""
    real_open, seen = open, [0]

    def fake_open(file, mode="r", *args, **kwargs):
        if mode == "wb" and written_file(str(file)) == str(path):
            seen[0] += 1
            if seen[0] == nth:
                return real_open("/dev/full", mode, *args, **kwargs)
        return real_open(file, mode, *args, **kwargs)

    monkeypatch.setattr(fileio, "open", fake_open, raising=False)


def fail_syncs_of(monkeypatch, path: Path, code: int, nth: int = 1) -> None:
    """The ``nth`` sync of a write of ``path`` fails with ``code`` (EIO, ENOSPC)."""
    real_fsync, seen = os.fsync, [0]

    def fake_fsync(fd):
        if written_file(os.readlink(f"/proc/self/fd/{fd}")) == str(path):
            seen[0] += 1
            if seen[0] == nth:
                raise OSError(code, os.strerror(code))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fake_fsync)


def assert_write_error(err: BgbenchError, path: Path, code: int, kept: bool = True) -> None:
    message = str(err)
    assert "\n" not in message
    assert message.startswith(f"cannot write {path} ({os.strerror(code)}, "
                              f"{errno.errorcode[code]})")
    assert (f"the previous {path.name} is unchanged" if kept else "was written") in message


@pytest.mark.usefixtures("one_torch_thread")
@pytest.mark.parametrize("fault", cases("disk", "train"))
def test_train_disk_error_keeps_the_last_good_files(tmp_path, reference, monkeypatch, fault):
    reference_run, _ = reference
    run = tmp_path / "run"
    if fault == "train-enospc-checkpoint":
        path, code, kept = run / "checkpoints" / "adversarial.pt", errno.ENOSPC, True
        fail_writes_of(monkeypatch, path, nth=2)
    elif fault == "train-eio-metrics":
        path, code, kept = run / "metrics.jsonl", errno.EIO, True
        fail_syncs_of(monkeypatch, path, errno.EIO, nth=3)
    else:
        path, code, kept = run / "classifier.pt", errno.ENOSPC, False
        fail_writes_of(monkeypatch, path)
    with pytest.raises(fileio.WriteError) as caught:
        train(tiny_config(), run, quiet=True, tensors=synthetic(IMAGES, seed=0))
    assert_write_error(caught.value, path, code, kept)
    monkeypatch.undo()
    if fault == "train-enospc-checkpoint":
        assert StageCheckpoint.load(path).epochs_done == 1  # the epoch before, loadable
    assert not list(run.rglob("*.tmp")) and not (run / "done.json").exists()
    resume(run)
    assert_same_run(reference_run, run)


@pytest.mark.parametrize("fault", cases("disk", "eval"))
def test_eval_disk_error_keeps_the_previous_results(tmp_path, fake_test_data, monkeypatch,
                                                    capsys, fault):
    out = tmp_path / "out"
    argv = ["eval", str(make_model(tmp_path / "corner.onnx")), "--threads", "1", "--quiet",
            "--out", str(out)]
    assert main(argv) == 0
    before = (out / "results.csv").read_bytes()
    capsys.readouterr()
    fail_syncs_of(monkeypatch, out / "results.csv", errno.ENOSPC)
    err = one_line_error(capsys, 1, main([*argv, "--force"]))
    assert f"cannot write {out / 'results.csv'} (No space left on device, ENOSPC)" in err
    assert "the previous results.csv is unchanged" in err
    assert (out / "results.csv").read_bytes() == before
    assert not list(out.glob(".*.tmp"))


@pytest.mark.parametrize("fault", cases("disk", "merge"))
def test_merge_disk_error_keeps_the_previous_merge(tmp_path, evaluations, monkeypatch,
                                                   capsys, fault):
    out = tmp_path / "merged"
    argv = ["merge", *map(str, evaluations), "--out", str(out)]
    assert main(argv) == 0
    before = written(out)
    capsys.readouterr()
    fail_syncs_of(monkeypatch, out / "results.json", errno.EIO)
    err = one_line_error(capsys, 1, main([*argv, "--force"]))
    assert f"cannot write {out / 'results.json'} (Input/output error, EIO)" in err
    assert written(out) == before
    assert json.loads((out / "results.json").read_text())["models"]  # still loadable


# --- corrupt or truncated files: one line naming the file and the fix, nothing rewritten --

def cut(path: Path) -> None:
    """Truncate ``path`` to half its bytes, as a failing disk or a bad copy leaves it."""
    os.truncate(path, path.stat().st_size // 2)


CORRUPT_TRAIN = {
    "train-corrupt-metrics": ("metrics.jsonl", "metrics.jsonl line 2 is not a metrics record; "
                              "restore the file, or delete the run directory and train again"),
    "train-corrupt-config": ("config.json", r"config.json is corrupt or not a bgbench config "
                             r"\(.*\); restore it, or delete the run directory and train again"),
    "train-corrupt-done": ("done.json", r"done.json is corrupt \(.*\); delete it and resume "
                           r"the run \(`bgbench train ... --resume` rewrites it"),
    "train-truncated-checkpoint": ("checkpoints/mask.pt", r"checkpoint .*mask.pt is corrupt or "
                                   r"unreadable \(.*\); delete it or start the run over"),
}


@pytest.mark.usefixtures("one_torch_thread")
@pytest.mark.parametrize("fault", cases("corrupt", "train"))
def test_train_resume_refuses_a_corrupt_file(tmp_path, reference, fault):
    run = tmp_path / "run"
    shutil.copytree(reference[0], run)
    name, message = CORRUPT_TRAIN[fault]
    if fault != "train-corrupt-done":
        (run / "done.json").unlink()  # as if interrupted, so resume reads on
    if fault == "train-corrupt-metrics":
        lines = (run / name).read_text().splitlines(keepends=True)
        (run / name).write_text("".join([lines[0], "{not json\n", *lines[1:]]))
    else:
        cut(run / name)
    before = written(run)
    with pytest.raises(BgbenchError, match=message) as caught:
        resume(run)
    assert "\n" not in str(caught.value) and str(run / name) in str(caught.value)
    assert written(run) == before
    if fault == "train-corrupt-done":  # the fix the message names gives the same run back
        (run / "done.json").unlink()
        resume(run)
        assert_same_run(reference[0], run)


@pytest.mark.parametrize("fault", cases("corrupt", "export"))
def test_export_refuses_truncated_weights(tmp_path, reference, capsys, fault):
    run = tmp_path / "run"
    shutil.copytree(reference[0], run)
    cut(run / "classifier.pt")
    rc = main(["export", str(run), "--out", str(tmp_path / "model.onnx")])
    err = one_line_error(capsys, 1, rc)
    assert f"{run / 'classifier.pt'} is corrupt or unreadable" in err and "retrain" in err
    assert not (tmp_path / "model.onnx").exists()


@pytest.mark.parametrize("fault", cases("corrupt", "merge"))
def test_merge_refuses_a_corrupt_evaluation(tmp_path, evaluations, capsys, fault):
    out = tmp_path / "merged"
    argv = ["merge", *map(str, evaluations), "--out", str(out)]
    assert main(argv) == 0
    before = written(out)
    name = "results.json" if fault == "merge-corrupt-json" else "results.csv"
    cut(evaluations[0] / name)
    capsys.readouterr()
    err = one_line_error(capsys, 1, main([*argv, "--force"]))
    assert str(evaluations[0] / name) in err
    assert ("is not valid JSON" if name == "results.json" else
            "does not match the results.json beside it") in err
    assert "bgbench eval" in err and written(out) == before


# --- an output directory that cannot be written: one line, before any work ----------------

def no_work(monkeypatch) -> None:
    """Loading data (the first work of every command) fails the test."""
    def work(*args, **kwargs):
        raise AssertionError("work started")

    monkeypatch.setattr("bgbench.data.load_numpy", work)
    monkeypatch.setattr("bgbench.data.torch_data.load_tensors", work)


def command_writing(command: str, out: Path, tmp_path: Path) -> list[str]:
    """A command line of ``command`` that writes into directory ``out``."""
    return {
        "train": ["train", "--dataset", "mnist", "--method", "traditional", "--out", str(out)],
        "eval": ["eval", str(tmp_path / "model.onnx"), "--out", str(out)],
        "attack": ["attack", str(tmp_path / "model.onnx"), "--out", str(out)],
        "merge": ["merge", str(tmp_path / "evals"), "--out", str(out)],
        "export": ["export", str(tmp_path / "run"), "--out", str(out / "model.onnx")],
        "report": ["report", str(tmp_path / "results"), "--out", str(out / "report.md")],
        "reproduce": ["reproduce", "--datasets", "mnist", "--methods", "traditional",
                      "--out", str(out)],
    }[command]


@pytest.mark.parametrize("fault", cases("parent"))
def test_unwritable_output_is_refused_before_any_work(tmp_path, monkeypatch, capsys, fault):
    command = BY_ID[fault].command
    no_work(monkeypatch)
    if fault.endswith("-blocked"):
        (tmp_path / "file").write_text("not a directory")
        out = tmp_path / "file" / "out"
        expected = f"cannot create {out} (Not a directory); choose a directory you can write to"
    else:
        out = tmp_path / "out"
        out.mkdir()
        real_open = os.open

        def read_only(path, flags, *args):
            if str(path).endswith(locks.LOCK_FILE):
                raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(path))
            return real_open(path, flags, *args)

        monkeypatch.setattr(os, "open", read_only)
        expected = (f"cannot write into {out} (Read-only file system); choose a directory "
                    "you can write to")
    err = one_line_error(capsys, 2, main(command_writing(command, out, tmp_path)))
    assert err == f"bgbench {command}: error: {expected}\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file" if "blocked" in fault else "out"]


# --- two writers at once: the second is refused at once, naming the first ------------------

@pytest.mark.parametrize("fault", cases("lock"))
def test_a_second_writer_is_refused_at_once(tmp_path, monkeypatch, capsys, fault):
    command = BY_ID[fault].command
    no_work(monkeypatch)
    out = tmp_path / "out"
    out.mkdir()
    (out / "work").write_text("the first writer's")
    with held_by_another_process(out, "train") as first:
        before = written(out)
        start = time.monotonic()
        rc = main(command_writing(command, out, tmp_path))
        elapsed = time.monotonic() - start
        err = one_line_error(capsys, 2, rc)
        assert written(out) == before
    assert elapsed < 1.0
    assert re.fullmatch(
        rf"bgbench {command}: error: {re.escape(str(out))} is in use by process {first.pid} "
        rf"on {re.escape(socket.gethostname())} \(`.*`, train\); wait for it to finish or "
        r"stop that process, then run this again\n", err), err


# --- reproduce: SIGKILL anywhere, then reproduce again --------------------------------------

REPRODUCE_TRAIN = ["--train-subset", "200", "--val-size", "100", "--epochs", "1",
                   "--batch-size", "50"]


def reproduce_argv(out: Path, data_root: Path) -> list[str]:
    return ["reproduce", "--datasets", "mnist", "--methods", "traditional", "--threads", "1",
            "--limit", "100", "--data-root", str(data_root), "--train-args",
            shlex.join(REPRODUCE_TRAIN), "--out", str(out)]


@pytest.fixture(scope="module")
def reproduced(tmp_path_factory, real_data_root):
    """An uninterrupted tiny reproduce, and the events (writes) it made."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("reproduced") / "out"
    try:
        with recording() as events:
            assert main(reproduce_argv(out, real_data_root)) == 0
    finally:
        torch.set_num_threads(threads)
    return out, events


def reproduce_outcome(out: Path) -> dict:
    """What reproduce measured (accuracies per model) and the weights it trained."""
    doc = json.loads((out / "results" / "results.json").read_text())
    keys = ("accuracy", "noise_sweep", "extended_accuracy", "n_images")
    return {"results": {Path(m["model"]).name: {k: m[k] for k in keys} for m in doc["models"]},
            "weights": {k: v for k, v in tree(out / "runs").items() if k.endswith(".pt")},
            "report": (out / "report.md").is_file()}


@pytest.mark.slow
@pytest.mark.realdata
@pytest.mark.usefixtures("one_torch_thread")
@pytest.mark.parametrize("fault", cases("kill", "reproduce"))
def test_reproduce_killed_anywhere_then_again_gives_the_same_results(
        tmp_path, reproduced, real_data_root, capsys, fault):
    ref, events = reproduced
    every = points(events)
    training = [p for p in every if Path(p[2]).is_relative_to(ref / "runs")]
    trained = max(p[0] for p in training) + 1  # the events of training come first
    out = tmp_path / "out"
    if fault == "reproduce-kill-train":
        point = random.Random(f"{SEED}-{fault}").choice(training)
        target = point[0]
    else:
        # Start from the finished training (reproduce skips it) to keep the test short:
        # event numbers then count from the export.
        point = random.Random(f"{SEED}-{fault}").choice([p for p in every if p[0] >= trained])
        target = point[0] - trained
        shutil.copytree(ref / "runs", out / "runs")
    proc = child({"target": target, "mode": point[1], "torch": True,
                  "argv": reproduce_argv(out, real_data_root)}, tmp_path)
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    assert main(reproduce_argv(out, real_data_root)) == 0
    assert reproduce_outcome(out) == reproduce_outcome(ref)


@pytest.mark.slow
@pytest.mark.realdata
@pytest.mark.parametrize("fault", cases("corrupt", "reproduce"))
def test_reproduce_refuses_a_corrupt_evaluation(tmp_path, reproduced, real_data_root, capsys,
                                                fault):
    out = tmp_path / "out"
    shutil.copytree(reproduced[0], out)
    evaluation = out / "evals" / "mnist-traditional-seed0" / "results.json"
    cut(evaluation)
    before = written(out)
    capsys.readouterr()
    err = one_line_error(capsys, 1, main(reproduce_argv(out, real_data_root)))
    assert f"{evaluation} is corrupt (JSONDecodeError" in err
    assert "delete it and run reproduce again" in err
    assert written(out) == before


# --- the list, the tests and the docs agree -------------------------------------------------

def test_every_fault_has_a_test_and_the_docs_list_them_all():
    assert len(BY_ID) == len(FAULTS) and USED == set(BY_ID)
    doc = DOC.read_text(encoding="utf-8")
    [count] = re.findall(r"(\d+) faults injected, 0 lost", doc)
    assert int(count) == len(FAULTS)
    listed = re.findall(r"^\| `([a-z-]+)` \|", doc, flags=re.M)
    assert listed == [f.id for f in FAULTS]
    assert f"`{locks.LOCK_FILE}`" in doc
