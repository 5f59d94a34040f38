"""Where clearlm keeps its files: ``$CLEARLM_HOME`` (default: the user's cache directory)."""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs


def clearlm_home() -> Path:
    """The root of clearlm's files: ``$CLEARLM_HOME`` if set, else ``platformdirs.user_cache_dir("clearlm")``."""
    env = os.environ.get("CLEARLM_HOME")
    return Path(env).expanduser() if env else Path(platformdirs.user_cache_dir("clearlm"))
