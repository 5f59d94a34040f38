"""The layout the README's Layout section states: a part imports only parts listed above it (the shells,
server/, web/ and cli/, import any). Read from the source with ast, so a lazy import inside a function
counts too."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).parents[1] / "src" / "clearlm"
ORDER = [
    "errors", "paths", "serialize", "models", "store", "govern", "explain", "knowledge", "pipeline",
    "tune", "translate", "media", "apps",
]  # fmt: skip
SHELLS = {"server", "web", "cli"}


def imported_parts(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        names = [node.module or ""] if isinstance(node, ast.ImportFrom) else []
        names += [a.name for a in node.names] if isinstance(node, ast.Import) else []
        found |= {n.split(".")[1] for n in names if n.startswith("clearlm.") and n.count(".") >= 1}
    return found


def test_every_part_is_in_the_order_and_imports_only_parts_above_it():
    parts = {p.stem if p.is_file() else p.name for p in SRC.iterdir() if p.suffix == ".py" or p.is_dir()}
    parts -= {"__init__", "__pycache__", "data"}
    assert parts == set(ORDER) | SHELLS, "a new part: add it to ORDER here and to the README's Layout"
    upward = []
    for path in SRC.rglob("*.py"):
        part = path.relative_to(SRC).parts[0].removesuffix(".py")
        if part in SHELLS or part == "__init__":
            continue
        for other in imported_parts(path) - {part}:
            if other in SHELLS or ORDER.index(other) > ORDER.index(part):
                upward.append(f"{path.relative_to(SRC)} imports clearlm.{other}")
    assert not upward, upward
