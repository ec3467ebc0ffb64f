"""Builds bgbench's two compiled modules.

- ``bgbench._C``: the torch extension holding ``torch.ops.bgbench.*`` (CPU always,
  CUDA when a toolkit is found, or always with ``FORCE_CUDA=1``; ``BGBENCH_CUDA=0``
  skips CUDA).
- ``bgbench._core``: a torch-free pybind11 module the evaluation harness uses.

Both compile the same kernel header in ``csrc/kernels``.
"""

import glob
import os

import pybind11
import torch
from setuptools import Extension, setup
from torch.utils.cpp_extension import CUDA_HOME, BuildExtension, CppExtension, CUDAExtension

OPENMP = ["-fopenmp"]
# The language standard is torch's choice (C++20 for torch 2.14); the core picks its own.
CXX_FLAGS = ["-O3", *OPENMP]
# Absolute: ninja compiles from the build directory.
CSRC = os.path.join(os.path.dirname(os.path.abspath(__file__)), "csrc")


def _rpath(cuda: bool) -> list[str]:
    # So that `import bgbench._C` works before `import torch` (bgbench itself never imports
    # torch at package level): the loader finds libc10/libtorch (and libcudart) by rpath.
    dirs = [os.path.join(os.path.dirname(torch.__file__), "lib")]
    if cuda:
        site = os.path.dirname(os.path.dirname(torch.__file__))
        dirs += sorted(glob.glob(os.path.join(site, "nvidia", "cu*", "lib")))
        dirs.append(os.path.join(CUDA_HOME, "lib64"))
    return [f"-Wl,-rpath,{d}" for d in dirs]


def _build_cuda() -> bool:
    if os.environ.get("BGBENCH_CUDA") == "0":
        return False
    if os.environ.get("FORCE_CUDA") == "1":
        if CUDA_HOME is None:
            raise RuntimeError("FORCE_CUDA=1 but no CUDA toolkit was found: set CUDA_HOME=/usr/local/cuda")
        return True
    return CUDA_HOME is not None


def _torch_extension():
    sources = ["csrc/ops.cpp", *sorted(glob.glob("csrc/cpu/*.cpp"))]
    args = {"cxx": CXX_FLAGS}
    if _build_cuda():
        sources += sorted(glob.glob("csrc/cuda/*.cu"))
        args["nvcc"] = ["-O3", "--use_fast_math"]
        return CUDAExtension("bgbench._C", sources, extra_compile_args=args,
                             extra_link_args=OPENMP + _rpath(True), include_dirs=[CSRC])
    return CppExtension("bgbench._C", sources, extra_compile_args=args,
                        extra_link_args=OPENMP + _rpath(False), include_dirs=[CSRC])


def _core_extension():
    # Plain pybind11: must not link libtorch, so the harness runs where torch is absent.
    return Extension("bgbench._core", ["csrc/core.cpp"],
                     include_dirs=[CSRC, pybind11.get_include()], language="c++",
                     extra_compile_args=[*CXX_FLAGS, "-std=c++17"], extra_link_args=OPENMP)


setup(
    ext_modules=[_torch_extension(), _core_extension()],
    cmdclass={"build_ext": BuildExtension.with_options(use_ninja=True)},
)
