"""The classroom's YAML files (rubrics, courses) read into pydantic models, with errors that name the
file, the entry (a criterion, an item, a skill) and the field to fix."""

from __future__ import annotations

from pathlib import Path
from typing import TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from clearlm.errors import InvalidInputError

M = TypeVar("M", bound=BaseModel)


def read_text(path: str | Path, error: type[InvalidInputError], what: str) -> str:
    """The text of ``path``; ``error`` ("cannot read the {what} file ...") when it cannot be read."""
    try:
        return Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise error(f"cannot read the {what} file {path}: {exc}") from None


def parse_model(
    text: str,
    source: str,
    model: type[M],
    error: type[InvalidInputError],
    shape: str,
    entries: dict[str, str],
) -> M:
    """``model`` validated from the YAML ``text``. Raises ``error`` naming ``source``: bad YAML, not a
    mapping (``shape``: "a rubric file is a mapping with ..."), or the first validation error
    (:func:`described`; the whole file is called by ``shape``'s second word: "the rubric")."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise error(f"{source}: not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise error(f"{source}: {shape}")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        whole = "the " + shape.split()[1]
        raise error(f"{source}: {described(exc, data, whole, entries)}") from None


def described(exc: ValidationError, data: dict, whole: str, entries: dict[str, str]) -> str:
    """The first error as "criterion 'x' (criteria[1]), field levels: what to fix". ``entries`` maps a
    list field to what one entry is called (``{"criteria": "criterion"}``); the rest is ``whole``. A list
    emptied by a bad entry ("at least 1 item") is a knock-on error, not one more to fix."""
    errors = exc.errors()
    errors = [
        e
        for e in errors
        if not (e["type"] == "too_short" and any(len(o["loc"]) > len(e["loc"]) for o in errors))
    ]
    err = errors[0]
    loc = list(err["loc"])
    where = whole
    if len(loc) >= 2 and loc[0] in entries and isinstance(loc[1], int):
        listed = data.get(loc[0]) or []
        entry = listed[loc[1]] if loc[1] < len(listed) else None
        eid = entry.get("id") if isinstance(entry, dict) else None
        at = f"{loc[0]}[{loc[1]}]"
        where = f"{entries[loc[0]]} {eid!r} ({at})" if eid else at
        loc = loc[2:]
    field = "".join(f"[{x}]" if isinstance(x, int) else f".{x}" for x in loc).lstrip(".")
    msg = err["msg"].removeprefix("Value error, ")
    if err["type"] == "extra_forbidden":
        msg = "unknown field; remove it or check its spelling"
        if err.get("input") is None:  # `{descriptor: a, b}` reads as a key "b" with no value
            msg += " (a text with a comma inside {...} needs quotes)"
    elif err["type"] == "missing":
        msg = "missing; add it"
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return where + (f", field {field}" if field else "") + f": {msg}{more}"
