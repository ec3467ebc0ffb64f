"""The networks: shapes, parameter counts, AG-CNN's crop, and ONNX exportability."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import ndimage

from bgbench.models import (
    AGCNN,
    MaskUNet,
    TiledBackgroundGenerator,
    VGGClassifier,
    count_parameters,
    crop_to_mask,
    largest_component,
)

# Tiny tensors: one thread is as fast, and does not stall when the cores are shared.
pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_classifier_shape_and_size():
    model = VGGClassifier()
    assert model(torch.rand(3, 1, 32, 32)).shape == (3, 10)
    # 3 convs (320 + 18,496 + 73,856) + dense 2048x128 (262,272) + dense 128x10 (1,290)
    assert count_parameters(model) == 356_234


def test_mask_generator_is_a_mask_starting_small():
    model = MaskUNet(16, init_area=0.1)
    with torch.no_grad():
        m = model(torch.rand(4, 1, 32, 32))
    assert m.shape == (4, 1, 32, 32)
    assert float(m.min()) >= 0 and float(m.max()) <= 1
    assert abs(float(m.mean()) - 0.1) < 0.03
    assert count_parameters(model) == 116_753


def test_background_generator_tiles_are_independent():
    torch.manual_seed(0)
    model = TiledBackgroundGenerator(32)
    z = torch.randn(2, 4, 16)
    with torch.no_grad():
        b = model(z)
    assert b.shape == (2, 1, 32, 32)
    assert float(b.min()) >= 0 and float(b.max()) <= 1
    z2 = z.clone()
    z2[:, 3] = torch.randn(2, 16)  # the fourth tile: bottom right
    with torch.no_grad():
        changed = (model(z2) - b).abs()[:, 0] > 0
    assert changed[:, 16:, 16:].all()
    assert not changed[:, :16].any() and not changed[:, :, :16].any()


def test_agcnn_shape_and_size():
    model = AGCNN()
    assert model(torch.rand(2, 1, 32, 32)).shape == (2, 10)
    g, local, fused = model.branches(torch.rand(2, 1, 32, 32))
    assert g.shape == local.shape == fused.shape == (2, 10)
    assert count_parameters(model) == 2 * 356_234 + 256 * 10 + 10


def test_largest_component_matches_scipy():
    rng = np.random.default_rng(0)
    masks = (rng.random((6, 1, 16, 16)) < 0.45).astype(np.float32)
    got = largest_component(torch.from_numpy(masks), iterations=256).numpy()
    for mask, comp in zip(masks, got, strict=True):
        labels, count = ndimage.label(mask[0], structure=np.ones((3, 3)))
        sizes = np.bincount(labels.ravel())[1:]
        # ties make the choice ambiguous: accept any largest component
        largest = [labels == i + 1 for i in np.flatnonzero(sizes == sizes.max())]
        assert any(np.array_equal(comp[0] > 0, c) for c in largest)


def test_largest_component_of_empty_mask_is_everything():
    assert largest_component(torch.zeros(1, 1, 8, 8), 4).min() == 1


def test_crop_to_mask_crops_the_box():
    img = torch.zeros(1, 1, 8, 8)
    img[0, 0, 2:4, 4:8] = 1.0
    region = torch.zeros(1, 1, 8, 8)
    region[0, 0, 2:4, 4:8] = 1
    crop = crop_to_mask(img, region)
    # Bilinear sampling blends in the pixels just outside the box along its edges.
    assert torch.allclose(crop[..., 2:6, 1:], torch.ones(1, 1, 4, 7))
    assert float(crop.mean()) > 0.8
    full = torch.rand(2, 1, 8, 8)
    assert torch.allclose(crop_to_mask(full, torch.ones(2, 1, 8, 8)), full, atol=1e-6)


def _affine_grid_crop(x: torch.Tensor, region: torch.Tensor) -> torch.Tensor:
    """The crop written the textbook way: the box by masking every pixel's coordinates,
    the grid by ``F.affine_grid`` from the 2x3 matrix."""
    n, _, h, w = x.shape
    inside = region > 0.5
    ys = torch.arange(h, dtype=x.dtype).reshape(1, 1, h, 1).expand(n, 1, h, w)
    xs = torch.arange(w, dtype=x.dtype).reshape(1, 1, 1, w).expand(n, 1, h, w)
    y0 = torch.where(inside, ys, float(h)).amin(dim=(1, 2, 3))
    y1 = torch.where(inside, ys, -1.0).amax(dim=(1, 2, 3)) + 1
    x0 = torch.where(inside, xs, float(w)).amin(dim=(1, 2, 3))
    x1 = torch.where(inside, xs, -1.0).amax(dim=(1, 2, 3)) + 1
    sx, cx = (x1 - x0) / w, (x0 + x1) / w - 1
    sy, cy = (y1 - y0) / h, (y0 + y1) / h - 1
    zero = torch.zeros_like(sx)
    theta = torch.stack([torch.stack([sx, zero, cx], dim=1),
                         torch.stack([zero, sy, cy], dim=1)], dim=1)
    grid = torch.nn.functional.affine_grid(theta, [n, 1, h, w], align_corners=False)
    return torch.nn.functional.grid_sample(x, grid, mode="bilinear", padding_mode="border",
                                           align_corners=False)


@pytest.mark.parametrize("size", [32, 28, 8])
def test_crop_to_mask_is_the_affine_grid_crop_bit_for_bit(size):
    # Same-seed AG-CNN training depends on it, and the exported graph is the faster form.
    gen = torch.Generator().manual_seed(size)
    x = torch.rand(64, 1, size, size, generator=gen)
    blobs = torch.nn.functional.interpolate(torch.rand(64, 1, 4, 4, generator=gen),
                                            size=(size, size), mode="bilinear")
    region = largest_component((blobs > 0.6).float(), size)
    assert torch.equal(crop_to_mask(x, region), _affine_grid_crop(x, region))


def test_agcnn_crop_is_differentiable_in_the_image():
    model = AGCNN()
    x = torch.rand(2, 1, 32, 32, requires_grad=True)
    model(x).sum().backward()
    assert x.grad is not None and float(x.grad.abs().sum()) > 0


@pytest.mark.slow
@pytest.mark.parametrize("factory", [VGGClassifier, AGCNN], ids=["vgg", "agcnn"])
def test_classifier_exports_to_onnx(tmp_path, factory):
    import onnxruntime as ort

    torch.manual_seed(0)
    model = factory().eval()
    program = torch.onnx.export(
        model, (torch.rand(2, 1, 32, 32),), dynamo=True, opset_version=18,
        dynamic_shapes=({0: torch.export.Dim("batch")},))
    path = tmp_path / "model.onnx"
    program.save(str(path))
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    for n in (1, 5):
        x = torch.rand(n, 1, 32, 32)
        got = session.run(None, {name: x.numpy()})[0]
        with torch.no_grad():
            want = model(x).numpy()
        assert got.shape == (n, 10)
        np.testing.assert_allclose(got, want, atol=1e-4, rtol=1e-4)
