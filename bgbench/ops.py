"""The fused compositing op ``x' = m * x + (1 - m) * b`` with per-sample area means.

``composite`` runs ``torch.ops.bgbench.composite`` from the compiled extension
(``bgbench._C``, kernels in ``csrc/``). Its autograd kernel is C++ (``csrc/ops.cpp``: the
Python ``register_autograd`` path cost more per call than the fused work itself at the
training shape); this module registers the fake (meta) kernels, so it works under
autograd, ``torch.compile(fullgraph=True)`` and ``torch.library.opcheck``. Backward
computes only the gradients of inputs that need one. Under ``torch.autocast`` the op casts
its inputs to float32 (so it accumulates in float32 and returns float32 whatever the
networks around it run in). The compiled kernels read and write contiguous NCHW; for
channels-last inputs (more than one channel: with one channel the two layouts are the same
memory) ``composite`` returns its image in channels-last, converted at the op's boundary.
Where the extension is not built,
``composite`` falls back, with one warning, to ``composite_reference``; where it is built but
does not load (e.g. compiled against another torch), importing this module warns at once
with the loader's reason.
"""

from __future__ import annotations

import warnings

import torch
from torch import Tensor

# Why bgbench._C is unavailable (None when it loaded); every fallback message names it.
LOAD_ERROR: str | None = None
try:
    from bgbench import _C  # noqa: F401  (loading it registers torch.ops.bgbench)
except ModuleNotFoundError as err:
    if err.name != "bgbench._C":
        raise
    LOAD_ERROR = ("bgbench._C is not built (build it with `pip install --no-build-isolation -e .` "
                  "in a clone, or install bgbench with the `train` extra)")
except ImportError as err:
    # A built extension that does not load is a broken install, not a missing feature:
    # say so loudly, with the loader's reason, rather than run the slow reference unnoticed.
    LOAD_ERROR = (f"bgbench._C is built but does not load ({err}); it must be built against "
                  f"the installed torch {torch.__version__}: reinstall bgbench with the `train` "
                  "extra, or rebuild it (BGBENCH_CUDA=0 for a CPU-only torch)")
    warnings.warn(LOAD_ERROR, RuntimeWarning, stacklevel=2)
HAVE_EXTENSION = LOAD_ERROR is None


def composite_reference(x: Tensor, m: Tensor, b: Tensor | None = None
                        ) -> tuple[Tensor, Tensor, Tensor]:
    """Pure-torch reference of ``composite`` (same signature, same results).

    Args:
        x: images ``[N, C, H, W]``.
        m: mask ``[N, 1 | C, H, W]`` in [0, 1].
        b: background broadcastable to ``x`` (``[1 | N, 1 | C, H, W]``), or ``None`` for
            ``x * m`` (a zero background).

    Returns:
        ``out [N, C, H, W]``, ``mean_m [N]`` (mean of each ``m[n]``) and ``mean_b [N]``
        (mean of ``b[n]``, or of ``b[0]`` when ``b`` has batch 1; zeros when ``b`` is None).
    """
    n = x.shape[0]
    mean_m = m.reshape(n, -1).mean(dim=1)
    if b is None:
        return m * x, mean_m, x.new_zeros(n)
    out = m * x + (1 - m) * b
    mean_b = b.reshape(b.shape[0], -1).mean(dim=1).expand(n)
    return out, mean_m, mean_b


def area_penalty(mean: Tensor, limit: float) -> Tensor:
    """Hinge on per-sample areas: the batch mean of ``max(0, mean - limit)``; ``mean`` is ``[N]``."""
    return torch.clamp(mean - limit, min=0).mean()


def _check_shapes(x: Tensor, m: Tensor, b: Tensor | None) -> None:
    # The compiled kernels check the same at run time; this gives torch.compile the
    # error at trace time.
    torch._check(x.dim() == 4, lambda: f"bgbench::composite: x must have shape [N, C, H, W], "
                                       f"got {list(x.shape)}")
    n, c, h, w = x.shape
    torch._check(m.dim() == 4 and m.shape[0] == n and m.shape[1] in (1, c)
                 and m.shape[2:] == x.shape[2:],
                 lambda: f"bgbench::composite: m must have shape [N, 1 or C, H, W] = "
                         f"[{n}, 1 or {c}, {h}, {w}], got {list(m.shape)}")
    if b is not None:
        torch._check(b.dim() == 4 and b.shape[0] in (1, n) and b.shape[1] in (1, c)
                     and b.shape[2:] == x.shape[2:],
                     lambda: f"bgbench::composite: b must have shape [1 or N, 1 or C, H, W] = "
                             f"[1 or {n}, 1 or {c}, {h}, {w}], got {list(b.shape)}")


if HAVE_EXTENSION:

    @torch.library.register_fake("bgbench::composite")
    def _composite_fake(x: Tensor, m: Tensor, b: Tensor | None
                        ) -> tuple[Tensor, Tensor, Tensor]:
        _check_shapes(x, m, b)
        n = x.shape[0]
        return x.new_empty(x.shape), x.new_empty(n), x.new_empty(n)

    @torch.library.register_fake("bgbench::composite_into")
    def _composite_into_fake(x: Tensor, m: Tensor, b: Tensor | None, out: Tensor,
                             mean_m: Tensor, mean_b: Tensor) -> None:
        _check_shapes(x, m, b)

    @torch.library.register_fake("bgbench::composite_backward")
    def _composite_backward_fake(grad_out: Tensor, grad_mean_m: Tensor, grad_mean_b: Tensor,
                                 x: Tensor, m: Tensor, b: Tensor | None,
                                 output_mask: list[bool] = (True, True, True)
                                 ) -> tuple[Tensor, Tensor, Tensor]:
        _check_shapes(x, m, b)
        # Gradients not asked for are distinct empty tensors, as the kernels return.
        return (x.new_empty(x.shape if output_mask[0] else (0,)),
                x.new_empty(m.shape if output_mask[1] else (0,)),
                x.new_empty(b.shape if output_mask[2] and b is not None else (0,)))


if HAVE_EXTENSION:
    # Python autocast kernels run only under autocast; outside it the op costs what it did.
    for _device in ("cpu", "cuda"):
        torch.library.register_autocast("bgbench::composite", _device, torch.float32)


def _is_channels_last(t: Tensor) -> bool:
    """Whether ``t`` is laid out channels-last and not also contiguous NCHW (as a tensor of
    one channel is)."""
    return (t.dim() == 4 and not t.is_contiguous()
            and t.is_contiguous(memory_format=torch.channels_last))


_warned = False


def composite(x: Tensor, m: Tensor, b: Tensor | None = None, *,
              out: tuple[Tensor, Tensor, Tensor] | None = None) -> tuple[Tensor, Tensor, Tensor]:
    """Fused ``m * x + (1 - m) * b`` and the per-sample means of ``m`` and ``b``, in one pass.

    Args:
        x: images ``[N, C, H, W]``.
        m: mask ``[N, 1 | C, H, W]``.
        b: background ``[1 | N, 1 | C, H, W]``, or ``None`` for ``x * m``.
        out: optional contiguous ``(out [N, C, H, W], mean_m [N], mean_b [N])`` with x's dtype
            and device to write into, e.g. buffers reused across calls; no autograd then.

    Returns:
        ``out [N, C, H, W]`` (contiguous, or channels-last when ``x`` is), ``mean_m [N]`` and
        ``mean_b [N]`` (zeros when ``b`` is None), as ``composite_reference``. Differentiable
        in all three inputs. float32 and float64 on CPU; float32, float16 and bfloat16
        (float32 accumulation) on CUDA; float32 under autocast.
    """
    if out is not None:
        if not HAVE_EXTENSION:
            raise RuntimeError(f"composite(out=...) needs the compiled extension: {LOAD_ERROR}")
        if not (isinstance(out, tuple | list) and len(out) == 3):
            raise TypeError("composite: out must be a tuple (out, mean_m, mean_b)")
        torch.ops.bgbench.composite_into(x, m, b, *out)
        return tuple(out)
    if HAVE_EXTENSION:
        out_, mean_m, mean_b = torch.ops.bgbench.composite(x, m, b)
        if _is_channels_last(x):
            out_ = out_.contiguous(memory_format=torch.channels_last)
        return out_, mean_m, mean_b
    global _warned
    if not _warned:
        warnings.warn(f"composite falls back to composite_reference: {LOAD_ERROR}", stacklevel=2)
        _warned = True
    return composite_reference(x, m, b)
