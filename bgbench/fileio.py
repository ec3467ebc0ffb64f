"""Writing files safely: atomically (a reader never sees a half-written checkpoint, result or
dataset file), and never over an existing output unless asked to."""

from __future__ import annotations

import contextlib
import errno
import json
import os
import tempfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, BinaryIO

from bgbench.errors import BgbenchError, ParameterError


class WriteError(BgbenchError):
    """The disk refused a write (full, failing, read-only); the previous file is intact."""


def write_error(path: Path, err: OSError, existed: bool) -> WriteError:
    """The one-line error for ``err`` while writing ``path``: the file, the cause, what is
    left and the fix."""
    code = errno.errorcode.get(err.errno or 0)
    cause = f"{err.strerror or err}" + (f", {code}" if code else "")
    kept = f"the previous {path.name} is unchanged" if existed else f"no {path.name} was written"
    return WriteError(f"cannot write {path} ({cause}); {kept}; free some space or fix the "
                      "disk, then run the command again")


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it is renamed over ``path``.

    On an exception the temporary file is removed and ``path`` is left as it was; an
    ``OSError`` (a full or failing disk) becomes a ``WriteError`` naming ``path``.
    """
    path = Path(path)
    existed = path.exists()
    tmp_path: Path | None = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        os.close(fd)
        tmp_path = Path(tmp)
        yield tmp_path
        with open(tmp_path, "rb") as f:
            os.fsync(f.fileno())
        # mkstemp creates 0600; give the file the mode a plain open() would have.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp_path, 0o666 & ~umask)
        os.replace(tmp_path, path)
    except OSError as err:
        raise write_error(path, err, existed) from None
    finally:
        if tmp_path is not None:
            tmp_path.unlink(missing_ok=True)


def write_stream(path: str | os.PathLike, write: Callable[[BinaryIO], None]) -> None:
    """Write ``path`` atomically through ``write(file)`` on an open binary file (e.g.
    ``torch.save``, whose own file writer reports a full disk as a bare RuntimeError)."""
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        write(f)


def append_line(path: str | os.PathLike, line: str) -> None:
    """Append ``line`` and a newline to ``path`` and sync it; a kill can leave the line cut
    short (readers drop an unterminated last line), a failed write is a ``WriteError``."""
    path = Path(path)
    try:
        with open(path, "a", encoding="utf-8") as f:
            f.write(line + "\n")
            f.flush()
            os.fsync(f.fileno())
    except OSError as err:
        raise write_error(path, err, True) from None


def write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def write_text(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    write_bytes(path, text.encode("utf-8"))


def write_json(path: str | os.PathLike, obj: Any) -> None:
    """Write ``obj`` as indented JSON to ``path`` atomically."""
    write_text(path, json.dumps(obj, indent=2, sort_keys=False) + "\n")


def refuse_overwrite(paths: str | os.PathLike | Iterable[str | os.PathLike], force: bool,
                     parameter: str = "out") -> None:
    """Raise unless none of ``paths`` exists or ``force`` is set.

    ``parameter`` is the caller's argument that chose the path, named in the error.
    """
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    existing = [str(p) for p in paths if Path(p).exists()]
    if existing and not force:
        verb, them = ("exists", "it") if len(existing) == 1 else ("exist", "them")
        raise ParameterError(f"{' and '.join(existing)} already {verb}; choose another "
                             f"`{parameter}` or pass `force=True` to replace {them}")
