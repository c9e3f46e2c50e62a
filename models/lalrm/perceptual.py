"""VGG-19 perceptual loss (Wonderland §3.3: "perceptual loss based on a VGG-19 network"), built in
plain torch (no torchvision) with torchvision's layer indices, so a converted ImageNet VGG-19
``features.*`` state dict loads directly (``load_features``). Weights are never downloaded: the
training module reads them from a local safetensors file.

Loss (Chen & Koltun 2017, as used by GS-LRM, the LaLRM's transformer reference): images in
[0, 1] are ImageNet-normalised, and the mean absolute differences of the ReLU outputs after
conv1_2, conv2_2, conv3_2, conv4_2, conv5_2 are summed with weights 1/2.6, 1/4.8, 1/3.7, 1/5.6,
10/1.5.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

# torchvision's "E" configuration: channels, "M" = 2x2 max-pool
VGG19_LAYOUT = (64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M",
                512, 512, 512, 512, "M", 512, 512, 512, 512, "M")  # fmt: skip
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
DEFAULT_LAYERS = ("relu1_2", "relu2_2", "relu3_2", "relu4_2", "relu5_2")
DEFAULT_WEIGHTS = (1 / 2.6, 1 / 4.8, 1 / 3.7, 1 / 5.6, 10 / 1.5)


def vgg19_layer_names() -> list[str]:
    """Names of the ``features`` modules in torchvision order (conv1_1, relu1_1, ..., pool5)."""
    names, block, conv = [], 1, 1
    for item in VGG19_LAYOUT:
        if item == "M":
            names.append(f"pool{block}")
            block, conv = block + 1, 1
        else:
            names += [f"conv{block}_{conv}", f"relu{block}_{conv}"]
            conv += 1
    return names


def vgg19_features(up_to: int | None = None) -> nn.Sequential:
    """VGG-19 ``features`` (random init) with torchvision indices, cut after index ``up_to``."""
    layers: list[nn.Module] = []
    channels = 3
    for item in VGG19_LAYOUT:
        if item == "M":
            layers.append(nn.MaxPool2d(2, 2))
        else:
            layers += [nn.Conv2d(channels, item, 3, padding=1), nn.ReLU()]
            channels = item
    return nn.Sequential(*layers[: None if up_to is None else up_to + 1])


class VGG19PerceptualLoss(nn.Module):
    """Weighted L1 between VGG-19 feature maps of ``pred`` and ``target`` ``[N, 3, H, W]`` (any
    leading dims are flattened) in [0, 1]; scalar ≥ 0, 0 for identical images. Frozen.

    Until ``load_features`` is called the network is randomly initialised (tests only).
    """

    def __init__(
        self,
        layers: tuple[str, ...] = DEFAULT_LAYERS,
        weights: tuple[float, ...] = DEFAULT_WEIGHTS,
    ):
        super().__init__()
        if len(layers) != len(weights):
            raise ValueError("need one weight per layer")
        names = vgg19_layer_names()
        unknown = [n for n in layers if n not in names]
        if unknown:
            raise ValueError(f"unknown VGG-19 layers {unknown}")
        self.taps = {names.index(n): w for n, w in zip(layers, weights)}
        self.features = vgg19_features(max(self.taps))
        self.features.requires_grad_(False).eval()
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), False)

    def load_features(self, state: dict[str, Tensor]) -> None:
        """Load torchvision-layout weights: keys ``features.<i>.weight|bias`` (or ``<i>.…``);
        entries beyond the deepest tap (and the classifier) are ignored, missing ones raise."""
        own = self.features.state_dict()
        picked = {}
        for key in own:
            for candidate in (f"features.{key}", key):
                if candidate in state:
                    picked[key] = state[candidate]
                    break
            else:
                raise KeyError(f"VGG-19 weights lack features.{key}")
        self.features.load_state_dict(picked)

    def train(self, mode: bool = True) -> VGG19PerceptualLoss:
        super().train(mode)
        self.features.eval()
        return self

    def forward(self, pred: Tensor, target: Tensor) -> Tensor:
        if pred.shape != target.shape:
            raise ValueError(f"shape mismatch: {tuple(pred.shape)} vs {tuple(target.shape)}")
        pred, target = pred.flatten(0, -4), target.flatten(0, -4)
        x = (torch.cat([pred, target]) - self.mean.to(pred.dtype)) / self.std.to(pred.dtype)
        n = pred.shape[0]
        loss = pred.new_zeros((), dtype=torch.float32)
        for i, layer in enumerate(self.features):
            x = layer(x)
            if i in self.taps:
                loss = loss + self.taps[i] * (x[:n] - x[n:]).abs().float().mean()
        return loss
