"""Epoch metrics: sums kept on the device, read back once per epoch, and the progress bar's
reads every ``POSTFIX_EVERY`` steps only when a bar is shown."""

from __future__ import annotations

import io
import sys
from pathlib import Path

import pytest
import torch

import bgbench
from bgbench.train import make_config, train
from bgbench.train import trainer as trainer_mod
from bgbench.train.data import synthetic
from bgbench.train.distributed import Context
from bgbench.train.meters import Meters
from bgbench.train.stages import METHOD_STAGES, AdversarialStage, ClassifierStage, MaskStage

# Small enough that a method's run takes a second or two.
TINY = {"epochs": 1, "mask_epochs": 1, "adv_epochs": 1, "local_epochs": 1, "batch_size": 32,
        "val_size": 64, "unet_width": 4, "gen_width": 8, "cc_iterations": 8}
# Threat-model family members are rendered on the host (bgbench.attack.families, numpy), so
# stage 3 reads which candidate and which moves won once per step where it draws them; the
# host-read test checks everything else with them off.
NO_FAMILIES = {"family_share": 0.0, "family_candidates": 1, "family_moves": 0}


def test_meters_sum_tensors_and_numbers_into_exact_means():
    meters = Meters("loss", "acc")
    meters.add(128, loss=torch.tensor(0.25, dtype=torch.float32) * 128,
               acc=torch.tensor(100))  # an integer count, as (argmax == y).sum() gives
    meters.add(64, loss=0.5 * 64, acc=60)
    assert meters.sums.dtype == torch.float64
    assert meters.running() == {"loss": (32 + 32) / 192, "acc": 160 / 192}
    assert meters.averages(Context()) == meters.running()


def test_meters_keep_float64_sums_of_float32_losses():
    meters = Meters("loss")
    third = torch.tensor(1 / 3, dtype=torch.float32)
    for _ in range(1000):
        meters.add(1, loss=third)
    # float32 running sums drift by about 1e-5 here; float64 ones stay at float32's own error.
    assert meters.running()["loss"] == pytest.approx(float(third), rel=1e-12)


def test_meters_name_an_unknown_metric():
    meters = Meters("train_loss", "train_acc")
    with pytest.raises(KeyError, match="no meter named train_los; the meters are train_loss, "
                                       "train_acc"):
        meters.add(1, train_los=1.0)


def test_empty_meters_average_to_zero():
    assert Meters("a").averages(Context()) == {"a": 0.0}


class _Terminal(io.StringIO):
    """A stderr stand-in that keeps what is written and says whether it is a terminal."""

    def __init__(self, tty: bool):
        super().__init__()
        self.tty = tty

    def isatty(self) -> bool:
        return self.tty


class _CountingMeters(Meters):
    reads = 0

    def running(self) -> dict[str, float]:
        self.reads += 1
        return super().running()


def _run_progress(monkeypatch, tty: bool, quiet: bool, steps: int
                  ) -> tuple[_Terminal, trainer_mod.Progress, _CountingMeters]:
    """A progress bar over ``steps`` steps, each adding to the meters and posting them."""
    term = _Terminal(tty)
    monkeypatch.setattr("sys.stderr", term)
    progress = trainer_mod.Progress(enabled=True, quiet=quiet)
    meters = _CountingMeters("train_loss")
    for _ in progress.iterate([torch.zeros(1)] * steps, "stage 1/1"):
        meters.add(1, train_loss=torch.tensor(0.5))
        progress.postfix(meters, loss="train_loss")
    return term, progress, meters


@pytest.mark.parametrize(("tty", "quiet", "bar"), [(True, False, True), (True, True, False),
                                                     (False, False, False)])
def test_progress_bar_only_on_a_terminal_unless_quiet(monkeypatch, tty, quiet, bar):
    term, progress, _ = _run_progress(monkeypatch, tty, quiet, steps=3)
    progress.log("stage epoch 1/1: loss 0.5")
    assert ("stage 1/1" in term.getvalue()) == bar
    assert term.getvalue().count("stage epoch 1/1: loss 0.5") == 1


@pytest.mark.parametrize(("tty", "quiet", "reads"), [(True, False, 3), (True, True, 0),
                                                      (False, False, 0)])
def test_progress_reads_the_meters_every_postfix_steps_and_only_with_a_bar(
        monkeypatch, tty, quiet, reads):
    steps = 2 * trainer_mod.POSTFIX_EVERY + 1  # reads at steps 0, 50 and 100
    _, progress, meters = _run_progress(monkeypatch, tty, quiet, steps)
    assert meters.reads == reads
    if reads:
        assert progress._tqdm.postfix == "loss=0.5"


@pytest.mark.cuda
def test_adding_to_meters_on_a_gpu_never_waits_for_it():
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    meters = Meters("loss", "acc", "count", device="cuda")
    logits = torch.randn(128, 10, device="cuda")
    y = torch.randint(0, 10, (128,), device="cuda")
    loss = torch.nn.functional.cross_entropy(logits, y)
    torch.cuda.synchronize()
    previous = torch.cuda.get_sync_debug_mode()
    torch.cuda.set_sync_debug_mode("error")  # any host synchronisation raises
    try:
        for _ in range(3):
            meters.add(128, loss=loss * 128, acc=(logits.argmax(1) == y).sum(), count=128)
    finally:
        torch.cuda.set_sync_debug_mode(previous)
    assert meters.sums.device.type == "cuda"
    means = meters.averages(Context(device=torch.device("cuda")))
    assert means["loss"] == pytest.approx(loss.item(), rel=1e-6)
    assert means["acc"] == (logits.argmax(1) == y).sum().item() / 128
    assert means["count"] == 1.0


# Ways Python code reads a tensor's value on the host: each waits for the device there.
HOST_READS = ("item", "tolist", "cpu", "numpy", "__bool__", "__float__", "__int__", "__index__")
BGBENCH_DIR = str(Path(bgbench.__file__).parent)


def _host_reads_per_epoch(monkeypatch, tmp_path, method: str, train_subset: int
                          ) -> dict[str, int]:
    """How many times bgbench's own code reads a tensor's value during each stage's epoch."""
    reads: dict[str, int] = {}
    current: list[str] = []

    def counting(name):
        real = getattr(torch.Tensor, name)

        def read(self, *args, **kwargs):
            if current and sys._getframe(1).f_code.co_filename.startswith(BGBENCH_DIR):
                reads[current[-1]] = reads.get(current[-1], 0) + 1
            return real(self, *args, **kwargs)
        return read

    def tracked(real_epoch):
        def epoch(self, *args, **kwargs):
            current.append(self.name)
            try:
                return real_epoch(self, *args, **kwargs)
            finally:
                current.pop()
        return epoch

    with monkeypatch.context() as patch:
        for name in HOST_READS:
            patch.setattr(torch.Tensor, name, counting(name))
        for cls in (ClassifierStage, MaskStage, AdversarialStage):
            patch.setattr(cls, "epoch", tracked(cls.epoch))
        config = make_config("synthetic", method, "quick", seed=0,
                             overrides={**TINY, **NO_FAMILIES, "train_subset": train_subset})
        train(config, tmp_path / f"{method}-{train_subset}", quiet=True,
              tensors=synthetic(128 + TINY["val_size"], seed=0))
    return reads


@pytest.mark.usefixtures("one_torch_thread")
@pytest.mark.parametrize("method", ["attention", "proposal", "noisebg"])
def test_no_stage_reads_a_tensor_value_per_step(monkeypatch, tmp_path, method):
    two = _host_reads_per_epoch(monkeypatch, tmp_path, method, 2 * TINY["batch_size"])
    four = _host_reads_per_epoch(monkeypatch, tmp_path, method, 4 * TINY["batch_size"])
    assert list(two) == [stage.name for stage in METHOD_STAGES[method]]
    assert two == four  # the same reads (once per epoch) for twice the steps
