"""Fault injection for ``test_faults.py`` and ``test_locks.py``: kill points, a lock held by
another process, and comparing a run with its uninterrupted twin.

Every file bgbench writes goes through ``os.fsync`` (the atomic writer syncs the temporary
file before renaming it; a metrics line is synced after its append) and, when atomic,
``os.replace``. Those calls are the *events* of a command; ``record`` lists them in order.
A *kill point* is an event and what happens there: ``torn`` (the file is cut to half its
new bytes, then SIGKILL: a kill inside the write), ``synced`` (SIGKILL after the sync,
before any rename) or ``renamed`` (SIGKILL just after the rename). ``child`` runs a command
in a new process that SIGKILLs itself at one point, as a kill from outside would leave it.
"""

from __future__ import annotations

import contextlib
import json
import multiprocessing
import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent


def _fd_path(fd: int) -> str:
    return os.readlink(f"/proc/self/fd/{fd}")


def _tear(path: str) -> None:
    """Cut ``path`` as a kill inside its write would: a temporary file to half its bytes,
    an appended file to half of its last line."""
    data = Path(path).read_bytes()
    if Path(path).name.endswith(".tmp"):
        os.truncate(path, len(data) // 2)
        return
    last = data.rstrip(b"\n").rsplit(b"\n", 1)[-1]
    os.truncate(path, len(data) - 1 - len(last) // 2)


def install(target: int | None = None, mode: str | None = None,
            record: list[tuple[str, str]] | None = None) -> Callable[[], None]:
    """Hook ``os.fsync`` and ``os.replace``: append ``(kind, path)`` of each event to
    ``record``, and at event number ``target`` act out ``mode`` and SIGKILL this process.
    Returns the function that removes the hooks."""
    real_fsync, real_replace = os.fsync, os.replace
    count = [0]

    def event(kind: str, path: str) -> int:
        if record is not None:
            record.append((kind, path))
        count[0] += 1
        return count[0] - 1

    def kill() -> None:
        os.kill(os.getpid(), signal.SIGKILL)

    def fsync(fd: int) -> None:
        path = _fd_path(fd)
        here = event("fsync", path) == target
        if here and mode == "torn":
            _tear(path)
            kill()
        real_fsync(fd)
        if here and mode == "synced":
            kill()

    def replace(src, dst) -> None:
        here = event("replace", str(dst)) == target
        real_replace(src, dst)
        if here:
            kill()

    os.fsync, os.replace = fsync, replace

    def remove() -> None:
        os.fsync, os.replace = real_fsync, real_replace

    return remove


@contextlib.contextmanager
def recording() -> Iterator[list[tuple[str, str]]]:
    """The events of the block, in order."""
    events: list[tuple[str, str]] = []
    remove = install(record=events)
    try:
        yield events
    finally:
        remove()


def points(events: list[tuple[str, str]]) -> list[tuple[int, str, str]]:
    """Every kill point of ``events``: (event number, mode, the file written)."""
    out = []
    for i, (kind, path) in enumerate(events):
        target = written_file(path)
        modes = ("torn", "synced") if kind == "fsync" else ("renamed",)
        out += [(i, mode, target) for mode in modes]
    return out


def written_file(path: str) -> str:
    """The file an event writes: ``.NAME.XXXX.tmp`` is ``NAME``."""
    p = Path(path)
    if p.name.startswith(".") and p.name.endswith(".tmp"):
        p = p.with_name(p.name[1:].rsplit(".", 2)[0])
    return str(p)


CHILD = textwrap.dedent("""
    import json, sys
    sys.path.insert(0, {tests!r})
    spec = json.loads(sys.argv[1])
    import faultkit
    if spec.get("synthetic_eval"):
        import bgbench.data
        from test_harness import synthetic_data
        images, labels = synthetic_data()
        bgbench.data.load_numpy = lambda dataset, split, data_root=None: (images, labels)
    if spec.get("torch"):
        import torch
        torch.set_num_threads(1)
    faultkit.install(spec["target"], spec["mode"])
    if spec.get("train"):
        from bgbench.train import make_config, train
        from bgbench.train.data import synthetic
        t = spec["train"]
        train(make_config("synthetic", t["method"], "quick", 0, t["overrides"]), t["out"],
              resume=t.get("resume", False), quiet=True, tensors=synthetic(t["images"], seed=0))
        sys.exit(0)
    from bgbench.cli import main
    sys.exit(main(spec["argv"]))
""")


def child(spec: dict, cwd: Path) -> subprocess.CompletedProcess:
    """Run ``spec`` (``argv`` for the CLI, or ``train`` for a synthetic-data run) in a new
    process that SIGKILLs itself at event ``spec["target"]`` acting out ``spec["mode"]``."""
    script = cwd / "fault_child.py"
    script.write_text(CHILD.format(tests=str(TESTS)))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), str(TESTS)]))
    return subprocess.run([sys.executable, str(script), json.dumps(spec)], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


def _train_child(target: int, mode: str, method: str, overrides: dict, images: int, out: str,
                 resume: bool) -> None:
    import torch

    from bgbench.train import make_config, train
    from bgbench.train.data import synthetic

    torch.set_num_threads(1)
    install(target, mode)
    train(make_config("synthetic", method, "quick", 0, overrides), out, resume=resume,
          quiet=True, tensors=synthetic(images, seed=0))


def train_child(target: int, mode: str, *, method: str, overrides: dict, images: int,
                out: Path, resume: bool = False) -> int | None:
    """Train (or resume) a synthetic-data run into ``out`` in a new process that SIGKILLs
    itself at event ``target`` acting out ``mode``; its exit code (-9 when killed).
    Forked from a server that has imported torch once, which saves seconds per kill."""
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(["torch", "bgbench.train", "bgbench.train.run", "faultkit"])
    proc = ctx.Process(target=_train_child,
                       args=(target, mode, method, overrides, images, str(out), resume))
    proc.start()
    proc.join(300)
    return proc.exitcode


HOLDER = textwrap.dedent("""
    import sys
    from bgbench.locks import directory_lock
    with directory_lock(sys.argv[1], sys.argv[2]):
        print("locked", flush=True)
        sys.stdin.read()
""")


@contextlib.contextmanager
def held_by_another_process(directory: Path, what: str = "train"
                            ) -> Iterator[subprocess.Popen]:
    """``directory``'s lock held by a new process (``bgbench.locks`` only, no torch) for
    the block; yields that process."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(directory), what], env=env,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "locked"
        yield proc
    finally:
        proc.stdin.close()
        proc.wait(timeout=30)


def tree(directory: Path) -> dict[str, bytes]:
    """Every file under ``directory`` by relative path, with its bytes."""
    return {str(p.relative_to(directory)): p.read_bytes()
            for p in sorted(directory.rglob("*")) if p.is_file()}


def without(record: dict, *keys: str) -> dict:
    """``record`` without ``keys`` (the fields that time a run)."""
    return {k: v for k, v in record.items() if k not in keys}
