"""Same-seed weight fingerprints of every method: a SHA-256 of each final state dict.

Trains each method with the quick preset, shortened by ``OVERRIDES``, on a few hundred
synthetic images with one torch thread, and hashes the classifier, mask generator and
background generator it writes. ``test_train_fingerprint.py`` pins the result, so a refactor
of the training code that changes one parameter fails a test.

Bitwise equal weights across CPUs need kernels that do not depend on the CPU: torch's
own kernels without explicit SIMD (``ATEN_CPU_CAPABILITY=default``), no oneDNN (its blocking
follows the CPU's ISA and caches, and two CPUs with the same instruction set gave different
stage-3 weights), and MKL in conditional numerical reproducibility mode (``MKL_CBWR``). The
environment variables are read when torch loads, so the script re-executes itself with them.
With these, Intel and AMD CPUs still give different weights, so the test pins one set per
CPU vendor.

    python tests/weights_fingerprint.py [METHOD...]   # prints the fingerprints as JSON
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import tempfile
from pathlib import Path

import torch

from bgbench.train import make_config, train
from bgbench.train.data import synthetic
from bgbench.vocab import METHODS

WEIGHT_FILES = ("classifier.pt", "mask_generator.pt", "background_generator.pt")
# Set before torch loads; see the module docstring.
PORTABLE_ENV = {"ATEN_CPU_CAPABILITY": "default", "MKL_CBWR": "COMPATIBLE,STRICT"}
IMAGES = 512
# Long enough that the classifier learns and the mask generator's Otsu masks cover part
# of each image (so the stage-3 backgrounds reach the classifier and the methods differ);
# two adversarial epochs make the best-epoch choice matter. The rest of the quick preset
# (widths, mask transform, background sampling, clean share) stays as is.
OVERRIDES = {"epochs": 3, "lr": 3e-3, "mask_epochs": 3, "mask_lr": 5e-3, "adv_epochs": 2,
             "local_epochs": 1, "batch_size": 64, "val_size": 128}


def state_sha256(state: dict[str, torch.Tensor]) -> str:
    """SHA-256 over every tensor's name, dtype, shape and bytes, in key order."""
    h = hashlib.sha256()
    for name in sorted(state):
        t = state[name].detach().cpu().contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.numpy().tobytes())
    return h.hexdigest()


def fingerprint(method: str, workdir: Path) -> dict[str, str]:
    """Train ``method`` (seed 0) into ``workdir`` and hash each weight file it writes.

    Portable across CPUs only in a process started with ``PORTABLE_ENV``."""
    threads, mkldnn = torch.get_num_threads(), torch.backends.mkldnn.enabled
    torch.set_num_threads(1)
    torch.backends.mkldnn.enabled = False
    try:
        config = make_config("synthetic", method, "quick", seed=0, overrides=OVERRIDES)
        run = workdir / method
        train(config, run, quiet=True, tensors=synthetic(IMAGES, seed=0))
    finally:
        torch.set_num_threads(threads)
        torch.backends.mkldnn.enabled = mkldnn
    return {name: state_sha256(torch.load(run / name, map_location="cpu", weights_only=True))
            for name in WEIGHT_FILES if (run / name).exists()}


def main(argv: list[str]) -> int:
    """Print ``{"torch": version, "methods": {method: {file: sha256}}}`` as JSON for the
    methods named (all by default), re-executing under ``PORTABLE_ENV`` first."""
    if any(os.environ.get(k) != v for k, v in PORTABLE_ENV.items()):
        os.execve(sys.executable, [sys.executable, __file__, *argv],
                  {**os.environ, **PORTABLE_ENV})
    unknown = sorted(set(argv) - set(METHODS))
    if unknown:
        print(f"unknown method(s) {unknown}; choose from {list(METHODS)}", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        methods = {m: fingerprint(m, Path(tmp)) for m in argv or METHODS}
    json.dump({"torch": torch.__version__, "methods": methods}, sys.stdout, indent=2)
    print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
