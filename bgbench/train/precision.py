"""Training precision: float32 throughout, or bfloat16 autocast for the networks.

With ``bf16`` each network's forward runs under ``torch.autocast`` (convolutions and linear
layers in bfloat16, on oneDNN's bf16 kernels on a CPU); its output is cast back to float32,
so everything between networks (the fused composite, backgrounds, losses and their
reductions) is float32, as are the master weights, their gradients and the optimizer.
Backward runs outside autocast, in the dtypes the forward recorded. A device without
native bfloat16 is an error, never a silent float32 run.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn

from bgbench.errors import ParameterError
from bgbench.train.config import PRECISIONS


def bf16_support(device: torch.device) -> str | None:
    """Why ``device`` cannot train in bfloat16 at full speed, or None when it can.

    A CPU needs oneDNN and native bf16 instructions (``avx512_bf16`` or AMX); elsewhere torch
    emulates bfloat16 in float32, slower than float32 itself. A CUDA device needs native
    bf16 (compute capability 8.0 or newer).
    """
    if device.type == "cpu":
        if not torch.backends.mkldnn.is_available():
            return "this torch is built without oneDNN (mkldnn), which runs CPU bf16 kernels"
        if not (torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported()):
            return "this CPU has no native bfloat16 instructions (avx512_bf16 or AMX)"
        return None
    if device.type == "cuda":
        if not torch.cuda.is_bf16_supported(including_emulation=False):
            return (f"{torch.cuda.get_device_name(device)} has no native bfloat16 "
                    "(compute capability 8.0 or newer)")
        return None
    return f"bfloat16 training is supported on cpu and cuda, not {device.type}"


def check_precision(precision: str, device: torch.device, option: str = "precision") -> None:
    """Raise ``ParameterError`` when ``precision`` (the value of ``option``) is unknown or
    ``device`` cannot run it."""
    if precision not in PRECISIONS:
        raise ParameterError(f"`{option}` must be one of {', '.join(PRECISIONS)}, "
                             f"got {precision!r}")
    if precision == "bf16":
        reason = bf16_support(device)
        if reason is not None:
            flag = "--" + option.replace("_", "-")
            raise ParameterError(f"`{option}` bf16 cannot run on {device.type}: {reason}; "
                                 f"train with `{option}` fp32 (`{flag} fp32`)")


def autocast(precision: str, device: torch.device | str) -> contextlib.AbstractContextManager:
    """The context a network's forward runs in: bfloat16 autocast for ``bf16``, nothing for
    ``fp32``."""
    if precision == "fp32":
        return contextlib.nullcontext()
    if precision != "bf16":
        raise ParameterError(f"`precision` must be one of {', '.join(PRECISIONS)}, "
                             f"got {precision!r}")
    return torch.autocast(torch.device(device).type, dtype=torch.bfloat16)


def _float32(out: Any) -> Any:
    if isinstance(out, Tensor):
        return out.float() if out.is_floating_point() else out
    if isinstance(out, tuple):
        return tuple(_float32(o) for o in out)
    return out


def forward(net: nn.Module | Callable[..., Any], *args: Tensor, precision: str = "fp32"
            ) -> Any:
    """``net(*args)`` in ``precision``, its tensor outputs (or tuple of them) as float32."""
    if precision == "fp32":
        return net(*args)
    device = next((a.device for a in args if isinstance(a, Tensor)), torch.device("cpu"))
    with autocast(precision, device):
        out = net(*args)
    return _float32(out)
