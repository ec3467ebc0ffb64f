"""Same-seed weights of every method are pinned: a change to the training code that alters
one parameter of one network fails here (see ``weights_fingerprint.py``)."""

from __future__ import annotations

import pytest
import torch
from weights_fingerprint import METHODS, fingerprint

# Bitwise results depend on torch's CPU kernels, which torch picks by the CPU's instruction
# set: the pins hold for this torch version on the CPU kinds named (``cpu_kind``); elsewhere
# the test is skipped with the command that prints the fingerprints to pin. They include the
# quick preset's grey fields and intensity maps.
PINNED_TORCH = "2.14.1+cu130"
PINNED: dict[str, dict[str, dict[str, str]]] = {
    "AVX512+AMX": {
        "traditional": {
            "classifier.pt":
                "afcb866c4a3d91702b4dd985f1544cc9eb2eb0d8fa00482ef9248ed77292619d",
        },
        "attention": {
            "classifier.pt":
                "6adf69894fab0d18558985066bb07ed191eea0a7eadf0ebbe3e17336661e4eaa",
        },
        "proposal": {
            "classifier.pt":
                "84e58386616220a8b5fba624c8aa68adfb43fa84d4fcfc4d4731c26f304a9a4d",
            "mask_generator.pt":
                "208bb2c91addf72c7c2b83539c0a4ef9114de78deaa69bee08c3921679534b1a",
            "background_generator.pt":
                "e92cd93759ed92352f91f516d3988f8b0aed912d59629e33d2617a28fda881ca",
        },
        "truemask": {
            "classifier.pt":
                "63d6327dd711fbcf8fc363218300a38fd1128781e8288a7e0eab4f8679c92423",
            "background_generator.pt":
                "bc04c89a2d742dae6a667d036a6ff2e5d0736beb57dbb30b83b91cad5fed47e9",
        },
        "noisebg": {
            "classifier.pt":
                "f71970dc81b76d277bde28122f42ebef0979c091265d2083065f04bb0d955f2a",
            "mask_generator.pt":
                "208bb2c91addf72c7c2b83539c0a4ef9114de78deaa69bee08c3921679534b1a",
        },
    },
    "AVX2/AMD": {
        "traditional": {
            "classifier.pt":
                "a4a94a87e4c00fda6646b5cd78c5ab43588204278217ec7393597909372fb9c6",
        },
        "attention": {
            "classifier.pt":
                "4713e5e7f095ab2d76dc97cd37a8cbecc66708efeff2467def30ff04ac40d898",
        },
        "proposal": {
            "classifier.pt":
                "0184c73cd1ec272298d0ea07c19db6ed2ac09ed35261720a472e3997d78a493f",
            "mask_generator.pt":
                "301f85c8b96d0462eed94e353ef057096f981e81b7c9bc133fa5926caefc345a",
            "background_generator.pt":
                "ea9ce4ca694a61806c163f5181266b779fcfc372297becfcc7648d656311199d",
        },
        "truemask": {
            "classifier.pt":
                "40194a712a254b33dff147deb2625ebe696ccce0e591b2b21987410ecc050a5d",
            "background_generator.pt":
                "6fe88ec3c72f7fd965bc49bfcbbd9699ada2ea47622e9dab88d07a5adf468c91",
        },
        "noisebg": {
            "classifier.pt":
                "fb1e1d8e7d927bc4ed8686fee94a8c721e846df28e195b8b6f8c1db818009aa5",
            "mask_generator.pt":
                "301f85c8b96d0462eed94e353ef057096f981e81b7c9bc133fa5926caefc345a",
        },
    },
}


def cpu_kind() -> str:
    """The instruction set torch's CPU kernels use here (``AVX2``, ``AVX512``, ...), with
    ``+AMX`` where the CPU has AMX tiles (oneDNN then takes other code paths) and ``/AMD``
    on an AMD CPU."""
    try:
        flags = open("/proc/cpuinfo", encoding="utf-8").read()
    except OSError:
        flags = ""
    amx = "+AMX" if " amx_tile" in flags else ""
    # MKL and oneDNN also pick kernels by CPU vendor, so an AMD CPU is a kind of its own.
    vendor = "/AMD" if "AuthenticAMD" in flags else ""
    return torch.backends.cpu.get_cpu_capability() + amx + vendor


@pytest.mark.slow
@pytest.mark.skipif(torch.__version__ != PINNED_TORCH,
                    reason=f"weights pinned with torch {PINNED_TORCH}")
@pytest.mark.skipif(cpu_kind() not in PINNED,
                    reason=f"no weights pinned for CPU kind {cpu_kind()}; pin the output of "
                    "`python tests/weights_fingerprint.py` under it")
@pytest.mark.parametrize("method", METHODS)
def test_same_seed_weights_are_unchanged(tmp_path, method):
    assert fingerprint(method, tmp_path) == PINNED[cpu_kind()][method]


def test_the_fingerprint_sees_a_one_ulp_change_of_one_parameter():
    from weights_fingerprint import state_sha256

    from bgbench.models import VGGClassifier

    state = {k: v.clone() for k, v in VGGClassifier().state_dict().items()}
    before = state_sha256(state)
    name = sorted(state)[-1]
    flat = state[name].view(-1)
    flat[0] = torch.nextafter(flat[0], torch.tensor(float("inf")))
    assert state_sha256(state) != before
