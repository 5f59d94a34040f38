"""How many CPU threads an engine may use (llama.cpp, ONNX Runtime): ``$CLEARLM_THREADS`` when set (a
machine shared with other work, or several processes on one machine), else every core."""

from __future__ import annotations

import os

from clearlm.errors import InvalidInputError


def cpu_threads() -> int:
    """The thread count: ``$CLEARLM_THREADS`` (a positive integer), else ``os.cpu_count()`` (1 if unknown).

    Raises:
        InvalidInputError: ``$CLEARLM_THREADS`` is not a positive integer.
    """
    value = os.environ.get("CLEARLM_THREADS", "").strip()
    if not value:
        return os.cpu_count() or 1
    if not value.isdigit() or int(value) < 1:
        raise InvalidInputError(f"CLEARLM_THREADS must be a positive integer (a thread count), got {value!r}")
    return int(value)
