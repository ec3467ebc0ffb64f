"""Packaging metadata that the wheel and sdist depend on (scripts/package_check.sh builds them)."""

import fnmatch
import re
from pathlib import Path

import pytest

import bgbench

tomllib = pytest.importorskip("tomllib")  # Python 3.11+

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def _names(requirements: list[str]) -> dict[str, str]:
    return {re.match(r"[A-Za-z0-9_.-]+", r).group(0).lower(): r for r in requirements}


def test_base_install_has_neither_torch_nor_a_fixed_onnxruntime():
    base = _names(PYPROJECT["project"]["dependencies"])
    assert not {"torch", "torchvision", "onnxruntime", "onnxruntime-gpu"} & set(base)


def test_cpu_and_gpu_extras_each_bring_one_onnxruntime():
    extras = {name: _names(reqs) for name, reqs in PYPROJECT["project"]["optional-dependencies"].items()}
    assert set(extras["cpu"]) == {"onnxruntime"}
    assert set(extras["gpu"]) == {"onnxruntime-gpu"}
    for name, reqs in extras.items():
        assert not {"onnxruntime", "onnxruntime-gpu"} <= set(reqs), name


def test_train_extra_pins_the_torch_the_extension_is_built_against():
    build = _names(PYPROJECT["build-system"]["requires"])
    train = _names(PYPROJECT["project"]["optional-dependencies"]["train"])
    assert build["torch"] == train["torch"] == "torch==2.14.1"
    assert {"ninja", "setuptools"} <= set(build)


def test_version_has_one_source():
    assert "version" not in PYPROJECT["project"]
    assert PYPROJECT["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "bgbench.__version__"}
    assert re.fullmatch(r"\d+\.\d+\.\d+", bgbench.__version__)


def test_license_and_typing_marker_ship():
    assert PYPROJECT["project"]["license"] == "MIT"
    assert (ROOT / "LICENSE").read_text(encoding="utf-8").startswith("MIT License")
    assert (ROOT / "bgbench" / "py.typed").is_file()
    assert "py.typed" in PYPROJECT["tool"]["setuptools"]["package-data"]["bgbench"]


def test_manifest_takes_every_compiled_source_into_the_sdist():
    patterns = []
    for line in (ROOT / "MANIFEST.in").read_text(encoding="utf-8").splitlines():
        words = line.split()
        if words[:2] == ["recursive-include", "csrc"]:
            patterns += words[2:]
    sources = [p for p in (ROOT / "csrc").rglob("*") if p.is_file()]
    assert sources
    missing = [str(p.relative_to(ROOT)) for p in sources
               if not any(fnmatch.fnmatch(p.name, pattern) for pattern in patterns)]
    assert not missing, f"MANIFEST.in leaves out {missing}"
