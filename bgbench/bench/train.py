"""``python -m bgbench.bench train``: each training stage's optimisation step against the
device's limit.

Per stage of a method: milliseconds per step, images/s, the floating-point work of one step
(forward and backward of every network the step runs, counted by
``torch.utils.flop_counter.FlopCounterMode``), the TFLOP/s that achieves, and its share of
the device's peak (for fp32, a small table of known GPUs; otherwise, and on a CPU, unknown
unless given with ``--peak-tflops``). The steps are the trainer's: each stage's own
``train_step`` (``bgbench.train.steps``) and optimizers (``Stage.optimizers``) on networks
built by ``build_models``, channels_last, in ``--precision``, at the preset's batch size, on
synthetic digit-like images ``[1, 32, 32]`` kept on the device. With ``--baseline`` the
same steps from the same initial weights also run in float32 with NCHW networks (neither
channels-last nor bf16), in rounds interleaved with the configured ones so both see the
same load, and each stage gets a ``speedup`` line: the median over rounds of the baseline's
time over the configured one's in the same round; on a CPU the speedups are checked against
``CPU_TARGETS``. What the epoch loop does around a step (``Stage.draw``: the batch order,
noise, clean share and sampling uniforms, drawn on the CPU) is not timed: this is the step's
speed. The stage-3 masks are the stage's own, computed once before timing as a run computes
them before the stage (learned masks come from the untrained mask generator). Exits 1 when
a loss or a figure is not finite, or a checked speedup misses its target.
"""

from __future__ import annotations

import argparse
import math
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from bgbench.bench._common import check_targets
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
# The minimum speedup over the float32 NCHW step, per precision, on a CPU.
CPU_TARGETS = {"fp32": 1.2, "bf16": 2.0}


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


def device_peak_tflops(device: torch.device, override: float | None, precision: str = "fp32",
                       flag: str = "--peak-tflops") -> tuple[float | None, str]:
    """The peak of ``precision`` to compare with and where it comes from: ``override`` if
    given, else for fp32 the table's entry for this CUDA device; None (unknown) for a CPU, a
    GPU not in the table, or bf16 (pass its peak as ``flag``)."""
    if override is not None:
        return override, flag
    if device.type != "cuda":
        return None, f"unknown for a CPU; pass {flag}"
    if precision != "fp32":
        return None, f"no {precision} table; pass {flag}"
    import torch

    name = torch.cuda.get_device_name(device)
    for key, peak in FP32_PEAK_TFLOPS:
        if key in name:
            return peak, f"table: {key} fp32"
    return None, f"{name} is not in the table; pass {flag}"


def stage_step(stage: Stage, models: dict[str, nn.Module], opts: TrainOptions,
               x: Tensor, y: Tensor) -> Callable[[], Tensor]:
    """One optimisation step of ``stage`` on the batch ``x, y`` as a no-argument call that
    returns the step's loss (on the device, not read back).

    Freezes every network, then builds the stage's optimizers as the trainer does (which
    unfreezes what the stage trains), and a ``StageContext`` whose training split is the
    batch; the batch's draws (``stage.draw``, seeded by ``SEED``) are made once, and the call
    is the stage's own ``train_step``. Valid until another stage is prepared on the same
    ``models``. Runs in ``opts.precision``.
    """
    import torch

    from bgbench.train.data import Split
    from bgbench.train.distributed import Context
    from bgbench.train.stage_context import StageContext
    from bgbench.train.trainer import Progress

    for model in models.values():
        model.requires_grad_(False)
    optimizers = stage.optimizers(models, opts)
    trained = stage.trained(models)
    context = StageContext(Split(x, y, x, y), models, opts, Context(device=x.device),
                           Progress(enabled=False, quiet=True), "synthetic")
    stage.train_mode(context, trained)
    batch = stage.draw(context, torch.arange(x.shape[0]), torch.Generator().manual_seed(SEED))
    return lambda: stage.train_step(context, trained, optimizers, batch)[0]


def measure_stage(name: str, step: Callable[[], Tensor], images: int, device: torch.device,
                  steps: int, rounds: int, warmup: int) -> StageFigures:
    """Call ``step`` ``warmup`` times, count one call's FLOPs, then time ``rounds`` blocks of
    ``steps`` calls; the figure is the median block's seconds per step."""
    figures, _ = measure_interleaved(name, [step], images, device, steps, rounds, warmup)
    return figures[0]


def measure_interleaved(name: str, candidates: list[Callable[[], Tensor]], images: int,
                        device: torch.device, steps: int, rounds: int, warmup: int
                        ) -> tuple[list[StageFigures], list[list[float]]]:
    """``measure_stage`` for several steps at once, their blocks alternating within each
    round (so on a shared machine every candidate sees the same load); also returns each
    candidate's seconds per step in every round."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    flops = []
    for step in candidates:
        for _ in range(warmup):  # optimizer state, kernel choices, allocator pools
            step()
        with FlopCounterMode(display=False) as counter:
            step()
        flops.append(counter.get_total_flops())
    per_step: list[list[float]] = [[] for _ in candidates]
    losses = [torch.zeros(()) for _ in candidates]
    for _ in range(rounds):
        for i, step in enumerate(candidates):
            sync()
            start = time.perf_counter()
            for _ in range(steps):
                losses[i] = step()
            sync()
            per_step[i].append((time.perf_counter() - start) / steps)
    figures = [StageFigures(name, statistics.median(t), images, f, float(loss))
               for t, f, loss in zip(per_step, flops, losses, strict=True)]
    return figures, per_step


def training_setup(method: str, preset: str, device: torch.device, precision: str = "fp32",
                   channels_last: bool = True, overrides: dict[str, Any] | None = None
                   ) -> tuple[TrainOptions, dict[str, nn.Module], Tensor, Tensor]:
    """``preset``'s options in ``precision`` (and ``overrides``), ``method``'s networks on
    ``device`` (seeded, channels_last as the trainer builds them, or NCHW) and one synthetic
    batch ``x, y`` of the preset's size there."""
    import torch

    from bgbench.train.config import resolve
    from bgbench.train.data import synthetic
    from bgbench.train.stages import build_models

    opts = resolve(preset, {**(overrides or {}), "precision": precision})
    torch.manual_seed(SEED)
    layout = torch.channels_last if channels_last else torch.contiguous_format
    models = {k: m.to(device, memory_format=layout)
              for k, m in build_models(method, opts).items()}
    x, y = synthetic(opts.batch_size, seed=SEED)
    return opts, models, x.to(device).contiguous(memory_format=layout), y.to(device)


@dataclass(frozen=True)
class StageComparison:
    """One stage's step as configured and as the float32 NCHW baseline, and the speedup: the
    median over rounds of the baseline's seconds over the configured step's in that round."""

    configured: StageFigures
    baseline: StageFigures
    speedup: float


def bench_train(method: str, preset: str, device: torch.device, steps: int, rounds: int,
                warmup: int = 3, precision: str = "fp32") -> list[StageFigures]:
    """Every stage of ``method`` with ``preset``'s options in ``precision``, in the method's
    order."""
    from bgbench.train.stages import METHOD_STAGES

    opts, models, x, y = training_setup(method, preset, device, precision)
    return [measure_stage(stage.name, stage_step(stage, models, opts, x, y), opts.batch_size,
                          device, steps, rounds, warmup)
            for stage in METHOD_STAGES[method]]


def bench_train_baseline(method: str, preset: str, device: torch.device, steps: int,
                         rounds: int, warmup: int = 3, precision: str = "fp32",
                         overrides: dict[str, Any] | None = None
                         ) -> list[StageComparison]:
    """``bench_train`` beside a baseline step of every stage, from the same initial weights
    and batch, timed in interleaved rounds: without ``overrides``, the float32 NCHW step;
    with them, the configured step takes them and the baseline is the preset's own step."""
    from bgbench.train.stages import METHOD_STAGES

    opts, models, x, y = training_setup(method, preset, device, precision, overrides=overrides)
    if overrides:
        base = training_setup(method, preset, device, precision)
    else:
        base = training_setup(method, preset, device, "fp32", channels_last=False)
    base_opts, base_models, base_x, base_y = base
    out = []
    for stage in METHOD_STAGES[method]:
        (configured, baseline), (times, base_times) = measure_interleaved(
            stage.name, [stage_step(stage, models, opts, x, y),
                         stage_step(stage, base_models, base_opts, base_x, base_y)],
            opts.batch_size, device, steps, rounds, warmup)
        speedup = statistics.median(b / t for b, t in zip(base_times, times, strict=True))
        out.append(StageComparison(configured, baseline, speedup))
    return out


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
    finite or, with ``--baseline`` on a CPU, a speedup misses its target."""
    from bgbench.train.config import PRECISIONS

    parser = argparse.ArgumentParser(prog="python -m bgbench.bench train",
                                     description=__doc__.split("\n\n")[0].replace("\n", " "))
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--method", choices=METHODS, default="proposal")
    parser.add_argument("--preset", choices=PRESETS, default="quick")
    parser.add_argument("--precision", choices=PRECISIONS, default="fp32",
                        help="the configured step's precision (default fp32)")
    parser.add_argument("--baseline", action="store_true",
                        help="also time each step in float32 with NCHW networks, interleaved, "
                             "and print the speedup over it")
    parser.add_argument("--set", action="append", default=[], metavar="OPTION=VALUE",
                        help="time the preset with this training option changed, beside the "
                             "preset as it is, and print the slowdown (repeatable; e.g. "
                             "--set family_share=0.3)")
    parser.add_argument("--steps", type=_positive, default=20,
                        help="timed steps per round (default 20)")
    parser.add_argument("--rounds", type=_positive, default=3,
                        help="timed rounds per stage; the median round counts (default 3)")
    parser.add_argument("--warmup", type=_positive, default=3,
                        help="untimed steps per stage first (default 3)")
    parser.add_argument("--threads", type=_positive, default=None,
                        help="CPU threads (default: torch's, the cores available); on a "
                             "machine shared with other work, fewer threads than cores avoid "
                             "waiting on a descheduled thread at every parallel region")
    parser.add_argument("--peak-tflops", type=float, default=None,
                        help="the device's peak in TFLOP/s at --precision (default: for fp32 "
                             "the known GPUs' table; unknown on a CPU)")
    parser.add_argument("--baseline-peak-tflops", type=float, default=None,
                        help="the device's fp32 peak for the baseline's share (default: "
                             "--peak-tflops when --precision is fp32, else as --peak-tflops)")
    args = parser.parse_args(argv)

    import torch

    from bgbench.errors import ParameterError
    from bgbench.train.precision import check_precision

    if args.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: no CUDA device is available (use --device cpu)")
    for flag, value in (("--peak-tflops", args.peak_tflops),
                        ("--baseline-peak-tflops", args.baseline_peak_tflops)):
        if value is not None and not value > 0:
            raise SystemExit(f"{flag} must be a positive number, got {value}")
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    try:
        check_precision(args.precision, device)
    except ParameterError as err:
        raise SystemExit(str(err.for_command_line())) from None
    peak, source = device_peak_tflops(device, args.peak_tflops, args.precision)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    print(f"bgbench train benchmark: method {args.method}, preset {args.preset}, device "
          f"{name}, torch {torch.__version__}, {torch.get_num_threads()} CPU threads, "
          f"median of {args.rounds} rounds of {args.steps} steps after {args.warmup} warm-up "
          f"steps, {_describe(args.precision)}" + (
              f" (TF32 convolutions {torch.backends.cudnn.allow_tf32}, TF32 matmuls "
              f"{torch.backends.cuda.matmul.allow_tf32}: TF32 runs on tensor cores, so the "
              "share of the fp32 peak can pass 100%)" if device.type == "cuda" else ""))
    print(f"  peak: {'unknown' if peak is None else f'{peak} TFLOP/s'} ({source})")
    if args.set:
        return _compare_options(args, device, peak)
    if not args.baseline:
        figures = bench_train(args.method, args.preset, device, args.steps, args.rounds,
                              args.warmup, args.precision)
        print_table(figures, peak)
        return _report_not_finite(figures)

    base_given = (args.baseline_peak_tflops if args.baseline_peak_tflops is not None
                  else args.peak_tflops if args.precision == "fp32" else None)
    base_peak, base_source = device_peak_tflops(device, base_given, "fp32",
                                                "--baseline-peak-tflops")
    compared = bench_train_baseline(args.method, args.preset, device, args.steps, args.rounds,
                                    args.warmup, args.precision)
    figures = [c.configured for c in compared]
    print_table(figures, peak)
    print(f"baseline: float32, NCHW networks (peak: "
          f"{'unknown' if base_peak is None else f'{base_peak} TFLOP/s'} ({base_source}))")
    print_table([c.baseline for c in compared], base_peak)
    for c in compared:
        print(f"  {c.configured.stage:<12} speedup {c.speedup:5.2f}x over float32 NCHW "
              f"({c.baseline.seconds * 1e3:.2f} -> {c.configured.seconds * 1e3:.2f} ms/step; "
              f"median of {args.rounds} interleaved rounds)")
    missed = 0
    if device.type == "cpu":
        want = CPU_TARGETS[args.precision]
        missed = check_targets({f"{c.configured.stage} speedup ({args.precision})": c.speedup
                                for c in compared},
                               {f"{c.configured.stage} speedup ({args.precision})": want
                                for c in compared})
    return max(_report_not_finite(figures + [c.baseline for c in compared]), int(missed > 0))


def _describe(precision: str) -> str:
    return {"fp32": "float32", "bf16": "bfloat16 autocast (float32 weights and losses)"
            }[precision] + ", channels_last networks"


def _report_not_finite(figures: list[StageFigures]) -> int:
    bad = sorted({f.stage for f in figures if not f.finite()})
    if bad:
        print(f"not finite: {', '.join(bad)}")
    return 1 if bad else 0


def _parse_set(items: list[str]) -> dict[str, Any]:
    """``--set NAME=VALUE`` items as training-option overrides, typed as the options are."""
    import dataclasses

    from bgbench.train.config import TrainOptions

    types = {f.name: {"int": int, "float": float, "str": str}[f.type]
             for f in dataclasses.fields(TrainOptions)}
    out: dict[str, Any] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or name not in types:
            raise SystemExit(f"--set {item!r}: give OPTION=VALUE with a training option "
                             f"({', '.join(sorted(types))})")
        try:
            out[name] = types[name](value)
        except ValueError:
            raise SystemExit(f"--set {item!r}: {name} takes a {types[name].__name__}") from None
    return out


def _compare_options(args: argparse.Namespace, device: torch.device, peak: float | None) -> int:
    """``--set``: the preset's steps with and without the overrides, interleaved, and the
    slowdown of each stage."""
    from bgbench.errors import ParameterError

    if args.baseline:
        raise SystemExit("--set and --baseline compare against different steps; give one")
    overrides = _parse_set(args.set)
    try:
        compared = bench_train_baseline(args.method, args.preset, device, args.steps,
                                        args.rounds, args.warmup, args.precision, overrides)
    except ParameterError as err:
        raise SystemExit(f"--set: {err}") from None
    changed = ", ".join(f"{k}={v}" for k, v in overrides.items())
    print(f"with {changed}:")
    print_table([c.configured for c in compared], peak)
    print(f"the preset {args.preset} as it is:")
    print_table([c.baseline for c in compared], peak)
    for c in compared:
        print(f"  {c.configured.stage:<12} slowdown {1 / c.speedup:5.2f}x from {changed} "
              f"({c.baseline.seconds * 1e3:.2f} -> {c.configured.seconds * 1e3:.2f} ms/step; "
              f"median of {args.rounds} interleaved rounds)")
    return _report_not_finite([c.configured for c in compared])


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value
