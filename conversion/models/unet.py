"""U-Net as in the lecture: an encoder/decoder with skip connections and transpose-convolution upsampling."""
from __future__ import annotations

from typing import Any

from ..extras import require

torch = require("torch")
nn = torch.nn


def _block(cin: int, cout: int) -> Any:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
        nn.Conv2d(cout, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class UNetEncoder(nn.Module):  # type: ignore[name-defined]  # torch is an optional extra, typed Any
    """The contracting path: conv blocks with max-pooling, then the bottleneck (the "backbone")."""

    def __init__(self, in_channels: int, chans: list[int]) -> None:
        super().__init__()
        depth = len(chans) - 1
        self.blocks = nn.ModuleList([_block(in_channels if i == 0 else chans[i - 1], chans[i]) for i in range(depth)])
        self.pool = nn.MaxPool2d(2)
        self.bottleneck = _block(chans[depth - 1], chans[depth])

    def forward(self, x: Any) -> tuple[Any, list[Any]]:
        skips = []
        for block in self.blocks:
            x = block(x)
            skips.append(x)
            x = self.pool(x)
        return self.bottleneck(x), skips


class UNet(nn.Module):  # type: ignore[name-defined]  # torch is an optional extra, typed Any
    """(B, in_channels, H, W) -> logits (B, num_classes, H, W); H and W divisible by 2**depth.

    depth: number of down-sampling steps; base: channels of the first level (doubled each level).
    ``backbone`` (the encoder) is what transfer learning loads, freezes or fine-tunes at a lower LR.
    """

    def __init__(self, num_classes: int = 2, in_channels: int = 3, depth: int = 4, base: int = 16) -> None:
        super().__init__()
        if depth < 1 or base < 1:
            raise ValueError(f"U-Net depth and base must be >= 1, got {depth}, {base}")
        chans = [base * 2 ** i for i in range(depth + 1)]
        self.backbone = UNetEncoder(in_channels, chans)
        self.up = nn.ModuleList([nn.ConvTranspose2d(chans[i + 1], chans[i], 2, stride=2)
                                 for i in reversed(range(depth))])
        self.decoder = nn.ModuleList([_block(chans[i] * 2, chans[i]) for i in reversed(range(depth))])
        self.classifier = nn.Conv2d(chans[0], num_classes, 1)
        self.depth = depth

    def forward(self, x: Any) -> Any:
        x, skips = self.backbone(x)
        for up, block, skip in zip(self.up, self.decoder, reversed(skips)):
            x = block(torch.cat([up(x), skip], dim=1))
        return self.classifier(x)
