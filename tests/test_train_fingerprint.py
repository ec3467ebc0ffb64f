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
# The script runs torch's portable kernels and MKL in reproducible mode, so a pin holds on
# the CPUs of one vendor with this torch version (its MKL) and fails on any change of the
# weights. An AMD EPYC still gives other weights than Intel CPUs do, so each vendor has its
# own pin. They include the quick preset's grey fields and intensity maps.
PINNED_TORCH = "2.14.1+cu130"
PINNED: dict[str, dict[str, dict[str, str]]] = {
    "GenuineIntel": {
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
                "c48547eb7b263a3b6596ba8695c5f19c70cf291fed2f81ad1196232b2acefdd2",
            "mask_generator.pt":
                "9c04c84f07e37352888eb10ce330dfeed8b99256c0da2140771b06e884966b70",
            "background_generator.pt":
                "72b5b66a14d02ad359538b9ffdb96db9d43e176972ee0c0f406068964f266f45",
        },
        "truemask": {
            "classifier.pt":
                "44791420850c07c5a247f63859c6383758cb0b41520da746f09e6190cef58673",
            "background_generator.pt":
                "0b299b63632ec47887f5097017187f02bec0c191cd8a838a30d7a26916948a2d",
        },
        "noisebg": {
            "classifier.pt":
                "5899f1c8baadc0d007efb2f0fb9e82b0981bacad5a4006e5fea63e2ebfdb715b",
            "mask_generator.pt":
                "9c04c84f07e37352888eb10ce330dfeed8b99256c0da2140771b06e884966b70",
        },
    },
    "AuthenticAMD": {
        "traditional": {
            "classifier.pt":
                "8a6e4085207d423398447201da09a49f878773e4df702696e8d32de0c79cf1b6",
        },
        "attention": {
            "classifier.pt":
                "093802157dbda1321f40e32787ba5b4bc0a8187085e2b2d11581cc75e9f590e7",
        },
        "proposal": {
            "classifier.pt":
                "1e4542f2e9f3919c4c1470b6f2b6ae7568d862b0f324ebddfa940d7e5c886e40",
            "mask_generator.pt":
                "2be342a621d0676e7cb7b0e92e8b9d35108a0491f0e840e13c133f999264d432",
            "background_generator.pt":
                "89bf5ee20b0f70b5d71310a92fe0cfc91c245404dc60ce765defddb404e3399d",
        },
        "truemask": {
            "classifier.pt":
                "8474e4e9fe1693f8c36de0aebfe77b0dbdb17e41d710f7131ae6ed7b95dbe2e1",
            "background_generator.pt":
                "995944b03d80a069f96eeaaca09c90ba5c47bc920e87856535858f1ca84cd54f",
        },
        "noisebg": {
            "classifier.pt":
                "a2bc3dd560ab88dca4fe04678b6afa45163dcf17efc342c81215d276ec33b9c7",
            "mask_generator.pt":
                "2be342a621d0676e7cb7b0e92e8b9d35108a0491f0e840e13c133f999264d432",
        },
    },
}


def cpu_vendor() -> str:
    """The CPU's vendor string (``GenuineIntel``, ``AuthenticAMD``), or ``unknown``."""
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="utf-8")
    except OSError:
        return "unknown"
    return next((line.split(":", 1)[1].strip() for line in text.splitlines()
                 if line.startswith("vendor_id")), "unknown")


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
    vendor = cpu_vendor()
    assert vendor in PINNED, (f"no weights pinned for {vendor} CPUs; run `python "
                              f"tests/weights_fingerprint.py` and add its output to PINNED")
    assert json.loads(done.stdout)["methods"][method] == PINNED[vendor][method]


def test_the_fingerprint_sees_a_one_ulp_change_of_one_parameter():
    from weights_fingerprint import state_sha256

    from bgbench.models import VGGClassifier

    state = {k: v.clone() for k, v in VGGClassifier().state_dict().items()}
    before = state_sha256(state)
    name = sorted(state)[-1]
    flat = state[name].view(-1)
    flat[0] = torch.nextafter(flat[0], torch.tensor(float("inf")))
    assert state_sha256(state) != before
