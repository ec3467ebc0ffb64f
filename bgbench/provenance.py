"""Where a result came from: package version, git commit, library versions, options hash."""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import json
import subprocess
from pathlib import Path
from typing import Any

from bgbench import __version__

_REPO = Path(__file__).resolve().parent.parent


@functools.cache
def git_commit() -> str:
    """The commit of the source tree bgbench runs from (``+dirty`` if modified), or ``unknown``.

    ``unknown`` too for an installed wheel: its parent directory is site-packages, and a
    git repository around that (a venv inside a clone) is not bgbench's source.
    """
    if not (_REPO / ".git").exists():
        return "unknown"
    try:
        run = functools.partial(subprocess.run, cwd=_REPO, capture_output=True, text=True,
                                timeout=10, check=True)
        sha = run(["git", "rev-parse", "HEAD"]).stdout.strip()
        dirty = run(["git", "status", "--porcelain", "--untracked-files=no"]).stdout.strip()
        return sha + ("+dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def package_versions(names: tuple[str, ...] = ("numpy", "torch", "torchvision", "onnx",
                                                "onnxruntime", "onnxruntime-gpu", "scikit-image")
                     ) -> dict[str, str]:
    """Installed versions of the libraries a result depends on (absent ones are skipped)."""
    versions = {"bgbench": __version__}
    for name in names:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return versions


def options_sha256(options: dict[str, Any]) -> str:
    """SHA-256 of ``options`` as canonical JSON (sorted keys, no spaces, ASCII): equal
    options give equal hashes whatever their order."""
    text = json.dumps(options, sort_keys=True, separators=(",", ":"), ensure_ascii=True,
                      allow_nan=False)
    return hashlib.sha256(text.encode("ascii")).hexdigest()
