"""Where pulled models live: ``$CLEARLM_HOME/models/NAME/`` (default: the user's cache directory)."""

from __future__ import annotations

from pathlib import Path

from clearlm.paths import clearlm_home


def model_dir(name: str) -> Path:
    """The folder holding one catalog model's assembled GGUF and its converted checkpoint."""
    return clearlm_home() / "models" / name


def gguf_path(name: str) -> Path:
    return model_dir(name) / f"{name}.gguf"


def checkpoint_dir(name: str) -> Path:
    """The transformers checkpoint converted once from the GGUF (``save_pretrained`` layout)."""
    return model_dir(name) / "transformers"


def dir_size(path: Path) -> int:
    """Total size in bytes of the files under ``path`` (0 when it does not exist)."""
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.exists() else 0
