"""Same-seed weights of every method are pinned: a change to the training code that alters
one parameter of one network fails here (see ``weights_fingerprint.py``)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from weights_fingerprint import METHODS

SCRIPT = Path(__file__).with_name("weights_fingerprint.py")
# The script runs torch's portable kernels and MKL in reproducible mode, so one pin holds on
# any x86-64 CPU with this torch version (its MKL) and fails on any change of the weights.
# They include the quick preset's grey fields and intensity maps.
PINNED_TORCH = "2.14.1+cu130"
PINNED: dict[str, dict[str, str]] = {
    "traditional": {
        "classifier.pt":
            "fe1467d957c83ca93fa3c3b8c538379cc35b7737157652ccddd9f078c1874146",
    },
    "attention": {
        "classifier.pt":
            "03990f83a1b235af0b75271f9df6f44b2bf202a7fee22845cbda69bdd53ad9b6",
    },
    "proposal": {
        "classifier.pt":
            "b6b3a2d871100e8ccbc0d0cb24c26e53d1843d55cedb0fe0415fb3b9cfddbfef",
        "mask_generator.pt":
            "9c04c84f07e37352888eb10ce330dfeed8b99256c0da2140771b06e884966b70",
        "background_generator.pt":
            "e005dcd4a1c74bea9759b7547fd1391ed26c2fbefaae6755172100865c762c93",
    },
    "truemask": {
        "classifier.pt":
            "39386748ce1ca5b432c8a2736c8c8f5e466d3928e9b9409213f6c2e4bb55b8f9",
        "background_generator.pt":
            "a161c1ac6a23d47bbf9a3bd47ca393bc7a55ca4d2179449cceba2d73b1f8af42",
    },
    "noisebg": {
        "classifier.pt":
            "5899f1c8baadc0d007efb2f0fb9e82b0981bacad5a4006e5fea63e2ebfdb715b",
        "mask_generator.pt":
            "9c04c84f07e37352888eb10ce330dfeed8b99256c0da2140771b06e884966b70",
    },
}


@pytest.mark.slow
@pytest.mark.skipif(torch.__version__ != PINNED_TORCH,
                    reason=f"weights pinned with torch {PINNED_TORCH}")
@pytest.mark.skipif(not torch.backends.mkl.is_available(),
                    reason="weights pinned with MKL's reproducible mode; this torch has no MKL")
@pytest.mark.parametrize("method", METHODS)
def test_same_seed_weights_are_unchanged(method):
    done = subprocess.run([sys.executable, str(SCRIPT), method], capture_output=True,
                          text=True, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout)["methods"][method] == PINNED[method]


def test_the_fingerprint_sees_a_one_ulp_change_of_one_parameter():
    from weights_fingerprint import state_sha256

    from bgbench.models import VGGClassifier

    state = {k: v.clone() for k, v in VGGClassifier().state_dict().items()}
    before = state_sha256(state)
    name = sorted(state)[-1]
    flat = state[name].view(-1)
    flat[0] = torch.nextafter(flat[0], torch.tensor(float("inf")))
    assert state_sha256(state) != before
