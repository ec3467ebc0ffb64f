"""The directory lock: one writer per directory, released by the kernel when its holder
dies, re-entrant within a process, taken by rank 0 only under torchrun."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap

import pytest
from faultkit import ROOT, held_by_another_process

from bgbench.cli import main
from bgbench.locks import (
    LOCK_FILE,
    DirectoryLockedError,
    OutputDirectoryError,
    directory_lock,
    has_content,
    writes,
)


def test_a_second_process_is_refused_naming_the_first(tmp_path):
    with held_by_another_process(tmp_path, "eval") as first:
        owner = json.loads((tmp_path / LOCK_FILE).read_text())
        assert owner["pid"] == first.pid and owner["host"] == socket.gethostname()
        assert owner["what"] == "eval" and owner["command"]
        with pytest.raises(DirectoryLockedError) as caught, directory_lock(tmp_path, "train"):
            pass
    message = str(caught.value)
    assert caught.value.exit_code == 2 and "\n" not in message
    assert message.startswith(f"{tmp_path} is in use by process {first.pid} on ")
    assert message.endswith(", eval); wait for it to finish or stop that process, then run "
                            "this again")
    with directory_lock(tmp_path, "train"):  # free again once the first has finished
        assert json.loads((tmp_path / LOCK_FILE).read_text())["pid"] == os.getpid()
    assert not (tmp_path / LOCK_FILE).exists()


def test_a_killed_holder_leaves_no_stale_lock(tmp_path):
    code = textwrap.dedent("""
        import os, signal, sys
        from bgbench.locks import directory_lock
        with directory_lock(sys.argv[1], "train"):
            os.kill(os.getpid(), signal.SIGKILL)
    """)
    proc = subprocess.run([sys.executable, "-c", code, str(tmp_path)],
                          env=dict(os.environ, PYTHONPATH=str(ROOT)), timeout=60)
    assert proc.returncode == -signal.SIGKILL
    assert (tmp_path / LOCK_FILE).exists()  # the file stays, its lock went with the process
    with directory_lock(tmp_path, "train"):
        assert json.loads((tmp_path / LOCK_FILE).read_text())["pid"] == os.getpid()


def test_nested_locks_in_one_process_do_not_deadlock(tmp_path):
    with directory_lock(tmp_path, "reproduce"):
        with directory_lock(tmp_path / ".", "report"), directory_lock(tmp_path / "runs", "train"):
            assert (tmp_path / LOCK_FILE).exists() and (tmp_path / "runs" / LOCK_FILE).exists()
        assert (tmp_path / LOCK_FILE).exists()  # still held by the outer block
        assert not (tmp_path / "runs").exists()  # made for a lock, left empty: removed
    assert not (tmp_path / LOCK_FILE).exists()


def test_only_rank_0_takes_the_lock_under_torchrun(tmp_path, monkeypatch):
    with held_by_another_process(tmp_path):
        monkeypatch.setenv("RANK", "1")
        with directory_lock(tmp_path, "train"):  # rank 0 holds it for the job
            pass
        monkeypatch.setenv("RANK", "0")
        with pytest.raises(DirectoryLockedError), directory_lock(tmp_path, "train"):
            pass


def test_a_directory_that_cannot_be_made_is_a_clear_error(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(OutputDirectoryError, match=r"cannot create .*file/out \(Not a "
                       r"directory\); choose a directory you can write to"):
        with directory_lock(tmp_path / "file" / "out", "eval"):
            pass


def test_writes_decorates_a_command(tmp_path):
    seen = []

    @writes("attack", lambda args: args.out, lambda args: None)
    def run(args):
        seen.append((tmp_path / "out" / LOCK_FILE).exists())
        return 0

    class Args:
        out = tmp_path / "out"

    assert run(Args()) == 0 and seen == [True]
    with held_by_another_process(tmp_path / "out"):
        with pytest.raises(DirectoryLockedError):
            run(Args())


def test_lock_and_temporary_files_are_not_content(tmp_path):
    assert not has_content(tmp_path / "missing") and not has_content(tmp_path)
    (tmp_path / LOCK_FILE).write_text("")
    (tmp_path / ".config.json.abcd1234.tmp").write_text("")
    assert not has_content(tmp_path)
    (tmp_path / "config.json").write_text("{}")
    assert has_content(tmp_path)


def test_train_force_keeps_the_lock_it_holds(tmp_path, monkeypatch):
    """--force empties the run directory but for the lock file, so a second writer started
    meanwhile is still refused."""
    from bgbench.train import run as run_mod
    from bgbench.train.distributed import Context

    run = tmp_path / "run"
    run.mkdir()
    (run / "checkpoints").mkdir()
    (run / "metrics.jsonl").write_text("{}\n")
    with directory_lock(run, "train"):
        assert run_mod._prepare_dir(run, {}, resume=False, force=True, ctx=Context())
        assert sorted(p.name for p in run.iterdir()) == [LOCK_FILE]
        code = "from bgbench.locks import directory_lock; import sys\n" \
               "with directory_lock(sys.argv[1], 'train'): pass"
        proc = subprocess.run([sys.executable, "-c", code, str(run)], capture_output=True,
                              text=True, env=dict(os.environ, PYTHONPATH=str(ROOT)), timeout=60)
        assert proc.returncode == 1 and "DirectoryLockedError" in proc.stderr


def test_report_and_export_lock_what_they_write(tmp_path, capsys):
    with held_by_another_process(tmp_path / "results"):
        assert main(["report", str(tmp_path / "results")]) == 2  # report.md goes beside them
        assert "is in use by process" in capsys.readouterr().err
    with held_by_another_process(tmp_path / "run"):
        assert main(["export", str(tmp_path / "run")]) == 2  # RUN_DIR/model.onnx
        assert "is in use by process" in capsys.readouterr().err


BLOCK_TORCH = textwrap.dedent("""
    import importlib.abc, sys

    class BlockTorch(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name == "torch" or name.startswith("torch."):
                raise ImportError("torch is blocked in this test")

    sys.meta_path.insert(0, BlockTorch())
    from bgbench.cli import main
    sys.exit(main(sys.argv[1:]))
""")


@pytest.mark.parametrize("argv", [
    ["train", "--dataset", "mnist", "--method", "proposal", "--resume"],
    ["reproduce", "--datasets", "mnist"],
], ids=["train", "reproduce"])
def test_the_refusal_comes_before_torch_loads(tmp_path, argv):
    """A second writer is refused within a second, not after the seconds torch takes to
    import: with torch blocked, the refusal is still what it prints."""
    with held_by_another_process(tmp_path / "R") as first:
        proc = subprocess.run([sys.executable, "-c", BLOCK_TORCH, *argv, "--out",
                               str(tmp_path / "R")], capture_output=True, text=True,
                              env=dict(os.environ, PYTHONPATH=str(ROOT)), timeout=60)
    assert proc.returncode == 2, proc.stderr
    assert f"is in use by process {first.pid}" in proc.stderr
    assert proc.stderr.count("\n") == 1
