"""Where clearlm keeps its files: ``$CLEARLM_HOME`` (default: the user's cache directory)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import platformdirs

_UMASK = os.umask(0o022)  # read once at import (os.umask can only be read by setting it)
os.umask(_UMASK)


def clearlm_home() -> Path:
    """The root of clearlm's files: ``$CLEARLM_HOME`` if set, else ``platformdirs.user_cache_dir("clearlm")``."""
    env = os.environ.get("CLEARLM_HOME")
    return Path(env).expanduser() if env else Path(platformdirs.user_cache_dir("clearlm"))


def write_text_atomic(path: str | Path, text: str) -> Path:
    """Write UTF-8 ``text`` to ``path`` through a temporary file in the same folder and a rename, so a
    reader never sees half a file and a failure leaves the old file (or none). Returns the path."""
    path = Path(path)
    # A unique temporary name (mkstemp), so two writers of the same path never share one half-written file.
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    tmp = Path(name)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600; give the file the mode open() would
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
    return path
