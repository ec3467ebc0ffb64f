"""Builds bgbench's two compiled modules.

- ``bgbench._C``: the torch extension holding ``torch.ops.bgbench.*`` (CPU always; CUDA
  when the build's torch is a CUDA build and a matching toolkit is found, or always with
  ``FORCE_CUDA=1``; ``BGBENCH_CUDA=0`` skips CUDA).
- ``bgbench._core``: a torch-free pybind11 module the evaluation harness uses.

Both compile the same kernel header in ``csrc/kernels``. Works with pip's default build
isolation (``pip install .``, ``pip wheel .``, ``python -m build``) and without it
(``pip install --no-build-isolation -e .``).
"""

import glob
import os
import re
import subprocess

import pybind11
import torch
from setuptools import Extension, setup
from torch.utils.cpp_extension import CUDA_HOME, BuildExtension, CppExtension, CUDAExtension

OPENMP = ["-fopenmp"]
# The language standard is torch's choice (C++20 for torch 2.14); the core picks its own.
CXX_FLAGS = ["-O3", *OPENMP]
# Absolute: ninja compiles from the build directory.
CSRC = os.path.join(os.path.dirname(os.path.abspath(__file__)), "csrc")
TORCH_LIB = os.path.join(os.path.dirname(torch.__file__), "lib")
SITE_PACKAGES = os.path.dirname(os.path.dirname(torch.__file__))


def _nvcc_cuda_version() -> str | None:
    """The toolkit's CUDA release (``13.0``), read from ``CUDA_HOME/bin/nvcc --version``."""
    try:
        out = subprocess.run([os.path.join(CUDA_HOME, "bin", "nvcc"), "--version"],
                             capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    found = re.search(r"release (\d+\.\d+)", out)
    return found.group(1) if found else None


def _build_cuda() -> bool:
    """Whether to compile the CUDA kernels into ``bgbench._C``.

    The extension is loaded into the torch it was built against (the ``train`` extra pins
    it), so CUDA code is compiled only where that torch can load it: a CUDA build of torch
    whose CUDA major version matches the toolkit's. A CPU-only torch would refuse to load an
    extension that links the CUDA runtime.
    """
    if os.environ.get("BGBENCH_CUDA") == "0":
        return False
    forced = os.environ.get("FORCE_CUDA") == "1"
    problem = None
    if CUDA_HOME is None:
        problem = "no CUDA toolkit was found (set CUDA_HOME=/usr/local/cuda)"
    elif not os.path.isfile(os.path.join(CUDA_HOME, "include", "cuda_runtime.h")):
        # torch guesses CUDA_HOME from nvcc on PATH; behind a wrapper the guess is wrong.
        problem = f"{CUDA_HOME} is not a CUDA toolkit (no include/cuda_runtime.h); set CUDA_HOME"
    elif torch.version.cuda is None:
        problem = f"torch {torch.__version__} is a CPU-only build"
    else:
        toolkit = _nvcc_cuda_version()
        if toolkit is None or toolkit.split(".")[0] != torch.version.cuda.split(".")[0]:
            problem = (f"the toolkit in {CUDA_HOME} is CUDA {toolkit} but torch "
                       f"{torch.__version__} is built for CUDA {torch.version.cuda}")
    if problem is None:
        return True
    if forced:
        raise RuntimeError(f"FORCE_CUDA=1 but {problem}; build with BGBENCH_CUDA=0 for CPU only")
    if CUDA_HOME is not None:
        print(f"bgbench: building without CUDA: {problem}")
    return False


def _torch_extension(cuda: bool):
    sources = ["csrc/ops.cpp", *sorted(glob.glob("csrc/cpu/*.cpp"))]
    args = {"cxx": CXX_FLAGS}
    if cuda:
        sources += sorted(glob.glob("csrc/cuda/*.cu"))
        args["nvcc"] = ["-O3", "--use_fast_math"]
        return CUDAExtension("bgbench._C", sources, extra_compile_args=args,
                             extra_link_args=OPENMP, include_dirs=[CSRC])
    return CppExtension("bgbench._C", sources, extra_compile_args=args,
                        extra_link_args=OPENMP, include_dirs=[CSRC])


def _core_extension():
    # Plain pybind11: must not link libtorch, so the harness runs where torch is absent.
    return Extension("bgbench._core", ["csrc/core.cpp"],
                     include_dirs=[CSRC, pybind11.get_include()], language="c++",
                     extra_compile_args=[*CXX_FLAGS, "-std=c++17"], extra_link_args=OPENMP)


def _rpath(cuda: bool, inplace: bool) -> list[str]:
    """Run-time search paths of ``bgbench._C`` so that it imports before ``import torch``.

    An installed ``bgbench/_C*.so`` finds torch's libraries (and the CUDA runtime wheels
    torch depends on) beside it in site-packages, through ``$ORIGIN``: the torch it was
    built against may live in a build environment that is deleted afterwards. An in-place
    or editable build also gets the absolute directories of the torch it was built with.
    """
    dirs = ["$ORIGIN/../torch/lib"]
    cuda_dirs = sorted(glob.glob(os.path.join(SITE_PACKAGES, "nvidia", "cu*", "lib"))) if cuda else []
    dirs += ["$ORIGIN/../" + os.path.relpath(d, SITE_PACKAGES) for d in cuda_dirs]
    if inplace:
        dirs += [TORCH_LIB, *cuda_dirs]
        if cuda:
            dirs.append(os.path.join(CUDA_HOME, "lib64"))
    return [f"-Wl,-rpath,{d}" for d in dirs]


class BuildExt(BuildExtension):
    """torch's ``build_ext`` (ninja), adding the run-time search paths of ``bgbench._C``."""

    def run(self):
        # Read here: setuptools clears ``inplace`` while the extensions are built.
        in_place = bool(self.inplace or getattr(self, "editable_mode", False))
        for ext in self.extensions:
            if ext.name == "bgbench._C":
                cuda = any(source.endswith(".cu") for source in ext.sources)
                ext.extra_link_args = [*ext.extra_link_args, *_rpath(cuda, in_place)]
        super().run()


setup(
    ext_modules=[_torch_extension(_build_cuda()), _core_extension()],
    cmdclass={"build_ext": BuildExt.with_options(use_ninja=True)},
)
