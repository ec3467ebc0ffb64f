"""Same-seed weights of every method are pinned: a change to the training code that alters
one parameter of one network fails here (see ``weights_fingerprint.py``)."""

from __future__ import annotations

import pytest
import torch
from weights_fingerprint import METHODS, fingerprint

# Bitwise results depend on torch's CPU kernels; the pins hold for this version.
PINNED_TORCH = "2.14.1+cu130"
PINNED: dict[str, dict[str, str]] = {
    "traditional": {
        "classifier.pt": "d81561167f2c78a5d58f558e283d78d19069e0b9276e6af09e4ae27b45b6b104",
    },
    "attention": {
        "classifier.pt": "9366a4b06a4b627d84a240fc004fb03cf60f58d84f8a3330c9697a94f8d0dfcf",
    },
    "proposal": {
        "classifier.pt": "4f70ad33ba728d11b68263c4d466991ce21fab7b1f58532c7c050287d0da9894",
        "mask_generator.pt": "05b7387bd38cb6c32b657907028d3f2fa5fe9aad1b6fa4fab213bee75e92128e",
        "background_generator.pt": "ecb24b08cb3f0c1ff63f2dd9c621883dad7c524e42038d621bc0429a1d011f07",
    },
    "truemask": {
        "classifier.pt": "62fac404294018c6681d05f3193e3f363442488ff2ba39846291ef20265c93a4",
        "background_generator.pt": "7f4aa67d892e5fcbac3d13238c6d437a7bf05d74f4bed97d1ce981ca66114968",
    },
    "noisebg": {
        "classifier.pt": "214f212f81e5548d1d0ccd0370e78c2996f2764e4c629d1a4a2b4014e58c2a34",
        "mask_generator.pt": "05b7387bd38cb6c32b657907028d3f2fa5fe9aad1b6fa4fab213bee75e92128e",
    },
}


@pytest.mark.slow
@pytest.mark.skipif(torch.__version__ != PINNED_TORCH,
                    reason=f"weights pinned with torch {PINNED_TORCH}")
@pytest.mark.parametrize("method", METHODS)
def test_same_seed_weights_are_unchanged(tmp_path, method):
    assert fingerprint(method, tmp_path) == PINNED[method]


def test_the_fingerprint_sees_a_one_ulp_change_of_one_parameter():
    from weights_fingerprint import state_sha256

    from bgbench.models import VGGClassifier

    state = {k: v.clone() for k, v in VGGClassifier().state_dict().items()}
    before = state_sha256(state)
    name = sorted(state)[-1]
    flat = state[name].view(-1)
    flat[0] = torch.nextafter(flat[0], torch.tensor(float("inf")))
    assert state_sha256(state) != before
