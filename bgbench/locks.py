"""One writer per directory: an advisory lock every writing command takes on what it writes.

The lock is ``fcntl.flock`` on ``LOCK_FILE`` inside the directory. The kernel releases it
when the holder exits, however it exits (SIGKILL included), so a crash never leaves a stale
lock. The file holds the owner's PID, host and command line, for the refusal message; it
is removed on release (a killed owner leaves it behind, unlocked, and the next writer takes
it over).
Within one process the lock is re-entrant (``reproduce`` holds its output directory while
the steps it runs take their own), and under torchrun only rank 0 takes it.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import fcntl
import functools
import json
import os
import shlex
import socket
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

from bgbench.errors import BgbenchError

LOCK_FILE = ".bgbench.lock"


class DirectoryLockedError(BgbenchError):
    """Another process is writing the directory this command would write."""

    exit_code = 2


class OutputDirectoryError(BgbenchError):
    """The directory a command writes into cannot be created or written."""

    exit_code = 2


Command = Callable[[argparse.Namespace], int]

# Locks this process holds: resolved directory -> [lock file's fd, nesting depth,
# directories made for it].
_held: dict[Path, list] = {}
_guard = threading.Lock()


def _owner(fd: int) -> str:
    try:
        owner = json.loads(os.pread(fd, 4096, 0).decode("utf-8") or "{}")
        return (f"process {owner['pid']} on {owner['host']} "
                f"(`{owner['command']}`, {owner['what']})")
    except (OSError, ValueError, KeyError, TypeError):
        return "another process"


def _command_line() -> str:
    argv = sys.argv
    if Path(argv[0]).name in ("bgbench", "__main__.py"):
        argv = ["bgbench", *argv[1:]]
    return shlex.join(argv)


def _acquire(directory: Path, what: str) -> int:
    """Lock ``directory`` (which exists) and record this process as its owner; the fd."""
    path = directory / LOCK_FILE
    while True:
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as err:
            raise OutputDirectoryError(f"cannot write into {directory} ({err.strerror}); "
                                       "choose a directory you can write to") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as err:
            owner = _owner(fd)
            os.close(fd)
            if err.errno not in (errno.EWOULDBLOCK, errno.EACCES):
                raise OutputDirectoryError(f"cannot lock {directory} ({err.strerror}); "
                                           "choose a local directory") from None
            raise DirectoryLockedError(
                f"{directory} is in use by {owner}; wait for it to finish or stop that "
                "process, then run this again") from None
        try:
            same = os.stat(path).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            same = False
        if same:
            break
        # The previous owner removed the file between our open and our lock: lock anew.
        os.close(fd)
    record = json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                         "command": _command_line(), "what": what}) + "\n"
    os.ftruncate(fd, 0)
    os.pwrite(fd, record.encode("utf-8"), 0)
    return fd


def _make(directory: Path) -> list[Path]:
    """Create ``directory`` and missing parents; the ones created, deepest first."""
    missing = [d for d in (directory, *directory.parents) if not d.exists()]
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise OutputDirectoryError(f"cannot create {directory} ({err.strerror}); choose a "
                                   "directory you can write to") from None
    return missing


@contextlib.contextmanager
def directory_lock(directory: str | os.PathLike, what: str) -> Iterator[Path]:
    """Hold ``directory``'s lock (creating the directory) while the block runs; yields the
    directory. ``what`` names the writer (``"train"``) in a refusal.

    Raises ``DirectoryLockedError`` (exit code 2) at once if another process holds it, and
    ``OutputDirectoryError`` (exit code 2) if the directory cannot be created or written.
    On release the lock file is removed, and so are directories made for it that are still
    empty (a command that failed before writing leaves nothing behind).
    """
    directory = Path(directory)
    if int(os.environ.get("RANK", "0")) != 0:
        yield directory
        return
    key = directory.resolve()
    with _guard:
        held = _held.get(key)
        if held is not None:
            held[1] += 1
        else:
            created = _make(directory)
            try:
                fd = _acquire(directory, what)
            except BgbenchError:
                _remove_empty(created)
                raise
            _held[key] = [fd, 1, created]
    try:
        yield directory
    finally:
        with _guard:
            entry = _held[key]
            entry[1] -= 1
            if entry[1] == 0:
                del _held[key]
                # Unlinked while still locked: a process that opened the old file re-checks
                # it against the path after locking, and starts over.
                with contextlib.suppress(OSError):
                    os.unlink(directory / LOCK_FILE)
                os.close(entry[0])
                _remove_empty(entry[2])


def _remove_empty(created: list[Path]) -> None:
    for folder in created:
        try:
            folder.rmdir()
        except OSError:
            return


def writes(what: str, *where: Callable[[argparse.Namespace], str | os.PathLike | None]
           ) -> Callable[[Command], Command]:
    """Decorate a command's ``run(args)`` to hold the lock of each directory ``where(args)``
    names (None: none) while it runs, e.g. ``@writes("eval", lambda args: args.out)``."""

    def decorate(run: Command) -> Command:
        @functools.wraps(run)
        def locked(args: argparse.Namespace) -> int:
            with contextlib.ExitStack() as stack:
                for directory in dict.fromkeys(w(args) for w in where):
                    if directory is not None:
                        stack.enter_context(directory_lock(directory, what))
                return run(args)

        return locked

    return decorate


def is_leftover(path: Path) -> bool:
    """Whether ``path`` is the lock file or an atomic write's temporary file
    (``.NAME.XXXX.tmp``), which a killed writer leaves and which hold no results."""
    return path.name == LOCK_FILE or (path.name.startswith(".") and path.name.endswith(".tmp"))


def has_content(directory: str | os.PathLike) -> bool:
    """Whether ``directory`` exists and holds anything but ``is_leftover`` files."""
    directory = Path(directory)
    return directory.is_dir() and any(not is_leftover(p) for p in directory.iterdir())
