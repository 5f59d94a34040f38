"""Where LoRA adapters live: ``$CLEARLM_HOME/adapters/NAME/`` (PEFT's files, ``card.json``, ``report.json``,
``README.md``). A new adapter is written into a temporary folder beside it and renamed into place, so a
failed or interrupted run never leaves a half-written adapter folder."""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Callable
from pathlib import Path

from clearlm.errors import InvalidInputError, ModelNotFoundError
from clearlm.paths import clearlm_home

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
CARD, REPORT = "card.json", "report.json"


class AdapterNotFoundError(ModelNotFoundError):
    """No adapter of that name under $CLEARLM_HOME/adapters."""

    code = "adapter_not_found"


class AdapterExistsError(InvalidInputError):
    """An adapter of that name already exists."""


def adapters_root() -> Path:
    return clearlm_home() / "adapters"


def check_name(name: str) -> str:
    """Raises InvalidInputError unless ``name`` is 1-64 letters, digits, '.', '_' or '-' (not first)."""
    if not NAME.match(name or ""):
        raise InvalidInputError(
            f"bad adapter name {name!r}: use 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit"
        )
    return name


def adapter_dir(name: str) -> Path:
    return adapters_root() / check_name(name)


def work_dir(name: str) -> Path:
    """Where a run of ``name`` keeps its checkpoints until the adapter is written."""
    return adapters_root() / ".work" / check_name(name)


def exists(name: str) -> bool:
    return (adapter_dir(name) / CARD).is_file()


def write_adapter(name: str, write: Callable[[Path], None], overwrite: bool = False) -> Path:
    """Create adapter ``name`` atomically: ``write(folder)`` fills a temporary folder, which is then renamed
    to the adapter's folder. If ``write`` raises, the temporary folder is removed and nothing is left.

    Raises:
        AdapterExistsError: the adapter exists and ``overwrite`` is False.
    """
    dest = adapter_dir(name)
    if dest.exists() and not overwrite:
        raise AdapterExistsError(f"adapter {name!r} exists: choose another name, or remove it first")
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{name}.partial-{os.getpid()}")
    old = dest.with_name(f".{name}.old-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        tmp.mkdir()
        write(tmp)
        if dest.exists():
            os.replace(dest, old)
        os.replace(tmp, dest)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(old, ignore_errors=True)
    return dest


def card_at(folder: Path) -> dict:
    """The card in an adapter folder given by path (one not under ``$CLEARLM_HOME/adapters``).

    Raises:
        InvalidInputError: no ``card.json`` there.
    """
    try:
        return json.loads((Path(folder) / CARD).read_text(encoding="utf-8"))
    except OSError:
        raise InvalidInputError(f"{folder} is not a clearlm adapter folder (no {CARD})") from None


def read_card(name: str) -> dict:
    """The card of adapter ``name`` (with its report under "report").

    Raises:
        AdapterNotFoundError: no such adapter (the message lists the ones there are).
    """
    folder = adapter_dir(name)
    if not (folder / CARD).is_file():
        names = [a["name"] for a in list_adapters()]
        raise AdapterNotFoundError(
            f"no adapter {name!r}: "
            + (f"choose one of {', '.join(names)}" if names else "train one with `clearlm tune`")
        )
    card = json.loads((folder / CARD).read_text(encoding="utf-8"))
    if (folder / REPORT).is_file():
        card["report"] = json.loads((folder / REPORT).read_text(encoding="utf-8"))
    return card


def list_adapters() -> list[dict]:
    """Every adapter, by name: ``{"name", "base", "kind", "created", "bytes", "figures"}``."""
    root = adapters_root()
    out = []
    for folder in sorted(root.iterdir()) if root.is_dir() else []:
        if folder.name.startswith(".") or not (folder / CARD).is_file():
            continue
        card = json.loads((folder / CARD).read_text(encoding="utf-8"))
        out.append(
            {
                "name": folder.name,
                "base": card["base"]["name"],
                "kind": card["data"]["kind"],
                "created": card["created"],
                "bytes": sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()),
                "figures": card.get("figures", {}),
            }
        )
    return out


def remove_adapter(name: str) -> None:
    """Delete adapter ``name`` and any checkpoints of its runs. Raises AdapterNotFoundError."""
    read_card(name)
    shutil.rmtree(adapter_dir(name))
    shutil.rmtree(work_dir(name), ignore_errors=True)
