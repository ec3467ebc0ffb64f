"""asv: the fused composite op (``bgbench.ops.composite``) against its eager reference.

CPU at 2 threads (the issue's setting) and CUDA where there is a GPU; a forward and a
forward+backward (from given output gradients) per shape. ``python -m bgbench.bench op``
prints the same comparisons, with ratios, in one run.
"""

import torch

SHAPES = {"train": (128, 1, 32, 32), "large": (64, 3, 256, 256), "64M": (64, 1, 1024, 1024)}


def _prepare(shape_name, impl, pass_name, device):
    from bgbench import ops
    from bgbench.bench.op import compiled_reference, op_call, op_call_into, op_inputs

    if impl == "fused" and not ops.HAVE_EXTENSION:
        raise NotImplementedError("bgbench._C is not built")
    if device == "cuda" and not torch.cuda.is_available():
        raise NotImplementedError("no CUDA device")
    backward = pass_name == "fwd+bwd"
    if impl == "fused-out":
        if backward:
            raise NotImplementedError("out= has no autograd")
        return op_call_into(*op_inputs(SHAPES[shape_name], device, torch.float32, False)[:3])
    fns = {"fused": ops.composite, "eager": ops.composite_reference}
    fn = compiled_reference() if impl == "compile" else fns[impl]
    return op_call(fn, *op_inputs(SHAPES[shape_name], device, torch.float32, backward), backward)


class CompositeCPU:
    """Fused (and fused into given outputs) vs eager reference vs torch.compile of the
    reference, on CPU, 2 threads."""

    params = (["train", "large"], ["fused", "fused-out", "eager", "compile"], ["fwd", "fwd+bwd"])
    param_names = ["shape", "impl", "pass"]
    timeout = 300  # setup compiles the reference for each parameter set

    def setup(self, shape_name, impl, pass_name):
        torch.set_num_threads(2)
        self.run = _prepare(shape_name, impl, pass_name, "cpu")
        self.run()

    def time_composite(self, shape_name, impl, pass_name):
        self.run()


class CompositeCUDA:
    """Fused vs eager reference on the GPU (skipped where there is none)."""

    params = (["train", "64M"], ["fused", "fused-out", "eager"], ["fwd", "fwd+bwd"])
    param_names = ["shape", "impl", "pass"]

    def setup(self, shape_name, impl, pass_name):
        self.run = _prepare(shape_name, impl, pass_name, "cuda")
        self.run()
        torch.cuda.synchronize()

    def time_composite(self, shape_name, impl, pass_name):
        self.run()
        torch.cuda.synchronize()


class AddcmulCPU:
    """``torch.addcmul(b, x, m, out=...)`` at the large shape: the same reads (x, m broadcast
    over channels, b) and write as the fused forward into given outputs (``fused-out``)."""

    def setup(self):
        from bgbench.bench.op import addcmul_calls, op_inputs

        torch.set_num_threads(2)
        x, m, b, _ = op_inputs(SHAPES["large"], "cpu", torch.float32, False)
        self.run = addcmul_calls(x, m, b)[0]
        self.run()

    def time_addcmul(self):
        self.run()
