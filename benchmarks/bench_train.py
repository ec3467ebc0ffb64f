"""asv: one optimisation step of each training stage at the default batch size (128).

The steps are the trainer's own (``bgbench.train.steps``): the stage-1 classifier step,
the stage-2 mask-generator step against a frozen classifier, and the stage-3 adversarial
pair (a classifier step on composites, then a background-generator step). Networks use
the quick preset's widths, channels_last as in training, on CPU at 2 threads and on CUDA
where there is a GPU, in each training precision (float32, and bfloat16 autocast where
the device has native bf16; skipped elsewhere).
"""

import torch

BATCH = 128


def _prepare(device_name, precision="fp32"):
    from bgbench.models import MaskUNet, TiledBackgroundGenerator, VGGClassifier
    from bgbench.train.config import resolve
    from bgbench.train.data import synthetic
    from bgbench.train.masks import true_mask
    from bgbench.train.precision import bf16_support

    if device_name == "cuda" and not torch.cuda.is_available():
        raise NotImplementedError("no CUDA device")
    device = torch.device(device_name)
    if precision == "bf16" and bf16_support(device) is not None:
        raise NotImplementedError(bf16_support(device))
    if device_name == "cpu":
        torch.set_num_threads(2)
    opts = resolve("quick", {"precision": precision})
    torch.manual_seed(0)
    fmt = torch.channels_last
    nets = {"f": VGGClassifier(), "fm": MaskUNet(opts.unet_width),
            "fb": TiledBackgroundGenerator(opts.gen_width)}
    nets = {k: v.to(device, memory_format=fmt) for k, v in nets.items()}
    x, y = synthetic(BATCH, seed=0)
    state = {"x": x.to(device), "y": y.to(device), "m": true_mask(x).to(device),
             "z": nets["fb"].sample_noise(BATCH, torch.Generator().manual_seed(0), device),
             "opts": opts, "device": device, **nets}
    state["opt_f"] = torch.optim.Adam(nets["f"].parameters(), lr=opts.lr)
    state["opt_fm"] = torch.optim.Adam(nets["fm"].parameters(), lr=opts.mask_lr)
    state["opt_fb"] = torch.optim.Adam(nets["fb"].parameters(), lr=opts.gen_lr)
    return state


def _sync(state):
    if state["device"].type == "cuda":
        torch.cuda.synchronize()


def _classifier(s):
    from bgbench.train.steps import classifier_step

    classifier_step(s["f"], s["opt_f"], s["x"], s["y"], s["opts"].precision)
    _sync(s)


def _mask(s):
    from bgbench.train.steps import mask_step

    o = s["opts"]
    mask_step(s["fm"], s["f"], s["opt_fm"], s["x"], s["y"], o.area_limit, o.area_weight,
              o.tv_weight, o.precision)
    _sync(s)


def _adversarial(s):
    from bgbench.train.steps import AdversarialBatch, adversarial_step, uniforms

    o = s["opts"]
    u = uniforms(BATCH, 32, o.bg_sample, torch.Generator().manual_seed(0))
    u = None if u is None else u.to(s["device"])
    batch = AdversarialBatch(s["x"], s["y"], s["m"], s["z"], u, None, None, (u,))
    adversarial_step(s["f"], s["f"], s["fb"], [s["opt_f"], s["opt_fb"]], batch, o)
    _sync(s)


class TrainStep:
    """One optimisation step of each stage, batch 128, in each training precision."""

    params = (["cpu", "cuda"], ["fp32", "bf16"])
    param_names = ["device", "precision"]

    def setup(self, device, precision):
        self.s = _prepare(device, precision)
        # One warm-up of each: first calls allocate optimizer state and pick kernels.
        for step in (_classifier, _mask, _adversarial):
            step(self.s)

    def time_classifier_step(self, device, precision):
        _classifier(self.s)

    def time_mask_generator_step(self, device, precision):
        _mask(self.s)

    def time_adversarial_pair_step(self, device, precision):
        _adversarial(self.s)


class TrainStepMemory:
    """Peak resident memory of the heaviest step: the adversarial pair, on CPU."""

    def setup(self):
        self.s = _prepare("cpu")

    def peakmem_adversarial_pair_step(self):
        _adversarial(self.s)


class StageStepCUDA:
    """One optimisation step of each stage of the proposal on CUDA, as
    ``python -m bgbench.bench train --device cuda`` runs it (quick preset, batch 128, the
    trainer's steps and optimizers), in each precision. Skipped where there is no CUDA device
    (bf16: no native bf16)."""

    params = (["classifier", "mask", "adversarial"], ["fp32", "bf16"])
    param_names = ["stage", "precision"]

    def setup(self, stage, precision):
        if not torch.cuda.is_available():
            raise NotImplementedError("no CUDA device")
        from bgbench.bench.train import stage_step, training_setup
        from bgbench.train.precision import bf16_support
        from bgbench.train.stages import METHOD_STAGES

        device = torch.device("cuda")
        if precision == "bf16" and bf16_support(device) is not None:
            raise NotImplementedError(bf16_support(device))
        opts, models, x, y = training_setup("proposal", "quick", device, precision)
        (chosen,) = (s for s in METHOD_STAGES["proposal"] if s.name == stage)
        self.step = stage_step(chosen, models, opts, x, y)
        for _ in range(3):  # optimizer state, cuDNN's kernel choices, allocator pools
            self.step()
        torch.cuda.synchronize()

    def time_step(self, stage, precision):
        self.step()
        torch.cuda.synchronize()


class AdversarialMiningCPU:
    """The stage-3 step of the proposal on CPU (2 threads) with half of its backgrounds from
    the threat model's families: the hardest of K members per image, refined by M local
    moves (``family_candidates``, ``family_moves``; K 1 and M 0 draw one member and mine
    nothing). Each candidate and move is one more forward pass of the classifier, so this is
    what the training adversary costs beside the step itself."""

    params = ([1, 8], [0, 4])
    param_names = ["candidates", "moves"]

    def setup(self, candidates, moves):
        from bgbench.bench.train import stage_step, training_setup
        from bgbench.train.stages import METHOD_STAGES

        torch.set_num_threads(2)
        options = {"family_share": 0.5, "family_candidates": candidates,
                   "family_moves": moves}
        opts, models, x, y = training_setup("proposal", "quick", torch.device("cpu"),
                                            overrides=options)
        (stage,) = (s for s in METHOD_STAGES["proposal"] if s.name == "adversarial")
        self.step = stage_step(stage, models, opts, x, y)
        self.step()  # optimizer state

    def time_step(self, candidates, moves):
        self.step()
