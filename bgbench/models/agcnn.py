"""AG-CNN (Guan et al. 2018): a global branch, an attention crop, a local branch, a fusion head.

The heat map is the channel-wise maximum of the global branch's last convolutional feature
map (before its last pooling), upsampled to the image and min-max normalised per image. It
is thresholded at ``threshold``; the largest 8-connected component of the thresholded map is
found by a fixed number of max-pool label propagations (pure tensor ops, so the model exports
to ONNX with a dynamic batch); the image is cropped to that component's bounding box and
resized back to 32x32 with ``grid_sample`` (differentiable in the image). The box itself is
not differentiable, as in the original.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from bgbench.models.classifier import INPUT_SIZE, NUM_CLASSES, VGGClassifier


def largest_component(mask: Tensor, iterations: int) -> Tensor:
    """The largest 8-connected component of a binary ``[N, 1, H, W]`` mask (float 0/1).

    Every set pixel starts with a unique label; ``iterations`` rounds of 3x3 max-pooling
    within the mask spread the largest label over each component (exact when no component
    has a geodesic diameter above ``iterations``). An empty mask yields a full mask.
    """
    n, _, h, w = mask.shape
    ids = torch.arange(1, h * w + 1, dtype=mask.dtype, device=mask.device).reshape(1, 1, h, w)
    labels = ids * mask
    for _ in range(iterations):
        labels = F.max_pool2d(labels, 3, stride=1, padding=1) * mask
    flat = labels.reshape(n, h * w)
    counts = torch.zeros(n, h * w + 1, dtype=mask.dtype, device=mask.device)
    counts = counts.scatter_add(1, flat.long(), mask.reshape(n, h * w))
    # Label 0 (unmasked) always counts 0, so it wins only for an empty mask: then the
    # "component" is the whole image.
    best = counts.argmax(dim=1).to(mask.dtype)
    return (labels == best.reshape(n, 1, 1, 1)).to(mask.dtype)


def _edges(inside: Tensor, size: int, dtype: torch.dtype) -> tuple[Tensor, Tensor]:
    """First and one-past-last index where ``inside [N, size]`` is true, per row, as
    ``[N, 1, 1]`` of ``dtype``."""
    index = torch.arange(size, device=inside.device, dtype=dtype).reshape(1, size)
    first = torch.where(inside, index, float(size)).amin(dim=1)
    last = torch.where(inside, index, -1.0).amax(dim=1) + 1
    return first.reshape(-1, 1, 1), last.reshape(-1, 1, 1)


def _base_coordinates(size: int, like: Tensor) -> Tensor:
    """Pixel centres in normalised coordinates (align_corners=False), as ``affine_grid``
    computes them (multiplied, then divided), so the grid below matches it bit for bit."""
    return torch.linspace(-1, 1, size, device=like.device, dtype=like.dtype) * (size - 1) / size


def crop_to_mask(x: Tensor, region: Tensor) -> Tensor:
    """Crop each image of ``x [N, C, H, W]`` to the bounding box of ``region [N, 1, H, W]``
    and resize it back to ``H x W`` (bilinear); a full region gives the image unchanged."""
    n, _, h, w = x.shape
    # The box from the region's row and column projections, and the sampling grid built
    # per axis: bit for bit what masking every pixel and ``F.affine_grid`` give, but
    # exported, affine_grid's per-pixel product with the whole 2x3 matrix took about a
    # fifth of the model's onnxruntime time.
    y0, y1 = _edges(region.amax(dim=(1, 3)) > 0.5, h, x.dtype)
    x0, x1 = _edges(region.amax(dim=(1, 2)) > 0.5, w, x.dtype)
    # Pixel edges e map to normalised coordinates 2e/size - 1 (align_corners=False).
    sx, cx = (x1 - x0) / w, (x0 + x1) / w - 1
    sy, cy = (y1 - y0) / h, (y0 + y1) / h - 1
    gx = _base_coordinates(w, x).reshape(1, 1, w) * sx + cx
    gy = _base_coordinates(h, x).reshape(1, h, 1) * sy + cy
    grid = torch.stack([gx.expand(n, h, w), gy.expand(n, h, w)], dim=3)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


class AGCNN(nn.Module):
    """Attention-guided CNN: ``[N, 1, 32, 32]`` in [0, 1] -> fusion logits ``[N, 10]``.

    Both branches are VGG-block classifiers; the fusion head is one linear layer on their
    concatenated 128-d embeddings. 715,038 parameters with the defaults.
    """

    def __init__(self, threshold: float = 0.7, cc_iterations: int = 32,
                 num_classes: int = NUM_CLASSES) -> None:
        super().__init__()
        self.threshold = threshold
        self.cc_iterations = cc_iterations
        self.global_branch = VGGClassifier(num_classes=num_classes)
        self.local_branch = VGGClassifier(num_classes=num_classes)
        hidden = self.global_branch.head.in_features + self.local_branch.head.in_features
        self.fusion = nn.Linear(hidden, num_classes)

    def attention_crop(self, x: Tensor, last_map: Tensor) -> Tensor:
        """The local branch's input: ``x`` cropped to the largest hot region of ``last_map``."""
        n = x.shape[0]
        heat = last_map.detach().amax(dim=1, keepdim=True)
        heat = F.interpolate(heat, size=(INPUT_SIZE, INPUT_SIZE), mode="bilinear",
                             align_corners=False)
        lo = heat.amin(dim=(2, 3), keepdim=True)
        hi = heat.amax(dim=(2, 3), keepdim=True)
        heat = (heat - lo) / (hi - lo + 1e-6)
        region = largest_component((heat >= self.threshold).to(x.dtype), self.cc_iterations)
        return crop_to_mask(x, region.reshape(n, 1, INPUT_SIZE, INPUT_SIZE))

    def branches(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """``(global_logits, local_logits, fusion_logits)`` for training each part."""
        *convs, last_pool = self.global_branch.features.children()
        last_map = x
        for layer in convs:
            last_map = layer(last_map)
        g_embed = self.global_branch.embed(last_pool(last_map))
        crop = self.attention_crop(x, last_map)
        l_embed = self.local_branch.embed(self.local_branch.features(crop))
        fused = self.fusion(torch.cat([g_embed, l_embed], dim=1))
        return self.global_branch.head(g_embed), self.local_branch.head(l_embed), fused

    def forward(self, x: Tensor) -> Tensor:
        return self.branches(x)[2]
