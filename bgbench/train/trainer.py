"""The stages of every method, run epoch by epoch with checkpoints, metrics and progress.

Stages (``config.STAGES`` says which a method runs):

- ``classifier``: stage 1, the classifier f on clean images (cross-entropy).
- ``mask``: stage 2, the mask generator f_m with f frozen: ``CE(f(x*m)) + w_A L_A + w_TV TV``.
- ``adversarial``: stage 3, f on composites ``m*x + (1-m)*b`` alternating with steps of the
  background generator f_b maximising ``CE - w_BA L_BA`` (or noise backgrounds for
  ``noisebg``); the mask is ``T(f_m(x))`` (optionally dilated) or, for ``truemask``, the
  dilated foreground. With ``bg_sample`` other than ``none`` the classifier sees binary
  backgrounds drawn with f_b's output as probabilities (per pixel or per block).
- ``global`` / ``local``: AG-CNN's global branch, then its local branch and fusion head.

Every epoch of a stage draws all its randomness (batch order, noise, clean share,
augmentation) from a generator seeded by (seed, stage, epoch), for the whole global batch,
which is then split across processes. So resuming from a checkpoint and running under
torchrun both give the same result as one uninterrupted process.
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from bgbench.errors import BgbenchError
from bgbench.fileio import atomic_path, write_json
from bgbench.models import AGCNN, MaskUNet, TiledBackgroundGenerator, VGGClassifier
from bgbench.ops import composite
from bgbench.train import masks as masklib
from bgbench.train.config import STAGES
from bgbench.train.data import Split, batch_order, shift, shift_offsets
from bgbench.train.distributed import Context
from bgbench.train.steps import (
    adversarial_classifier_step,
    classifier_step,
    generator_step,
    mask_loss,
    mask_step,
    sample_background,
    uniforms,
)

EVAL_BATCH = 1000
VALIDATION_NOISE_SEED = 20240607
CHECKPOINTS = "checkpoints"
METRICS = "metrics.jsonl"
DONE = "done.json"
CLASSIFIER_FILE = "classifier.pt"
MASK_FILE = "mask_generator.pt"
BACKGROUND_FILE = "background_generator.pt"


def build_models(config: dict[str, Any]) -> dict[str, nn.Module]:
    """The networks a run's method uses, by name: ``classifier`` always, ``mask_generator``
    and ``background_generator`` where the method has them."""
    opts, method = config["options"], config["method"]
    models: dict[str, nn.Module] = {}
    if method == "attention":
        models["classifier"] = AGCNN(opts["attention_threshold"], opts["cc_iterations"])
    else:
        models["classifier"] = VGGClassifier()
    if "mask" in STAGES[method]:
        models["mask_generator"] = MaskUNet(opts["unet_width"])
    if method in ("proposal", "truemask"):
        models["background_generator"] = TiledBackgroundGenerator(opts["gen_width"])
    return models


def load_checkpoint(path: Path) -> dict[str, Any]:
    """Read a checkpoint with ``weights_only=True``; a broken file is a clear error."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise BgbenchError(f"checkpoint {path} is corrupt or unreadable ({type(err).__name__}); "
                           "delete it or rerun with --force") from None


def load_state(module: nn.Module, state: dict[str, Tensor], path: Path) -> None:
    """``module.load_state_dict(state)`` with a mismatch reported as an error naming ``path``."""
    try:
        module.load_state_dict(state)
    except (RuntimeError, KeyError, TypeError) as err:
        first = str(err).strip().splitlines()[0]
        raise BgbenchError(f"{path} does not match the model its config.json describes "
                           f"({first}); rerun with --force") from None


def _clone(module: nn.Module) -> dict[str, Tensor]:
    return {k: v.detach().to("cpu", copy=True).contiguous()
            for k, v in module.state_dict().items()}


def _epoch_generator(seed: int, stage_index: int, epoch: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed * 1_000_003 + stage_index * 10_007 + epoch)


class _Branches(nn.Module):
    """Exposes AG-CNN's three logits through ``forward`` so DDP can wrap the local stage."""

    def __init__(self, model: AGCNN) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        return self.model.branches(x)


class Progress:
    """A tqdm bar per epoch on a terminal; otherwise (or with ``quiet``) one line per epoch."""

    def __init__(self, enabled: bool, quiet: bool) -> None:
        self.enabled = enabled
        self.bar = enabled and not quiet and sys.stderr.isatty()

    def iterate(self, batches: list[Tensor], desc: str) -> Iterator[Tensor]:
        if not self.bar:
            yield from batches
            return
        from tqdm import tqdm

        self._tqdm = tqdm(total=len(batches), desc=desc, leave=False, file=sys.stderr,
                          dynamic_ncols=True)
        try:
            for batch in batches:
                yield batch
                self._tqdm.update(1)
        finally:
            self._tqdm.close()

    def postfix(self, **values: float) -> None:
        if self.bar:
            self._tqdm.set_postfix({k: f"{v:.3g}" for k, v in values.items()}, refresh=False)

    def log(self, message: str) -> None:
        if self.enabled:
            print(message, file=sys.stderr, flush=True)


class Trainer:
    """Runs the stages of one run's method into its run directory."""

    def __init__(self, config: dict[str, Any], out: Path, data: Split, ctx: Context,
                 quiet: bool = False) -> None:
        self.config = config
        self.opts = config["options"]
        self.method = config["method"]
        self.out = Path(out)
        self.ctx = ctx
        self.data = data.to(ctx.device)
        self.progress = Progress(ctx.is_main, quiet)
        torch.manual_seed(config["seed"])
        # channels_last makes the CPU (oneDNN) convolutions about 1.4x faster here.
        self.models = {k: m.to(ctx.device, memory_format=torch.channels_last)
                       for k, m in build_models(config).items()}
        self.stage_masks: tuple[Tensor, Tensor] | None = None
        self.summary: dict[str, Any] = {}

    # -- the run ---------------------------------------------------------------------------

    def run(self) -> dict[str, Any]:
        """Run (or finish) every stage; write the final weights and ``done.json``."""
        start = time.time()
        for index, stage in enumerate(STAGES[self.method]):
            self._run_stage(index, stage)
        done = {"method": self.method, "dataset": self.config["dataset"],
                "stages": self.summary,
                "val_accuracy": self._accuracy(self.models["classifier"], self.data.x_val,
                                               self.data.y_val),
                "train_seconds": round(self._metric_seconds(), 2),
                "last_session_seconds": round(time.time() - start, 2),
                "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
        if self.ctx.is_main:
            files = {"classifier": CLASSIFIER_FILE, "mask_generator": MASK_FILE,
                     "background_generator": BACKGROUND_FILE}
            for name, model in self.models.items():
                with atomic_path(self.out / files[name]) as tmp:
                    torch.save(_clone(model), tmp)
            write_json(self.out / DONE, done)
        self.ctx.barrier()
        return done

    def _metric_seconds(self) -> float:
        path = self.out / METRICS
        if not path.exists():
            return 0.0
        return sum(json.loads(line)["seconds"] for line in path.read_text().splitlines()
                   if line.strip())

    def _run_stage(self, index: int, stage: str) -> None:
        path = self.out / CHECKPOINTS / f"{stage}.pt"
        names = self._stage_modules(stage)
        state = load_checkpoint(path) if path.exists() else None
        if state is not None and state.get("stage") != stage:
            raise BgbenchError(f"checkpoint {path} belongs to stage {state.get('stage')!r}; "
                               "rerun with --force")
        if state is not None and state["complete"]:
            for name in names:
                load_state(self.models[name], state["best_modules"][name], path)
            self.summary[stage] = state["summary"]
            return

        epochs = self._stage_epochs(stage)
        optimizers, step, validate = self._setup(stage)
        start, best_score, best_epoch = 0, -math.inf, 0
        best_modules: dict[str, dict[str, Tensor]] = {}
        best_metrics: dict[str, float] = {}
        if state is not None:
            for name in names:
                load_state(self.models[name], state["modules"][name], path)
            for opt, opt_state in zip(optimizers, state["optimizers"], strict=True):
                opt.load_state_dict(opt_state)
            start, best_score = state["epochs_done"], state["best_score"]
            best_epoch, best_modules = state["best_epoch"], state["best_modules"]
            best_metrics = state["best_metrics"]
            self.progress.log(f"{stage}: resuming after epoch {start}/{epochs}")

        for epoch in range(start, epochs):
            generator = _epoch_generator(self.config["seed"], index, epoch)
            t0 = time.time()
            train_metrics = step(generator, f"{stage} {epoch + 1}/{epochs}")
            seconds = time.time() - t0
            images = train_metrics.pop("images")
            score, val_metrics = validate()
            if score > best_score:
                best_score, best_epoch = score, epoch + 1
                best_modules = {n: _clone(self.models[n]) for n in names}
                best_metrics = val_metrics
            line = {"stage": stage, "epoch": epoch + 1, **train_metrics, **val_metrics,
                    "score": score, "seconds": round(seconds, 3),
                    "images_per_second": round(images / seconds, 1)}
            self.progress.log(f"{stage} epoch {epoch + 1}/{epochs}: " + ", ".join(
                f"{k} {v:.4g}" for k, v in line.items()
                if isinstance(v, float) and k != "seconds") + f", {seconds:.1f}s")
            if self.ctx.is_main:
                self._append_metrics(line)
                self._save(path, stage, names, optimizers, epoch + 1, False, best_score,
                           best_epoch, best_modules, best_metrics)
            self.ctx.barrier()

        if not best_modules:
            raise BgbenchError(f"stage {stage} never reached a finite validation score (the "
                               "loss diverged); lower its learning rate")
        for name in names:
            load_state(self.models[name], best_modules[name], path)
        self.summary[stage] = {"best_epoch": best_epoch, "best_score": best_score,
                               **best_metrics}
        if self.ctx.is_main:
            self._save(path, stage, names, optimizers, epochs, True, best_score, best_epoch,
                       best_modules, best_metrics)
        self.ctx.barrier()

    def _save(self, path: Path, stage: str, names: list[str], optimizers: list, epochs_done: int,
              complete: bool, best_score: float, best_epoch: int,
              best_modules: dict[str, dict[str, Tensor]], best_metrics: dict[str, float]) -> None:
        state = {"stage": stage, "epochs_done": epochs_done, "complete": complete,
                 "modules": {n: _clone(self.models[n]) for n in names},
                 "optimizers": [opt.state_dict() for opt in optimizers],
                 "best_score": best_score, "best_epoch": best_epoch,
                 "best_modules": best_modules, "best_metrics": best_metrics,
                 "summary": {"best_epoch": best_epoch, "best_score": best_score,
                             **best_metrics}}
        with atomic_path(path) as tmp:
            torch.save(state, tmp)

    def _append_metrics(self, line: dict[str, Any]) -> None:
        with open(self.out / METRICS, "a", encoding="utf-8") as f:
            f.write(json.dumps(line) + "\n")
            f.flush()
            os.fsync(f.fileno())

    def _stage_modules(self, stage: str) -> list[str]:
        if stage == "mask":
            return ["mask_generator"]
        if stage == "adversarial" and "background_generator" in self.models:
            return ["classifier", "background_generator"]
        return ["classifier"]

    def _stage_epochs(self, stage: str) -> int:
        key = {"classifier": "epochs", "global": "epochs", "mask": "mask_epochs",
               "adversarial": "adv_epochs", "local": "local_epochs"}[stage]
        return self.opts[key]

    def _setup(self, stage: str) -> tuple[list[torch.optim.Optimizer],
                                          Callable[[torch.Generator, str], dict[str, float]],
                                          Callable[[], tuple[float, dict[str, float]]]]:
        f = self.models["classifier"]
        for model in self.models.values():
            model.requires_grad_(False)
        if stage == "classifier":
            f.requires_grad_(True)
            opt = torch.optim.Adam(f.parameters(), lr=self.opts["lr"])
            wrapped = self.ctx.wrap(f)
            return [opt], lambda g, d: self._epoch_supervised(wrapped, opt, g, d), \
                lambda: self._validate_clean(f)
        if stage == "global":
            assert isinstance(f, AGCNN)
            f.global_branch.requires_grad_(True)
            opt = torch.optim.Adam(f.global_branch.parameters(), lr=self.opts["lr"])
            wrapped = self.ctx.wrap(f.global_branch)
            return [opt], lambda g, d: self._epoch_supervised(wrapped, opt, g, d), \
                lambda: self._validate_clean(f.global_branch)
        if stage == "local":
            assert isinstance(f, AGCNN)
            f.local_branch.requires_grad_(True)
            f.fusion.requires_grad_(True)
            params = [*f.local_branch.parameters(), *f.fusion.parameters()]
            opt = torch.optim.Adam(params, lr=self.opts["lr"])
            wrapped = self.ctx.wrap(_Branches(f))
            return [opt], lambda g, d: self._epoch_supervised(wrapped, opt, g, d, True), \
                lambda: self._validate_clean(f)
        if stage == "mask":
            fm = self.models["mask_generator"]
            fm.requires_grad_(True)
            opt = torch.optim.Adam(fm.parameters(), lr=self.opts["mask_lr"])
            wrapped = self.ctx.wrap(fm)
            return [opt], lambda g, d: self._epoch_mask(wrapped, opt, g, d), self._validate_mask
        if stage == "adversarial":
            f.requires_grad_(True)
            opts = [torch.optim.Adam(f.parameters(), lr=self.opts["lr"])]
            fb = self.models.get("background_generator")
            if fb is not None:
                fb.requires_grad_(True)
                opts.append(torch.optim.Adam(fb.parameters(), lr=self.opts["gen_lr"]))
            self.stage_masks = (self._masks(self.data.x_train), self._masks(self.data.x_val))
            wrapped = self.ctx.wrap(f)
            return opts, lambda g, d: self._epoch_adversarial(wrapped, opts, g, d), \
                self._validate_adversarial
        raise ValueError(f"unknown stage {stage!r}")

    # -- epochs ----------------------------------------------------------------------------

    def _batches(self, generator: torch.Generator) -> list[Tensor]:
        return batch_order(self.data.x_train.shape[0], self.opts["batch_size"], generator)

    def _inputs(self, idx: Tensor, generator: torch.Generator) -> tuple[Tensor, Tensor]:
        """This rank's images and labels of global batch ``idx``, augmented if asked."""
        offsets = (shift_offsets(idx.shape[0], generator)
                   if self.opts["augment"] == "shift" else None)
        local = self.ctx.shard(idx).to(self.ctx.device)
        x, y = self.data.x_train[local], self.data.y_train[local]
        if offsets is not None:
            x = shift(x, self.ctx.shard(offsets))
        return x, y

    def _finish(self, sums: list[float], names: list[str], images: int) -> dict[str, float]:
        """Average the per-epoch sums over all processes; ``sums[-1]`` is the sample count."""
        totals = self.ctx.sum(torch.tensor(sums, dtype=torch.float64, device=self.ctx.device))
        count = totals[-1].item()
        out = {name: round(totals[i].item() / count, 6) for i, name in enumerate(names)}
        out["images"] = images
        return out

    def _epoch_supervised(self, model: nn.Module, opt: torch.optim.Optimizer,
                          generator: torch.Generator, desc: str,
                          branches: bool = False) -> dict[str, float]:
        """Cross-entropy on clean images; AG-CNN's local stage adds local and fusion terms."""
        model.train()
        sums = [0.0, 0.0, 0.0]
        batches = self._batches(generator)
        for idx in self.progress.iterate(batches, desc):
            x, y = self._inputs(idx, generator)
            if branches:
                _, local_logits, logits = model(x)
                loss = F.cross_entropy(logits, y) + F.cross_entropy(local_logits, y)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
            else:
                loss, logits = classifier_step(model, opt, x, y)
            n = y.shape[0]
            sums[0] += loss.item() * n
            sums[1] += (logits.argmax(1) == y).sum().item()
            sums[2] += n
            self.progress.postfix(loss=sums[0] / sums[2], acc=sums[1] / sums[2])
        return self._finish(sums, ["train_loss", "train_acc"],
                            len(batches) * self.opts["batch_size"])

    def _mask_terms(self) -> tuple[float, float, float]:
        return self.opts["area_limit"], self.opts["area_weight"], self.opts["tv_weight"]

    def _epoch_mask(self, fm: nn.Module, opt: torch.optim.Optimizer,
                    generator: torch.Generator, desc: str) -> dict[str, float]:
        fm.train()
        self.models["classifier"].eval()
        sums = [0.0, 0.0, 0.0, 0.0, 0.0]
        batches = self._batches(generator)
        for idx in self.progress.iterate(batches, desc):
            x, y = self._inputs(idx, generator)
            loss, ce, logits, area = mask_step(fm, self.models["classifier"], opt, x, y,
                                               *self._mask_terms())
            n = y.shape[0]
            sums[0] += loss.item() * n
            sums[1] += ce.item() * n
            sums[2] += (logits.argmax(1) == y).sum().item()
            sums[3] += area.sum().item()
            sums[4] += n
            self.progress.postfix(loss=sums[0] / sums[4], acc=sums[2] / sums[4],
                                  area=sums[3] / sums[4])
        return self._finish(sums, ["train_loss", "train_ce", "train_acc", "mask_area"],
                            len(batches) * self.opts["batch_size"])

    @torch.no_grad()
    def _masks(self, x: Tensor) -> Tensor:
        """The stage-3 mask of every image in ``x``: ``T(f_m(x))`` dilated, or the true mask."""
        if self.method == "truemask":
            return torch.cat([masklib.true_mask(c) for c in x.split(EVAL_BATCH)])
        fm = self.models["mask_generator"].eval()
        out = []
        for chunk in x.split(EVAL_BATCH):
            out.append(masklib.stage3_mask(fm(chunk), self.opts["mask_transform"],
                                           self.opts["area_limit"], self.opts["mask_dilation"]))
        return torch.cat(out)

    def _backgrounds(self, n: int, generator: torch.Generator) -> Tensor:
        """Noise for ``n`` global samples: generator seeds ``z`` or noise backgrounds."""
        fb = self.models.get("background_generator")
        if fb is not None:
            return fb.sample_noise(n, generator)
        return masklib.noise_backgrounds(n, self.opts["noise_kind"], self.opts["noise_rate"],
                                         generator)

    def _epoch_adversarial(self, f_wrapped: nn.Module, opts: list[torch.optim.Optimizer],
                           generator: torch.Generator, desc: str) -> dict[str, float]:
        f = self.models["classifier"]
        fb = self.models.get("background_generator")
        f.train()
        train_masks = self.stage_masks[0]
        sums = [0.0, 0.0, 0.0, 0.0, 0.0, 0.0]
        batches = self._batches(generator)
        for idx in self.progress.iterate(batches, desc):
            noise = self.ctx.shard(self._backgrounds(idx.shape[0], generator))
            noise = noise.to(self.ctx.device)
            clean = self.ctx.shard(torch.rand(idx.shape[0], generator=generator)
                                   < self.opts["clean_fraction"]).to(self.ctx.device)
            x, y = self._inputs(idx, generator)
            m = train_masks[self.ctx.shard(idx).to(self.ctx.device)]
            m = torch.where(clean[:, None, None, None], torch.ones_like(m), m)
            if fb is not None:
                with torch.no_grad():
                    b = fb(noise)
                b = sample_background(b, self._uniforms(b, generator))
            else:
                b = noise
            loss, logits, area, bg_mean = adversarial_classifier_step(f_wrapped, opts[0], x, y,
                                                                      m, b)
            gen_ce = torch.zeros(())
            for _ in range(self.opts["gen_steps"] if fb is not None else 0):
                gen_ce = generator_step(f, fb, opts[1], x, y, m, noise,
                                        self._uniforms(b, generator), self.opts["bg_limit"],
                                        self.opts["bg_weight"], self.ctx.average_gradients)
            n = y.shape[0]
            sums[0] += loss.item() * n
            sums[1] += (logits.argmax(1) == y).sum().item()
            sums[2] += gen_ce.item() * n
            sums[3] += area.sum().item()
            sums[4] += bg_mean.sum().item()
            sums[5] += n
            self.progress.postfix(loss=sums[0] / sums[5], acc=sums[1] / sums[5],
                                  bg=sums[4] / sums[5])
        return self._finish(sums, ["train_loss", "train_acc", "generator_ce", "mask_area",
                                   "background_mean"],
                            len(batches) * self.opts["batch_size"])

    def _uniforms(self, b: Tensor, generator: torch.Generator) -> Tensor | None:
        """This rank's uniforms for sampling binary backgrounds shaped like ``b`` (None with
        ``bg_sample=none``), drawn for the global batch like all stage randomness."""
        u = uniforms(b.shape[0] * self.ctx.world, b.shape[-1], self.opts["bg_sample"],
                     generator)
        return None if u is None else self.ctx.shard(u).to(b.device)

    # -- validation ------------------------------------------------------------------------

    def _val_chunks(self) -> Iterator[tuple[int, int]]:
        start, stop = self.ctx.split(self.data.x_val.shape[0])
        for lo in range(start, stop, EVAL_BATCH):
            yield lo, min(lo + EVAL_BATCH, stop)

    @torch.no_grad()
    def _accuracy(self, model: nn.Module, x: Tensor, y: Tensor,
                  transform: Callable[[int, int, Tensor], Tensor] | None = None) -> float:
        """Accuracy of ``model`` on the validation images (sharded over processes)."""
        model.eval()
        counts = [0.0, 0.0]
        for lo, hi in self._val_chunks():
            xb = x[lo:hi] if transform is None else transform(lo, hi, x[lo:hi])
            counts[0] += (model(xb).argmax(1) == y[lo:hi]).sum().item()
            counts[1] += hi - lo
        totals = self.ctx.sum(torch.tensor(counts, dtype=torch.float64, device=self.ctx.device))
        return round(totals[0].item() / max(totals[1].item(), 1.0), 6)

    def _validate_clean(self, model: nn.Module) -> tuple[float, dict[str, float]]:
        acc = self._accuracy(model, self.data.x_val, self.data.y_val)
        return acc, {"val_acc": acc}

    @torch.no_grad()
    def _validate_mask(self) -> tuple[float, dict[str, float]]:
        """Score: minus the validation stage-2 loss (with the untransformed mask)."""
        fm = self.models["mask_generator"].eval()
        f = self.models["classifier"].eval()
        sums = [0.0, 0.0, 0.0, 0.0, 0.0, 0.0]
        for lo, hi in self._val_chunks():
            x, y = self.data.x_val[lo:hi], self.data.y_val[lo:hi]
            m = fm(x)
            loss, _, logits, area = mask_loss(f, x, y, m, *self._mask_terms())
            t = masklib.transform_mask(m, self.opts["mask_transform"], self.opts["area_limit"])
            n = hi - lo
            sums[0] += loss.item() * n
            sums[1] += (logits.argmax(1) == y).sum().item()
            sums[2] += area.sum().item()
            sums[3] += (f(x * t).argmax(1) == y).sum().item()
            sums[4] += t.mean(dim=(1, 2, 3)).sum().item()
            sums[5] += n
        totals = self.ctx.sum(torch.tensor(sums, dtype=torch.float64, device=self.ctx.device))
        v = (totals[:-1] / totals[-1]).tolist()
        metrics = {"val_loss": v[0], "val_acc": v[1], "val_mask_area": v[2],
                   "val_acc_transformed": v[3], "val_mask_area_transformed": v[4]}
        return -v[0], {k: round(val, 6) for k, val in metrics.items()}

    def _validate_adversarial(self) -> tuple[float, dict[str, float]]:
        """Score: the mean of clean accuracy and accuracy on composites with fixed uniform-noise
        backgrounds (the run's own masks), both on the validation split."""
        f = self.models["classifier"]
        val_masks = self.stage_masks[1]
        noise = masklib.noise_backgrounds(self.data.x_val.shape[0], "uniform", 0.5,
                                          torch.Generator().manual_seed(VALIDATION_NOISE_SEED))
        noise = noise.to(self.ctx.device)

        def with_noise(lo: int, hi: int, x: Tensor) -> Tensor:
            return composite(x, val_masks[lo:hi], noise[lo:hi])[0]

        clean = self._accuracy(f, self.data.x_val, self.data.y_val)
        noisy = self._accuracy(f, self.data.x_val, self.data.y_val, with_noise)
        return (clean + noisy) / 2, {"val_acc": clean, "val_acc_noise": noisy}

