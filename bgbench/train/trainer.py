"""The trainer: runs a method's stages epoch by epoch with checkpoints, metrics and progress.

Every epoch of a stage draws all its randomness (batch order, noise, clean share,
augmentation) from a generator seeded by (seed, stage, epoch), for the whole global batch,
which is then split across processes. So resuming from a checkpoint and running under
torchrun both give the same result as one uninterrupted process.
"""

from __future__ import annotations

import functools
import json
import math
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from bgbench import progress
from bgbench.errors import BgbenchError
from bgbench.fileio import append_line, write_json, write_stream
from bgbench.train.checkpoint import StageCheckpoint, StateDict, clone_state, load_state
from bgbench.train.data import Split
from bgbench.train.distributed import Context
from bgbench.train.meters import Meters
from bgbench.train.run_config import RunConfig
from bgbench.train.stage_context import StageContext
from bgbench.train.stages import METHOD_STAGES, Stage, build_models

CHECKPOINTS = "checkpoints"
METRICS = "metrics.jsonl"
# Steps between progress-bar postfix updates: each update reads the running metrics back
# from the device, which waits for every queued step.
POSTFIX_EVERY = 50
DONE = "done.json"
# The file each network's final weights go to.
WEIGHT_FILES = {"classifier": "classifier.pt", "mask_generator": "mask_generator.pt",
                "background_generator": "background_generator.pt"}


def _epoch_generator(seed: int, stage_index: int, epoch: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed * 1_000_003 + stage_index * 10_007 + epoch)


class Progress(progress.Progress):
    """A tqdm bar per epoch on a terminal; otherwise (or with ``quiet``) one line per epoch."""

    def __init__(self, enabled: bool, quiet: bool) -> None:
        super().__init__(enabled=enabled, bars=not quiet)

    def iterate(self, batches: list[Tensor], desc: str) -> Iterator[Tensor]:
        """Yield an epoch's batches, with a bar (cleared at the end) where bars are drawn."""
        return self.loop(batches, desc, leave=False)

    def postfix(self, meters: Meters, **shown: str) -> None:
        """Show the running means of ``meters`` on the bar (``shown``: label to metric name),
        on the first step and every ``POSTFIX_EVERY`` after it; without a bar, never (each
        read waits for the device)."""
        if not self.bar or self._tqdm.n % POSTFIX_EVERY:
            return
        running = meters.running()
        self._tqdm.set_postfix({label: f"{running[name]:.3g}" for label, name in shown.items()},
                               refresh=False)

    def log(self, message: str) -> None:
        """One line on stderr (the main process only)."""
        self.line(message)


class Trainer:
    """Runs the stages of one run's method into its run directory; each stage's epochs and
    validation get the run's ``StageContext`` (``context``)."""

    def __init__(self, config: RunConfig, out: Path, data: Split, ctx: Context,
                 quiet: bool = False) -> None:
        self.config = config
        self.opts = config.options
        self.stages: tuple[Stage, ...] = METHOD_STAGES[config.method]
        self.out = Path(out)
        self.ctx = ctx
        self.data = data.to(ctx.device)
        self.progress = Progress(ctx.is_main, quiet)
        torch.manual_seed(config.seed)
        # channels_last makes the CPU (oneDNN) convolutions about 1.4x faster here; weights
        # are saved contiguous (clone_state), so checkpoints load whatever the layout.
        self.models = {k: m.to(ctx.device, memory_format=torch.channels_last)
                       for k, m in build_models(config.method, self.opts).items()}
        self.context = StageContext(self.data, self.models, self.opts, ctx, self.progress,
                                    config.dataset)
        self.summary: dict[str, Any] = {}

    # -- the run ---------------------------------------------------------------------------

    def run(self) -> dict[str, Any]:
        """Run (or finish) every stage; write the final weights and ``done.json``."""
        start = time.time()
        for index, stage in enumerate(self.stages):
            self._run_stage(index, stage)
        done = {"method": self.config.method, "dataset": self.config.dataset,
                "stages": self.summary,
                "val_accuracy": self.context.accuracy(self.models["classifier"],
                                                      self.data.x_val, self.data.y_val),
                "train_seconds": round(self._metric_seconds(), 2),
                "last_session_seconds": round(time.time() - start, 2),
                "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
        if self.ctx.is_main:
            for name, model in self.models.items():
                write_stream(self.out / WEIGHT_FILES[name],
                             functools.partial(torch.save, clone_state(model)))
            write_json(self.out / DONE, done)
        self.ctx.barrier()
        return done

    def _metric_seconds(self) -> float:
        path = self.out / METRICS
        if not path.exists():
            return 0.0
        # Validation time is recorded since stage 3 could search its epochs; older lines
        # count their training time only.
        lines = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        return sum(line["seconds"] + line.get("val_seconds", 0.0) for line in lines)

    def _run_stage(self, index: int, stage: Stage) -> None:
        path = self.out / CHECKPOINTS / f"{stage.name}.pt"
        names = stage.modules(self.models)
        saved = StageCheckpoint.load(path) if path.exists() else None
        if saved is not None and saved.stage != stage.name:
            raise BgbenchError(f"checkpoint {path} belongs to stage {saved.stage!r}; "
                               "start the run over")
        if saved is not None and saved.complete:
            for name in names:
                load_state(self.models[name], saved.best_modules[name], path)
            self.summary[stage.name] = saved.summary
            return

        epochs = getattr(self.opts, stage.epochs_option)
        averaged = stage.averaged(self.opts)
        first_averaged = epochs - self.opts.average_epochs  # epochs after it are averaged
        for model in self.models.values():
            model.requires_grad_(False)
        optimizers = stage.optimizers(self.models, self.opts)
        trained = self.ctx.wrap(stage.trained(self.models))
        ckpt = StageCheckpoint(stage.name, 0, False, {}, [], -math.inf, 0, {}, {})
        if saved is not None:
            for name in names:
                load_state(self.models[name], saved.modules[name], path)
            for opt, opt_state in zip(optimizers, saved.optimizers, strict=True):
                opt.load_state_dict(opt_state)
            ckpt = saved
            self.progress.log(f"{stage.name}: resuming after epoch {ckpt.epochs_done}/{epochs}")

        for epoch in range(ckpt.epochs_done, epochs):
            generator = _epoch_generator(self.config.seed, index, epoch)
            t0 = time.time()
            train_metrics = stage.epoch(self.context, trained, optimizers, generator,
                                        f"{stage.name} {epoch + 1}/{epochs}")
            seconds = time.time() - t0
            images = train_metrics.pop("images")
            t1 = time.time()
            score, val_metrics = stage.validate(self.context, epoch + 1)
            val_seconds = time.time() - t1
            if score is not None and score > ckpt.best_score:
                ckpt.best_score, ckpt.best_epoch = score, epoch + 1
                ckpt.best_modules = self._clone(names)
                ckpt.best_metrics = val_metrics
            line = {"stage": stage.name, "epoch": epoch + 1, **train_metrics, **val_metrics,
                    "score": score, "seconds": round(seconds, 3),
                    "val_seconds": round(val_seconds, 3),
                    "images_per_second": round(images / seconds, 1)}
            self.progress.log(f"{stage.name} epoch {epoch + 1}/{epochs}: " + ", ".join(
                f"{k} {v:.4g}" for k, v in line.items()
                if isinstance(v, float) and k not in ("seconds", "val_seconds"))
                + f", {seconds:.1f}s (validation {val_seconds:.1f}s)")
            ckpt.epochs_done = epoch + 1
            if averaged and epoch >= first_averaged:
                ckpt.add_to_average(self._clone(averaged))
            if self.ctx.is_main:
                self._append_metrics(line)
                self._save_progress(path, ckpt, names, optimizers)
            self.ctx.barrier()

        if averaged:
            self._keep_average(stage, ckpt, names, averaged, epochs, path)
        if not ckpt.best_modules:
            raise BgbenchError(f"stage {stage.name} never reached a finite validation score "
                               "(the loss diverged); lower its learning rate")
        for name in names:
            load_state(self.models[name], ckpt.best_modules[name], path)
        self.summary[stage.name] = ckpt.summary
        ckpt.epochs_done, ckpt.complete = epochs, True
        if self.ctx.is_main:
            self._save_progress(path, ckpt, names, optimizers)
        self.ctx.barrier()

    def _keep_average(self, stage: Stage, ckpt: StageCheckpoint, names: tuple[str, ...],
                      averaged: tuple[str, ...], epochs: int, path: Path) -> None:
        """Keep the averaged networks (the others as the last epoch left them), validated."""
        for name in averaged:
            load_state(self.models[name], ckpt.average[name], path)
        score, metrics = stage.validate(self.context, epochs)
        ckpt.best_score, ckpt.best_epoch, ckpt.best_metrics = score, epochs, metrics
        ckpt.best_modules = self._clone(names)
        self.progress.log(f"{stage.name}: the mean of the last {ckpt.averaged} epochs' "
                          f"{', '.join(averaged)}: " + ", ".join(
                              f"{k} {v:.4g}" for k, v in metrics.items()))

    def _clone(self, names: tuple[str, ...]) -> dict[str, StateDict]:
        return {n: clone_state(self.models[n]) for n in names}

    def _save_progress(self, path: Path, ckpt: StageCheckpoint, names: tuple[str, ...],
                       optimizers: list[torch.optim.Optimizer]) -> None:
        """Save ``ckpt`` with the stage's networks and optimizers as they are now."""
        ckpt.modules = self._clone(names)
        ckpt.optimizers = [opt.state_dict() for opt in optimizers]
        ckpt.save(path)

    def _append_metrics(self, line: dict[str, Any]) -> None:
        append_line(self.out / METRICS, json.dumps(line))
