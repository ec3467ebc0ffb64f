"""The fused composite op (torch.ops.bgbench.composite) against its pure-torch reference."""

from __future__ import annotations

import warnings

import pytest

torch = pytest.importorskip("torch")
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from torch.utils._python_dispatch import TorchDispatchMode  # noqa: E402

from bgbench import ops  # noqa: E402

needs_ext = pytest.mark.skipif(not ops.HAVE_EXTENSION, reason="bgbench._C is not built")
pytestmark = needs_ext


def cuda_test(fn):
    """Marks a test ``cuda`` (``pytest -m cuda``) and skips it where there is no GPU."""
    skip = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
    return pytest.mark.cuda(skip(fn))

# (x, m, b) shapes covering every broadcast the op accepts; None is no background.
CASES = [
    ((2, 3, 4, 5), (2, 1, 4, 5), (2, 3, 4, 5)),
    ((2, 3, 4, 5), (2, 3, 4, 5), (1, 3, 4, 5)),
    ((2, 3, 4, 5), (2, 1, 4, 5), (2, 1, 4, 5)),
    ((3, 2, 3, 3), (3, 2, 3, 3), (1, 1, 3, 3)),
    ((1, 1, 6, 7), (1, 1, 6, 7), (1, 1, 6, 7)),
    ((2, 3, 4, 5), (2, 1, 4, 5), None),
]


def make(shapes, dtype=torch.float64, device="cpu", requires_grad=True, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return tuple(None if s is None else
                 torch.rand(s, generator=gen, dtype=torch.float64).to(device, dtype)
                 .requires_grad_(requires_grad) for s in shapes)


def outputs_and_grads(fn, x, m, b, seed=1):
    """Forward, then backward from random output gradients; returns outputs and input grads."""
    out = fn(x, m, b)
    gen = torch.Generator().manual_seed(seed)
    grads = [torch.randn(o.shape, generator=gen, dtype=torch.float64).to(o) for o in out]
    inputs = [t for t in (x, m, b) if t is not None and t.requires_grad]
    # Without a background the reference's mean_b is a constant, outside the graph.
    pairs = [(o, g) for o, g in zip(out, grads, strict=True) if o.requires_grad]
    got = torch.autograd.grad([o for o, _ in pairs], inputs, [g for _, g in pairs])
    return [o.detach() for o in out], list(got)


def assert_matches_reference(x, m, b, **tol):
    want_out, want_grad = outputs_and_grads(ops.composite_reference, x, m, b)
    got_out, got_grad = outputs_and_grads(ops.composite, x, m, b)
    for got, want in zip(got_out + got_grad, want_out + want_grad, strict=True):
        torch.testing.assert_close(got, want, **tol)


@pytest.mark.parametrize("shapes", CASES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_matches_reference(shapes, dtype):
    assert_matches_reference(*make(shapes, dtype))


@st.composite
def broadcast_case(draw):
    n, c = draw(st.integers(1, 4)), draw(st.integers(1, 3))
    h, w = draw(st.integers(1, 40)), draw(st.integers(1, 40))
    m = (n, draw(st.sampled_from([1, c])), h, w)
    b = draw(st.sampled_from([None, (n, c, h, w), (1, c, h, w), (n, 1, h, w), (1, 1, h, w)]))
    return (n, c, h, w), m, b


@settings(max_examples=60, deadline=None)
@given(broadcast_case(), st.sampled_from([torch.float32, torch.float64]), st.integers(0, 2**16))
def test_matches_reference_random_shapes(shapes, dtype, seed):
    assert_matches_reference(*make(shapes, dtype, seed=seed))


@pytest.mark.parametrize("shapes", CASES)
def test_gradcheck(shapes):
    x, m, b = make(shapes)
    assert torch.autograd.gradcheck(lambda *t: ops.composite(*t), (x, m, b))


@pytest.mark.parametrize("shapes", CASES)
def test_opcheck(shapes):
    torch.library.opcheck(torch.ops.bgbench.composite.default, make(shapes))


@pytest.mark.parametrize("mask", [(True, False, True), (False, True, False)])
def test_opcheck_backward(mask):
    x, m, b = make(CASES[0], requires_grad=False)
    grads = (torch.rand_like(x), torch.rand(2, dtype=x.dtype), torch.rand(2, dtype=x.dtype))
    torch.library.opcheck(torch.ops.bgbench.composite_backward.default,
                          (*grads, x, m, b, list(mask)))


def test_large_images_split_into_spans():
    # 128 x 128 pixels is two CPU spans per sample: partial sums must be added back up.
    assert_matches_reference(*make(((2, 2, 128, 128), (2, 1, 128, 128), (1, 2, 128, 128)),
                                   torch.float32), rtol=1e-5, atol=1e-5)


def test_non_contiguous_inputs():
    x, m, b = make(((2, 3, 8, 9), (2, 1, 8, 9), (2, 3, 8, 9)), torch.float32)
    x_cl = x.detach().to(memory_format=torch.channels_last).requires_grad_()
    m_t = m.detach().transpose(2, 3).contiguous().transpose(2, 3).requires_grad_()
    b_sliced = torch.rand(2, 3, 8, 18)[..., ::2].requires_grad_()
    assert not (x_cl.is_contiguous() or m_t.is_contiguous() or b_sliced.is_contiguous())
    assert_matches_reference(x_cl, m_t, b_sliced)


def test_channels_last_in_channels_last_out():
    x, m, b = make(((2, 3, 8, 9), (2, 1, 8, 9), (2, 3, 8, 9)), torch.float32,
                   requires_grad=False)
    x, b = (t.to(memory_format=torch.channels_last).requires_grad_() for t in (x, b))
    out = ops.composite(x, m, b)[0]
    assert out.is_contiguous(memory_format=torch.channels_last) and not out.is_contiguous()
    assert ops.composite(x.detach().contiguous(), m, b.detach())[0].is_contiguous()
    assert_matches_reference(x, m.requires_grad_(), b)


def test_autocast_runs_the_op_in_float32():
    x, m, b = make(((2, 1, 8, 9), (2, 1, 8, 9), (2, 1, 8, 9)), torch.float32,
                   requires_grad=False)
    m16 = m.bfloat16().requires_grad_()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out, mean_m, mean_b = ops.composite(x, m16, b)
    assert {t.dtype for t in (out, mean_m, mean_b)} == {torch.float32}
    want = ops.composite_reference(x, m16.detach().float(), b)
    for got, ref in zip((out, mean_m, mean_b), want, strict=True):
        torch.testing.assert_close(got, ref)
    out.sum().backward()
    assert m16.grad.dtype == torch.bfloat16
    torch.testing.assert_close(m16.grad.float(), (x - b).bfloat16().float())


class _Recorder(TorchDispatchMode):
    def __init__(self):
        super().__init__()
        self.calls = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.calls.append((func, args))
        return func(*args, **(kwargs or {}))


@pytest.mark.parametrize("need", [(True, False, False), (False, True, False),
                                  (False, False, True), (True, True, True)])
def test_backward_computes_only_needed_gradients(need):
    x, m, b = make(CASES[0], requires_grad=False)
    for t, flag in zip((x, m, b), need, strict=True):
        t.requires_grad_(flag)
    out = ops.composite(x, m, b)
    with _Recorder() as rec:
        torch.autograd.backward(out, [torch.ones_like(o) for o in out])
    # The dispatcher drops an argument equal to its default ([True, True, True]).
    masks = [list(args[6]) if len(args) > 6 else [True] * 3 for func, args in rec.calls
             if func == torch.ops.bgbench.composite_backward.default]
    assert masks == [list(need)]
    for t, flag in zip((x, m, b), need, strict=True):
        assert (t.grad is not None) == flag


@pytest.mark.parametrize("backend", ["aot_eager", pytest.param("inductor", marks=pytest.mark.slow)])
def test_torch_compile_fullgraph(backend):
    def loss(x, m, b):
        out, mean_m, mean_b = ops.composite(x, m, b)
        return out.square().mean() + ops.area_penalty(mean_m, 0.2) + ops.area_penalty(mean_b, 0.5)

    x, m, b = make(CASES[0], torch.float32)
    compiled = torch.compile(loss, fullgraph=True, backend=backend)
    got = compiled(x, m, b)
    got_grads = torch.autograd.grad(got, (x, m, b))

    def ref(x, m, b):
        out, mean_m, mean_b = ops.composite_reference(x, m, b)
        return out.square().mean() + ops.area_penalty(mean_m, 0.2) + ops.area_penalty(mean_b, 0.5)

    want = ref(x, m, b)
    torch.testing.assert_close(got, want)
    for g, w in zip(got_grads, torch.autograd.grad(want, (x, m, b)), strict=True):
        torch.testing.assert_close(g, w)


@pytest.mark.parametrize("x_shape, m_shape, b_shape, match", [
    ((2, 3, 4), (2, 1, 4), None, r"x must have shape \[N, C, H, W\], got \[2, 3, 4\]"),
    ((2, 3, 4, 5), (2, 2, 4, 5), None, r"m must have shape \[N, 1 or C, H, W\] = \[2, 1 or 3, 4, 5\]"),
    ((2, 3, 4, 5), (1, 1, 4, 5), None, r"m must have shape .* got \[1, 1, 4, 5\]"),
    ((2, 3, 4, 5), (2, 1, 4, 5), (3, 3, 4, 5), r"b must have shape \[1 or N, 1 or C, H, W\]"),
    ((2, 3, 4, 5), (2, 1, 4, 5), (2, 3, 5, 4), r"b must have shape .* got \[2, 3, 5, 4\]"),
])
def test_bad_shapes(x_shape, m_shape, b_shape, match):
    x, m, b = make((x_shape, m_shape, b_shape), torch.float32, requires_grad=False)
    with pytest.raises(RuntimeError, match=match):
        torch.ops.bgbench.composite(x, m, b)


def test_bad_dtypes():
    x, m, b = make(CASES[0], torch.float32, requires_grad=False)
    with pytest.raises(RuntimeError, match="m must have x's dtype Float, got Double"):
        torch.ops.bgbench.composite(x, m.double(), b)
    with pytest.raises(RuntimeError, match="x must be floating point, got Int"):
        torch.ops.bgbench.composite(x.int(), m.int(), b.int())
    with pytest.raises(RuntimeError, match="on CPU x must be float32 or float64, got Half"):
        torch.ops.bgbench.composite(x.half(), m.half(), b.half())


def test_bad_backward_gradients():
    x, m, b = make(CASES[0], torch.float32, requires_grad=False)
    with pytest.raises(RuntimeError, match=r"grad_mean_m must have shape \[N\] = \[2\]"):
        torch.ops.bgbench.composite_backward(x, torch.ones(3), torch.ones(2), x, m, b)
    with pytest.raises(RuntimeError, match=r"grad_out must have x's shape"):
        torch.ops.bgbench.composite_backward(x[:, :1], torch.ones(2), torch.ones(2), x, m, b)


def empty_outputs(x):
    n = x.shape[0]
    return x.new_empty(x.shape), x.new_empty(n), x.new_empty(n)


@pytest.mark.parametrize("shapes", CASES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_out_writes_what_composite_returns(shapes, dtype):
    x, m, b = make(shapes, dtype, requires_grad=False)
    # Garbage in the given outputs must not leak into the results (e.g. mean_b without b).
    out = tuple(t.fill_(float("nan")) for t in empty_outputs(x))
    got = ops.composite(x, m, b, out=out)
    assert all(g is o for g, o in zip(got, out, strict=True))
    for g, want in zip(got, ops.composite_reference(x, m, b), strict=True):
        torch.testing.assert_close(g, want)


@pytest.mark.parametrize("shapes", CASES[:2])
def test_opcheck_into(shapes):
    x, m, b = make(shapes, requires_grad=False)
    torch.library.opcheck(torch.ops.bgbench.composite_into.default, (x, m, b, *empty_outputs(x)))


def test_out_errors():
    x, m, b = make(CASES[0], torch.float32, requires_grad=False)
    out, mean_m, mean_b = empty_outputs(x)
    with pytest.raises(RuntimeError, match="out must be a contiguous tensor of x's shape"):
        ops.composite(x, m, b, out=(out[:, :, :, :4], mean_m, mean_b))
    with pytest.raises(RuntimeError, match=r"got \[2, 3, 4, 5\] \(not contiguous\)"):
        ops.composite(x, m, b, out=(out.transpose(2, 3).contiguous().transpose(2, 3), mean_m,
                                    mean_b))
    with pytest.raises(RuntimeError, match=r"mean_b must be a contiguous tensor of shape \[N\]"):
        ops.composite(x, m, b, out=(out, mean_m, mean_b[:1]))
    with pytest.raises(RuntimeError, match="out must have x's dtype"):
        ops.composite(x, m, b, out=(out.double(), mean_m, mean_b))
    with pytest.raises(RuntimeError, match="refer to a single memory location"):
        ops.composite(x, m, b, out=(x, mean_m, mean_b))
    with pytest.raises(TypeError, match=r"out must be a tuple \(out, mean_m, mean_b\)"):
        ops.composite(x, m, b, out=out)
    x.requires_grad_()
    with pytest.raises(RuntimeError, match="does not support autograd"):
        ops.composite(x, m, b, out=(out, mean_m, mean_b))
    with torch.no_grad():
        ops.composite(x, m, b, out=(out, mean_m, mean_b))
    torch.testing.assert_close(out, ops.composite_reference(x, m, b)[0].detach())


def test_fallback_warns_once(monkeypatch):
    monkeypatch.setattr(ops, "HAVE_EXTENSION", False)
    monkeypatch.setattr(ops, "_warned", False)
    x, m, b = make(CASES[0], requires_grad=False)
    with pytest.warns(UserWarning, match="falls back to composite_reference"):
        first = ops.composite(x, m, b)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        second = ops.composite(x, m, b)
    for got, want in zip(first + second, ops.composite_reference(x, m, b) * 2, strict=True):
        torch.testing.assert_close(got, want)


def test_area_penalty():
    mean = torch.tensor([0.1, 0.3, 0.6])
    torch.testing.assert_close(ops.area_penalty(mean, 0.2), torch.tensor((0.1 + 0.4) / 3))


# ---- CUDA (skipped where there is no GPU) ----

@pytest.mark.parametrize("shapes", CASES)
@pytest.mark.parametrize("dtype, tol", [(torch.float32, 1e-5), (torch.float16, 2e-2),
                                        (torch.bfloat16, 5e-2), (torch.float64, 1e-10)])
@cuda_test
def test_cuda_matches_reference(shapes, dtype, tol):
    x, m, b = make(shapes, dtype, "cuda")
    assert_matches_reference(x, m, b, rtol=tol, atol=tol)


@pytest.mark.parametrize("shape", [(64, 3, 256, 256), (5, 3, 33, 31), (128, 1, 32, 32)])
@cuda_test
def test_cuda_large_and_unaligned(shape):
    n, c, h, w = shape
    x, m, b = make((shape, (n, 1, h, w), (n, c, h, w)), torch.float32, "cuda")
    assert_matches_reference(x, m, b, rtol=1e-4, atol=1e-4)
    # Storage offset by one element: the kernel must take its unvectorised path.
    xs = torch.rand(x.numel() + 1, device="cuda")[1:].view(shape).requires_grad_()
    assert_matches_reference(xs, m, b, rtol=1e-4, atol=1e-4)


@cuda_test
def test_cuda_opcheck_and_errors():
    x, m, b = make(CASES[0], torch.float32, "cuda")
    torch.library.opcheck(torch.ops.bgbench.composite.default, (x, m, b))
    with pytest.raises(RuntimeError, match="m must be on x's device cuda"):
        torch.ops.bgbench.composite(x, m.detach().cpu(), b)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
@cuda_test
def test_cuda_out(dtype):
    x, m, b = make(((64, 3, 64, 64), (64, 1, 64, 64), (64, 3, 64, 64)), dtype, "cuda",
                   requires_grad=False)
    got = ops.composite(x, m, b, out=empty_outputs(x))
    for g, want in zip(got, ops.composite(x, m, b), strict=True):
        torch.testing.assert_close(g, want, rtol=0, atol=0)
    torch.library.opcheck(torch.ops.bgbench.composite_into.default, (x, m, b, *empty_outputs(x)))


def test_benchmark_refuses_the_fallback(monkeypatch):
    from bgbench.bench import op

    monkeypatch.setattr(ops, "HAVE_EXTENSION", False)
    with pytest.raises(SystemExit, match="refusing to time the pure-torch fallback"):
        op.main(["--no-compile"])
