"""The stages of training, each one object, and the methods as ordered tuples of stages.

A stage says which networks it needs, which of them it trains (and checkpoints), which
option counts its epochs, how it builds its optimizers, sets its networks' modes
(``train_mode``), draws a batch with all its randomness (``draw``), takes one step on it
(``train_step``), runs one epoch and validates, each on the run's ``StageContext``. The
trainer loops over a method's stages and knows none of them by name.

- ``classifier``: stage 1, the classifier f on clean images (cross-entropy).
- ``mask``: stage 2, the mask generator f_m with f frozen: ``CE(f(x*m)) + w_A L_A + w_TV TV``.
- ``adversarial``: stage 3, f on composites ``m*x + (1-m)*b`` alternating with steps of the
  background generator f_b maximising ``CE - w_BA L_BA`` (or noise backgrounds); the mask is
  ``T(f_m(x))`` (optionally dilated) or the dilated foreground. With ``bg_sample`` other
  than ``none`` the classifier sees binary backgrounds drawn with f_b's output as
  probabilities (per pixel or per block).
- ``global`` / ``local``: AG-CNN's global branch, then its local branch and fusion head.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor, nn

from bgbench import records
from bgbench.data.torch_data import unpad
from bgbench.models import AGCNN, MaskUNet, TiledBackgroundGenerator, VGGClassifier
from bgbench.ops import composite
from bgbench.train import masks as masklib
from bgbench.train.accuracy import EVAL_BATCH
from bgbench.train.bg_mix import draw_mix
from bgbench.train.config import TrainOptions, train_families
from bgbench.train.intensity import draw_intensity
from bgbench.train.meters import Meters
from bgbench.train.pixel_dropout import draw_pixel_dropout
from bgbench.train.stage_context import Networks, StageContext
from bgbench.train.steps import (
    AdversarialBatch,
    AdversarialOutcome,
    adversarial_step,
    agcnn_local_step,
    classifier_step,
    mask_loss,
    mask_step,
)

VALIDATION_NOISE_SEED = 20240607

# The epoch's score (None: the epoch cannot be kept) and its validation metrics.
Validation = tuple[float | None, dict[str, float]]
# The worst-case search that picks stage 3's epoch draws its own backgrounds, not the ones
# `bgbench attack` tests with.
SELECTION_SEARCH_SEED = 20261207


def vgg_classifier(opts: TrainOptions) -> nn.Module:
    """The paper's classifier f."""
    return VGGClassifier()


def agcnn_classifier(opts: TrainOptions) -> nn.Module:
    """AG-CNN: global branch, attention crop, local branch and fusion head."""
    return AGCNN(opts.attention_threshold, opts.cc_iterations)


def mask_generator(opts: TrainOptions) -> nn.Module:
    """The mask generator f_m."""
    return MaskUNet(opts.unet_width)


def background_generator(opts: TrainOptions) -> nn.Module:
    """The background generator f_b."""
    return TiledBackgroundGenerator(opts.gen_width)


class _Branches(nn.Module):
    """Exposes AG-CNN's three logits through ``forward`` so DDP can wrap the local stage."""

    def __init__(self, model: AGCNN) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        return self.model.branches(x)


def _adam(params, lr: float) -> torch.optim.Optimizer:
    return torch.optim.Adam(params, lr=lr)


def _unfrozen(module: nn.Module) -> nn.Module:
    return module.requires_grad_(True)


@dataclass(frozen=True)
class OneNetworkStage:
    """A stage that trains one network (``network``, built by ``build``) with one Adam
    optimizer at the learning rate option ``lr_option``, for ``epochs_option`` epochs.
    Subclasses add ``train_mode``, ``train_step``, ``epoch`` and ``validate``."""

    name: str
    epochs_option: str
    network: str
    build: Callable[[TrainOptions], nn.Module]
    lr_option: str

    def averaged(self, opts: TrainOptions) -> tuple[str, ...]:
        """The networks whose weights the stage averages over its last epochs: none."""
        return ()

    def networks(self) -> dict[str, Callable[[TrainOptions], nn.Module]]:
        """The networks this stage needs, by name, with how to build each."""
        return {self.network: self.build}

    def modules(self, models: Networks) -> tuple[str, ...]:
        """The networks this stage trains and checkpoints."""
        return (self.network,)

    def trained(self, models: Networks) -> nn.Module:
        """The module the stage's epochs run through (the trainer wraps it for DDP)."""
        return models[self.network]

    def optimizers(self, models: Networks, opts: TrainOptions) -> list[torch.optim.Optimizer]:
        """Unfreeze the stage's parameters and return its optimizers."""
        return [_adam(_unfrozen(self.trained(models)).parameters(),
                      getattr(opts, self.lr_option))]

    def draw(self, c: StageContext, idx: Tensor, generator: torch.Generator
             ) -> tuple[Tensor, Tensor]:
        """This process's images and labels of global batch ``idx``."""
        return c.inputs(idx, generator)


@dataclass(frozen=True)
class ClassifierStage(OneNetworkStage):
    """Stage 1: the classifier on clean images."""

    name: str = "classifier"
    epochs_option: str = "epochs"
    network: str = "classifier"
    build: Callable[[TrainOptions], nn.Module] = vgg_classifier
    lr_option: str = "lr"
    step: Callable[..., tuple[Tensor, Tensor]] = classifier_step

    def train_mode(self, c: StageContext, model: nn.Module) -> None:
        """Put the networks in the modes the stage's steps run them in."""
        model.train()

    def train_step(self, c: StageContext, model: nn.Module,
                   optimizers: list[torch.optim.Optimizer], batch: tuple[Tensor, Tensor]
                   ) -> tuple[Tensor, Tensor]:
        """One cross-entropy step on ``batch``: the loss and the logits."""
        x, y = batch
        return self.step(model, optimizers[0], x, y, c.opts.precision)

    def epoch(self, c: StageContext, model: nn.Module, optimizers: list[torch.optim.Optimizer],
              generator: torch.Generator, desc: str) -> dict[str, float]:
        """One epoch; its training metrics by name."""
        self.train_mode(c, model)
        meters = Meters("train_loss", "train_acc", device=c.dist.device)
        batches = c.batches(generator)
        for idx in c.progress.iterate(batches, desc):
            batch = self.draw(c, idx, generator)
            loss, logits = self.train_step(c, model, optimizers, batch)
            y = batch[1]
            n = y.shape[0]
            meters.add(n, train_loss=loss * n, train_acc=(logits.argmax(1) == y).sum())
            c.progress.postfix(meters, loss="train_loss", acc="train_acc")
        return c.finish(meters, batches)

    def scored(self, models: Networks) -> nn.Module:
        """The network whose clean validation accuracy scores the epoch."""
        return self.trained(models)

    def validate(self, c: StageContext, epoch: int) -> Validation:
        """The score that picks the best epoch (``epoch``, counted from 1, just trained), and
        the validation metrics."""
        return c.validate_clean(self.scored(c.models))


@dataclass(frozen=True)
class AGCNNGlobalStage(ClassifierStage):
    """AG-CNN's global branch on clean images."""

    name: str = "global"
    build: Callable[[TrainOptions], nn.Module] = agcnn_classifier

    def trained(self, models: Networks) -> nn.Module:
        return models["classifier"].global_branch


@dataclass(frozen=True)
class AGCNNLocalStage(AGCNNGlobalStage):
    """AG-CNN's local branch and fusion head, on the fused and local cross-entropies."""

    name: str = "local"
    epochs_option: str = "local_epochs"
    step: Callable[..., tuple[Tensor, Tensor]] = agcnn_local_step

    def trained(self, models: Networks) -> nn.Module:
        return _Branches(models["classifier"])

    def scored(self, models: Networks) -> nn.Module:
        return models["classifier"]

    def optimizers(self, models: Networks, opts: TrainOptions) -> list[torch.optim.Optimizer]:
        f = models["classifier"]
        params = [*_unfrozen(f.local_branch).parameters(), *_unfrozen(f.fusion).parameters()]
        return [_adam(params, opts.lr)]


@dataclass(frozen=True)
class MaskStage(OneNetworkStage):
    """Stage 2: the mask generator against the frozen classifier."""

    name: str = "mask"
    epochs_option: str = "mask_epochs"
    network: str = "mask_generator"
    build: Callable[[TrainOptions], nn.Module] = mask_generator
    lr_option: str = "mask_lr"

    def train_mode(self, c: StageContext, model: nn.Module) -> None:
        model.train()
        c.models["classifier"].eval()

    def train_step(self, c: StageContext, model: nn.Module,
                   optimizers: list[torch.optim.Optimizer], batch: tuple[Tensor, Tensor]
                   ) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """One mask-generator step: the loss, the cross-entropy, the logits and the areas."""
        x, y = batch
        o = c.opts
        return mask_step(model, c.models["classifier"], optimizers[0], x, y, o.area_limit,
                         o.area_weight, o.tv_weight, o.precision)

    def epoch(self, c: StageContext, model: nn.Module, optimizers: list[torch.optim.Optimizer],
              generator: torch.Generator, desc: str) -> dict[str, float]:
        self.train_mode(c, model)
        meters = Meters("train_loss", "train_ce", "train_acc", "mask_area", device=c.dist.device)
        batches = c.batches(generator)
        for idx in c.progress.iterate(batches, desc):
            batch = self.draw(c, idx, generator)
            loss, ce, logits, area = self.train_step(c, model, optimizers, batch)
            y = batch[1]
            n = y.shape[0]
            meters.add(n, train_loss=loss * n, train_ce=ce * n,
                       train_acc=(logits.argmax(1) == y).sum(), mask_area=area.sum())
            c.progress.postfix(meters, loss="train_loss", acc="train_acc", area="mask_area")
        return c.finish(meters, batches)

    @torch.no_grad()
    def validate(self, c: StageContext, epoch: int) -> Validation:
        """Score: minus the validation stage-2 loss (with the untransformed mask)."""
        fm = c.models["mask_generator"].eval()
        f = c.models["classifier"].eval()
        o = c.opts
        meters = Meters("val_loss", "val_acc", "val_mask_area", "val_acc_transformed",
                        "val_mask_area_transformed", device=c.dist.device)
        for lo, hi in c.val_chunks():
            x, y = c.data.x_val[lo:hi], c.data.y_val[lo:hi]
            m = fm(x)
            loss, _, logits, area = mask_loss(f, x, y, m, o.area_limit, o.area_weight,
                                              o.tv_weight)
            mask = masklib.transform_mask(m, o.mask_transform, o.area_limit)
            n = hi - lo
            meters.add(n, val_loss=loss * n, val_acc=(logits.argmax(1) == y).sum(),
                       val_mask_area=area.sum(),
                       val_acc_transformed=(f(x * mask).argmax(1) == y).sum(),
                       val_mask_area_transformed=mask.mean(dim=(1, 2, 3)).sum())
        metrics = meters.averages(c.dist)
        return -metrics["val_loss"], {k: round(v, 6) for k, v in metrics.items()}


@dataclass(frozen=True)
class AdversarialStage:
    """Stage 3: the classifier on composites with the stage-3 masks, against backgrounds
    from the background generator (trained alongside) or from noise."""

    masks: Literal["learned", "true"] = "learned"
    backgrounds: Literal["generator", "noise"] = "generator"
    name: str = "adversarial"
    epochs_option: str = "adv_epochs"

    def networks(self) -> dict[str, Callable[[TrainOptions], nn.Module]]:
        nets = {"classifier": vgg_classifier}
        if self.backgrounds == "generator":
            nets["background_generator"] = background_generator
        return nets

    def modules(self, models: Networks) -> tuple[str, ...]:
        return tuple(self.networks())

    def trained(self, models: Networks) -> nn.Module:
        return models["classifier"]

    def optimizers(self, models: Networks, opts: TrainOptions) -> list[torch.optim.Optimizer]:
        opts_ = [_adam(_unfrozen(models["classifier"]).parameters(), opts.lr)]
        if self.backgrounds == "generator":
            opts_.append(_adam(_unfrozen(models["background_generator"]).parameters(),
                               opts.gen_lr))
        return opts_

    @torch.no_grad()
    def _compute_masks(self, c: StageContext, x: Tensor) -> Tensor:
        """The stage-3 mask of every image in ``x``: ``T(f_m(x))`` dilated, or the true
        mask."""
        if self.masks == "true":
            return torch.cat([masklib.true_mask(chunk) for chunk in x.split(EVAL_BATCH)])
        fm, o = c.models["mask_generator"].eval(), c.opts
        return torch.cat([masklib.stage3_mask(fm(chunk), o.mask_transform, o.area_limit,
                                              o.mask_dilation)
                          for chunk in x.split(EVAL_BATCH)])

    def _masks(self, c: StageContext, split: Literal["train", "val"]) -> Tensor:
        x = c.data.x_train if split == "train" else c.data.x_val
        return c.cached(f"{self.name} masks {split}", lambda: self._compute_masks(c, x))

    def _generator(self, c: StageContext) -> nn.Module | None:
        return c.models["background_generator"] if self.backgrounds == "generator" else None

    def averaged(self, opts: TrainOptions) -> tuple[str, ...]:
        """The classifier, with ``average_epochs``; the background generator is kept as its
        last epoch left it."""
        return ("classifier",) if opts.average_epochs else ()

    def train_mode(self, c: StageContext, model: nn.Module) -> None:
        c.models["classifier"].train()

    def draw(self, c: StageContext, idx: Tensor, generator: torch.Generator
             ) -> AdversarialBatch:
        """Global batch ``idx`` with all its stage-3 draws, this process's share of it."""
        o, ctx, n = c.opts, c.dist, idx.shape[0]
        train_masks = self._masks(c, "train")
        fb = self._generator(c)
        if fb is not None:
            noise = fb.sample_noise(n, generator)
        else:
            noise = masklib.noise_backgrounds(n, o.noise_kind, o.noise_rate, generator)
        noise = ctx.shard(noise).to(ctx.device)
        clean = ctx.shard(torch.rand(n, generator=generator)
                          < o.clean_fraction).to(ctx.device)
        x, y = c.inputs(idx, generator)
        m = train_masks[ctx.shard(idx).to(ctx.device)]
        m = torch.where(clean[:, None, None, None], torch.ones_like(m), m)
        rows = ctx.shard(torch.arange(n))
        size = x.shape[-1]  # the generator's backgrounds are the images' size
        u, mix = None, None
        if fb is not None:
            u = c.uniforms(n, size, generator)
            mix = draw_mix(n, size, generator, o.soft_share, o.grey_share,
                           family_share=o.family_share, family_candidates=o.family_candidates,
                           families=train_families(o), family_moves=o.family_moves)
            mix = None if mix is None else mix.rows(rows)
        maps = draw_intensity(n, generator, o.intensity_share)
        maps = None if maps is None else maps.rows(rows)
        keep = draw_pixel_dropout(n, size, generator, o.pixel_dropout_share)
        if keep is not None:
            x = x * ctx.shard(keep).to(device=ctx.device, dtype=x.dtype)
        steps = o.gen_steps if fb is not None else 0
        return AdversarialBatch(x, y, m, noise, u, mix, maps,
                                tuple(c.uniforms(n, size, generator) for _ in range(steps)))

    def train_step(self, c: StageContext, model: nn.Module,
                   optimizers: list[torch.optim.Optimizer], batch: AdversarialBatch
                   ) -> AdversarialOutcome:
        """One classifier step on the batch's composites and the generator's steps."""
        return adversarial_step(model, c.models["classifier"], self._generator(c), optimizers,
                                batch, c.opts, c.dist.average_gradients)

    def epoch(self, c: StageContext, model: nn.Module, optimizers: list[torch.optim.Optimizer],
              generator: torch.Generator, desc: str) -> dict[str, float]:
        self.train_mode(c, model)
        meters = Meters("train_loss", "train_acc", "generator_ce", "mask_area",
                        "background_mean", device=c.dist.device)
        batches = c.batches(generator)
        for idx in c.progress.iterate(batches, desc):
            batch = self.draw(c, idx, generator)
            out = self.train_step(c, model, optimizers, batch)
            n = batch.y.shape[0]
            meters.add(n, train_loss=out.loss * n,
                       train_acc=(out.logits.argmax(1) == batch.y).sum(),
                       generator_ce=out.generator_ce * n, mask_area=out.area.sum(),
                       background_mean=out.bg_mean.sum())
            c.progress.postfix(meters, loss="train_loss", acc="train_acc", bg="background_mean")
        return c.finish(meters, batches)

    def validate(self, c: StageContext, epoch: int) -> Validation:
        """Metrics: clean accuracy and accuracy on composites with fixed uniform-noise
        backgrounds (the run's own masks), both on the validation split. Score: their mean;
        with ``select_budget``, the adaptive accuracy of the worst-case search on the first
        ``select_images`` validation images, for the last ``select_epochs`` epochs only."""
        f = c.models["classifier"]
        o = c.opts
        val_masks = self._masks(c, "val")
        noise = masklib.noise_backgrounds(c.data.x_val.shape[0], "uniform", 0.5,
                                          torch.Generator().manual_seed(VALIDATION_NOISE_SEED))
        noise = noise.to(c.dist.device)

        def with_noise(lo: int, hi: int, x: Tensor) -> Tensor:
            return composite(x, val_masks[lo:hi], noise[lo:hi])[0]

        clean = c.accuracy(f, c.data.x_val, c.data.y_val)
        noisy = c.accuracy(f, c.data.x_val, c.data.y_val, with_noise)
        metrics = {"val_acc": clean, "val_acc_noise": noisy}
        if not o.select_budget:
            return (clean + noisy) / 2, metrics
        if epoch <= getattr(o, self.epochs_option) - o.select_epochs:
            return None, metrics
        from bgbench.train.evaluate import worst_case_accuracy

        n = o.select_images or c.data.x_val.shape[0]
        found = worst_case_accuracy(f, c.dataset, unpad(c.data.x_val[:n]),
                                    c.data.y_val[:n].cpu().numpy(), o.select_budget,
                                    seed=SELECTION_SEARCH_SEED)
        metrics.update(val_worst_case_adaptive=round(found["worst_case_adaptive"], 6),
                       val_worst_case_universal=round(found["worst_case_universal"], 6))
        return metrics["val_worst_case_adaptive"], metrics


Stage = OneNetworkStage | AdversarialStage

# The stage objects by the names the method records give them (``bgbench.records``).
STAGE_BY_NAME: dict[str, Stage] = {
    "classifier": ClassifierStage(),
    "mask": MaskStage(),
    "adversarial": AdversarialStage(),
    "adversarial-true-mask": AdversarialStage(masks="true"),
    "adversarial-noise": AdversarialStage(backgrounds="noise"),
    "global": AGCNNGlobalStage(),
    "local": AGCNNLocalStage(),
}

# Each method's stages, in the order they run.
METHOD_STAGES: dict[str, tuple[Stage, ...]] = {
    m.name: tuple(STAGE_BY_NAME[s] for s in m.stages) for m in records.METHODS}


def build_models(method: str, opts: TrainOptions) -> Networks:
    """The networks ``method``'s stages use, by name, built in stage order (so the same
    seed gives the same initial weights)."""
    builders: dict[str, Callable[[TrainOptions], nn.Module]] = {}
    for stage in METHOD_STAGES[method]:
        for name, build in stage.networks().items():
            if builders.setdefault(name, build) is not build:
                raise ValueError(f"stages of {method!r} need different {name} networks")
    return {name: build(opts) for name, build in builders.items()}
