"""Where clearlm keeps its files: ``$CLEARLM_HOME`` (default: the user's cache directory)."""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs


def clearlm_home() -> Path:
    """The root of clearlm's files: ``$CLEARLM_HOME`` if set, else ``platformdirs.user_cache_dir("clearlm")``."""
    env = os.environ.get("CLEARLM_HOME")
    return Path(env).expanduser() if env else Path(platformdirs.user_cache_dir("clearlm"))


def write_text_atomic(path: str | Path, text: str) -> Path:
    """Write UTF-8 ``text`` to ``path`` through a temporary file in the same folder and a rename, so a
    reader never sees half a file and a failure leaves the old file (or none). Returns the path."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
    return path
