"""LPIPS (Zhang et al. 2018, "The Unreasonable Effectiveness of Deep Features as a Perceptual
Metric"), version 0.1 with the VGG-16 backbone, in plain torch (no torchvision, no downloads).

``d(x, y) = Σ_l mean_hw( w_l · (f̂_l(x) - f̂_l(y))² )`` over the ReLU outputs after conv1_2,
conv2_2, conv3_3, conv4_3, conv5_3 (torchvision ``features`` indices 3, 8, 15, 22, 29), where
``f̂`` is the feature normalised to unit length along channels and ``w_l ≥ 0`` are the learned
1×1 "lin" weights. Images in [0, 1] are mapped to [-1, 1] and standardised with LPIPS's
scaling layer (shift ``(-.030, -.088, -.188)``, scale ``(.458, .448, .450)``).

Weights (``load_weights``): one state dict holding the ImageNet VGG-16 backbone in torchvision's
layout (``features.<i>.weight|bias``) and the five lin layers, ``lin<k>.weight`` ``[1, C, 1, 1]``
(the ``lpips`` package's ``lin<k>.model.1.weight`` names are accepted too). Without weights the
network is random and the metric is meaningless: callers must load them first.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

# torchvision's "D" configuration: channels, "M" = 2x2 max-pool
VGG16_LAYOUT = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M",
                512, 512, 512, "M", 512, 512, 512, "M")  # fmt: skip
TAPS = (3, 8, 15, 22, 29)  # relu1_2, relu2_2, relu3_3, relu4_3, relu5_3
TAP_CHANNELS = (64, 128, 256, 512, 512)
SHIFT = (-0.030, -0.088, -0.188)
SCALE = (0.458, 0.448, 0.450)


def vgg16_features(up_to: int = TAPS[-1]) -> nn.Sequential:
    """VGG-16 ``features`` (random init) with torchvision indices, cut after index ``up_to``."""
    layers: list[nn.Module] = []
    channels = 3
    for item in VGG16_LAYOUT:
        if item == "M":
            layers.append(nn.MaxPool2d(2, 2))
        else:
            layers += [nn.Conv2d(channels, item, 3, padding=1), nn.ReLU()]
            channels = item
    return nn.Sequential(*layers[: up_to + 1])


class LPIPS(nn.Module):
    """LPIPS distance per image: ``forward(x, y)`` with ``x, y [N, 3, H, W]`` in [0, 1] → ``[N]``
    (0 for identical images, larger = more different). Frozen; see the module doc for weights."""

    def __init__(self):
        super().__init__()
        self.features = vgg16_features()
        self.lins = nn.ModuleList(nn.Conv2d(c, 1, 1, bias=False) for c in TAP_CHANNELS)
        self.register_buffer("shift", torch.tensor(SHIFT).view(1, 3, 1, 1), False)
        self.register_buffer("scale", torch.tensor(SCALE).view(1, 3, 1, 1), False)
        self.requires_grad_(False).eval()

    def load_weights(self, state: dict[str, Tensor]) -> None:
        """Load backbone + lin weights (see the module doc); a missing entry raises KeyError."""
        picked = {}
        for key in self.features.state_dict():
            name = f"features.{key}"
            if name not in state:
                raise KeyError(f"LPIPS weights lack {name} (VGG-16 backbone, torchvision layout)")
            picked[name] = state[name]
        for k in range(len(TAPS)):
            for name in (f"lin{k}.weight", f"lin{k}.model.1.weight"):
                if name in state:
                    picked[f"lins.{k}.weight"] = state[name]
                    break
            else:
                raise KeyError(f"LPIPS weights lack lin{k}.weight (or lin{k}.model.1.weight)")
        self.load_state_dict(picked)

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        if x.shape != y.shape or x.dim() != 4 or x.shape[1] != 3:
            raise ValueError(f"expected two [N, 3, H, W] batches, got {x.shape} and {y.shape}")
        n = x.shape[0]
        h = (torch.cat([x, y]).float() * 2 - 1 - self.shift) / self.scale
        total = x.new_zeros(n, dtype=torch.float32)
        taps = dict(zip(TAPS, self.lins))
        for i, layer in enumerate(self.features):
            h = layer(h)
            if i in taps:
                unit = h / (h.pow(2).sum(1, keepdim=True).sqrt() + 1e-10)
                diff = (unit[:n] - unit[n:]).pow(2)
                total = total + taps[i](diff).mean(dim=(1, 2, 3))
        return total
