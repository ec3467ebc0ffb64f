"""``python -m bgbench.bench train``: each training stage's optimisation step against the
device's limit.

Per stage of a method: milliseconds per step, images/s, the floating-point work of one step
(forward and backward of every network the step runs, counted by
``torch.utils.flop_counter.FlopCounterMode``), the TFLOP/s that achieves, and its share of
the device's fp32 peak (a small table of known GPUs, or ``--peak-tflops``; on a CPU the peak
is unknown unless given). The steps are the trainer's: each stage's own step functions
(``bgbench.train.steps``) and optimizers (``Stage.optimizers``) on networks built by
``build_models``, channels_last, at the preset's batch size, on synthetic digit-like
images ``[1, 32, 32]`` kept on the device. What the epoch loop does around a step (drawing
the batch order, noise and clean share on the CPU) is not timed: this is the step's speed.
The stage-3 masks are the true masks of the images (a run computes its masks once, before
the stage). Exits 1 when a loss or a figure is not finite.
"""

from __future__ import annotations

import argparse
import math
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from bgbench.vocab import METHODS, PRESETS

if TYPE_CHECKING:
    import torch
    from torch import Tensor, nn

    from bgbench.train.config import TrainOptions
    from bgbench.train.stages import Stage

# fp32 peaks without tensor cores, TFLOP/s, by a substring of the CUDA device name (first
# match wins, so the PCIe H100 comes before the SXM one).
FP32_PEAK_TFLOPS: tuple[tuple[str, float], ...] = (
    ("H100 PCIe", 51.2),
    ("H200", 66.9),
    ("H100", 66.9),
    ("A100", 19.5),
    ("L40S", 91.6),
)
IMAGE_SHAPE = (1, 32, 32)
SEED = 0


@dataclass(frozen=True)
class StageFigures:
    """One stage's measured step: seconds per step, images per step, FLOPs per step and the
    loss of the last step."""

    stage: str
    seconds: float
    images: int
    flops: int
    loss: float

    @property
    def images_per_second(self) -> float:
        return self.images / self.seconds

    @property
    def tflops(self) -> float:
        return self.flops / self.seconds / 1e12

    def finite(self) -> bool:
        """Whether every figure and the loss are finite numbers."""
        return all(math.isfinite(v) for v in (self.seconds, self.images_per_second,
                                              self.tflops, self.loss))


def device_peak_tflops(device: torch.device, override: float | None) -> tuple[float | None, str]:
    """The fp32 peak to compare with and where it comes from: ``override`` if given, else the
    table's entry for this CUDA device; None (unknown) for a CPU or a GPU not in the table."""
    if override is not None:
        return override, "--peak-tflops"
    if device.type != "cuda":
        return None, "unknown for a CPU; pass --peak-tflops"
    import torch

    name = torch.cuda.get_device_name(device)
    for key, peak in FP32_PEAK_TFLOPS:
        if key in name:
            return peak, f"table: {key} fp32"
    return None, f"{name} is not in the table; pass --peak-tflops"


def stage_step(stage: Stage, models: dict[str, nn.Module], opts: TrainOptions,
               x: Tensor, y: Tensor) -> Callable[[], Tensor]:
    """One optimisation step of ``stage`` on the batch ``x, y`` as a no-argument call that
    returns the step's loss (on the device, not read back).

    Freezes every network, then builds the stage's optimizers as the trainer does (which
    unfreezes what the stage trains): the call is valid until another stage is prepared on
    the same ``models``.
    """
    import torch

    from bgbench.train import masks as masklib
    from bgbench.train.bg_mix import BackgroundMix, apply_mix, draw_mix
    from bgbench.train.intensity import draw_intensity
    from bgbench.train.stages import AdversarialStage, ClassifierStage, MaskStage
    from bgbench.train.steps import (
        adversarial_classifier_step,
        generator_step,
        mask_step,
        sample_background,
        uniforms,
    )

    for model in models.values():
        model.requires_grad_(False)
    optimizers = stage.optimizers(models, opts)
    trained = stage.trained(models).train()
    if isinstance(stage, ClassifierStage):  # also AG-CNN's global and local stages
        return lambda: stage.step(trained, optimizers[0], x, y)[0]
    if isinstance(stage, MaskStage):
        f = models["classifier"].eval()
        return lambda: mask_step(trained, f, optimizers[0], x, y, opts.area_limit,
                                 opts.area_weight, opts.tv_weight)[0]
    if not isinstance(stage, AdversarialStage):
        raise TypeError(f"no benchmark step for stage {stage.name!r} ({type(stage).__name__})")

    n, size, device = x.shape[0], x.shape[-1], x.device
    g = torch.Generator().manual_seed(SEED)
    m = masklib.true_mask(x)
    maps = draw_intensity(n, g, opts.intensity_share)
    if stage.backgrounds == "noise":
        noise = masklib.noise_backgrounds(n, opts.noise_kind, opts.noise_rate, g).to(device)
        return lambda: adversarial_classifier_step(trained, optimizers[0], x, y, m, noise,
                                                   maps)[0]

    fb = models["background_generator"]
    z = fb.sample_noise(n, g, device)
    u_classifier, u_generator = (None if u is None else u.to(device)
                                 for u in (uniforms(n, size, opts.bg_sample, g),
                                           uniforms(n, size, opts.bg_sample, g)))
    mix = draw_mix(n, size, g, opts.soft_share, opts.grey_share)
    mix = None if mix is None else BackgroundMix(mix.kind.to(device), mix.grey.to(device))

    def adversarial_pair() -> Tensor:
        with torch.no_grad():
            soft = fb(z)
        b = apply_mix(sample_background(soft, u_classifier), soft, mix)
        loss = adversarial_classifier_step(trained, optimizers[0], x, y, m, b, maps)[0]
        for _ in range(opts.gen_steps):
            generator_step(trained, fb, optimizers[1], x, y, m, z, u_generator, opts.bg_limit,
                           opts.bg_weight)
        return loss

    return adversarial_pair


def measure_stage(name: str, step: Callable[[], Tensor], images: int, device: torch.device,
                  steps: int, rounds: int, warmup: int) -> StageFigures:
    """Call ``step`` ``warmup`` times, count one call's FLOPs, then time ``rounds`` blocks of
    ``steps`` calls; the figure is the median block's seconds per step."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    for _ in range(warmup):  # optimizer state, kernel choices, allocator pools
        step()
    with FlopCounterMode(display=False) as counter:
        step()
    per_step = []
    loss = torch.zeros(())
    for _ in range(rounds):
        sync()
        start = time.perf_counter()
        for _ in range(steps):
            loss = step()
        sync()
        per_step.append((time.perf_counter() - start) / steps)
    return StageFigures(name, statistics.median(per_step), images, counter.get_total_flops(),
                        float(loss))


def training_setup(method: str, preset: str, device: torch.device
                   ) -> tuple[TrainOptions, dict[str, nn.Module], Tensor, Tensor]:
    """``preset``'s options, ``method``'s networks on ``device`` (seeded, channels_last, as
    the trainer builds them) and one synthetic batch ``x, y`` of the preset's size there."""
    import torch

    from bgbench.train.config import resolve
    from bgbench.train.data import synthetic
    from bgbench.train.stages import build_models

    opts = resolve(preset)
    torch.manual_seed(SEED)
    models = {k: m.to(device, memory_format=torch.channels_last)
              for k, m in build_models(method, opts).items()}
    x, y = synthetic(opts.batch_size, seed=SEED)
    return opts, models, x.to(device), y.to(device)


def bench_train(method: str, preset: str, device: torch.device, steps: int, rounds: int,
                warmup: int = 3) -> list[StageFigures]:
    """Every stage of ``method`` with ``preset``'s options, in the method's order."""
    from bgbench.train.stages import METHOD_STAGES

    opts, models, x, y = training_setup(method, preset, device)
    return [measure_stage(stage.name, stage_step(stage, models, opts, x, y), opts.batch_size,
                          device, steps, rounds, warmup)
            for stage in METHOD_STAGES[method]]


def print_table(figures: list[StageFigures], peak: float | None) -> None:
    """One line per stage: ms/step, images/s, GFLOP/step, TFLOP/s and the share of ``peak``."""
    print(f"  {'stage':<12} {'ms/step':>9} {'images/s':>10} {'GFLOP/step':>11} "
          f"{'TFLOP/s':>9} {'of peak':>8}")
    for f in figures:
        share = "unknown" if peak is None else f"{f.tflops / peak:.2%}"
        print(f"  {f.stage:<12} {f.seconds * 1e3:9.2f} {f.images_per_second:10.0f} "
              f"{f.flops / 1e9:11.2f} {f.tflops:9.4g} {share:>8}")


def main(argv: list[str] | None = None) -> int:
    """Run the training-step benchmark and print its table; returns 1 if a figure is not
    finite."""
    parser = argparse.ArgumentParser(prog="python -m bgbench.bench train",
                                     description=__doc__.split("\n\n")[0].replace("\n", " "))
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--method", choices=METHODS, default="proposal")
    parser.add_argument("--preset", choices=PRESETS, default="quick")
    parser.add_argument("--steps", type=_positive, default=20,
                        help="timed steps per round (default 20)")
    parser.add_argument("--rounds", type=_positive, default=3,
                        help="timed rounds per stage; the median round counts (default 3)")
    parser.add_argument("--warmup", type=_positive, default=3,
                        help="untimed steps per stage first (default 3)")
    parser.add_argument("--peak-tflops", type=float, default=None,
                        help="the device's fp32 peak in TFLOP/s (default: the known GPUs' "
                             "table; unknown on a CPU)")
    args = parser.parse_args(argv)

    import torch

    if args.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: no CUDA device is available (use --device cpu)")
    if args.peak_tflops is not None and not args.peak_tflops > 0:
        raise SystemExit(f"--peak-tflops must be a positive number, got {args.peak_tflops}")
    device = torch.device(args.device)
    peak, source = device_peak_tflops(device, args.peak_tflops)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    print(f"bgbench train benchmark: method {args.method}, preset {args.preset}, device "
          f"{name}, torch {torch.__version__}, {torch.get_num_threads()} CPU threads, "
          f"median of {args.rounds} rounds of {args.steps} steps after {args.warmup} warm-up "
          f"steps, float32" + (
              f" (TF32 convolutions {torch.backends.cudnn.allow_tf32}, TF32 matmuls "
              f"{torch.backends.cuda.matmul.allow_tf32}: TF32 runs on tensor cores, so the "
              "share of the fp32 peak can pass 100%)" if device.type == "cuda" else ""))
    print(f"  peak: {'unknown' if peak is None else f'{peak} TFLOP/s'} ({source})")
    figures = bench_train(args.method, args.preset, device, args.steps, args.rounds,
                          args.warmup)
    print_table(figures, peak)
    bad = [f.stage for f in figures if not f.finite()]
    if bad:
        print(f"not finite: {', '.join(bad)}")
    return 1 if bad else 0


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value
