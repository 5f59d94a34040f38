"""Lossless JSON files for the typed results (attributions, context attributions, cited answers)."""

from __future__ import annotations

import json
import math
from dataclasses import fields
from pathlib import Path
from typing import Any, Self

import numpy as np

from clearlm.paths import write_text_atomic


def json_ready(value: Any) -> Any:
    """``value`` as JSON allows it: arrays as (nested) lists, NaN as None (null), tuples as lists; dicts and
    lists walked through."""
    if isinstance(value, np.ndarray):
        return json_ready(value.tolist())
    if isinstance(value, float):
        return None if math.isnan(value) else value
    if isinstance(value, list | tuple):
        return [json_ready(v) for v in value]
    if isinstance(value, dict):
        return {k: json_ready(v) for k, v in value.items()}
    return value


class JsonResult:
    """A dataclass mixin: ``to_json`` / ``from_json`` / ``save`` / ``load`` around the class's own
    ``to_dict`` / ``from_dict`` (which must encode NaN and arrays as JSON allows), and ``equals``."""

    __slots__ = ()

    def to_dict(self) -> dict[str, Any]:
        raise NotImplementedError

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Self:
        raise NotImplementedError

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), allow_nan=False, ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str) -> Self:
        return cls.from_dict(json.loads(text))

    def save(self, path: str | Path) -> Path:
        """Write the JSON form to ``path`` atomically (a temporary file, then a rename)."""
        return write_text_atomic(path, self.to_json())

    @classmethod
    def load(cls, path: str | Path) -> Self:
        return cls.from_json(Path(path).read_text(encoding="utf-8"))

    def equals(self, other: Self) -> bool:
        """Exact equality of every field, arrays included, NaN equal to NaN."""
        for f in fields(self):  # type: ignore[arg-type]
            a, b = getattr(self, f.name), getattr(other, f.name)
            if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
                if a is None or b is None or a.shape != b.shape or not np.array_equal(a, b, equal_nan=True):
                    return False
            elif isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
                continue
            elif a != b:
                return False
        return True
