"""The desk's tools, declared in YAML (a desk folder's ``tools.yaml``)::

    tools:
      lookup_order:
        description: An order by its number.
        json_file: orders.json       # a JSON object {key: record}, relative to this file
        key: order_number            # the argument holding the key
      request_refund:
        python: my_shop.tools:request_refund   # any importable function, called with the flow's args

A ``json_file`` tool returns ``{"found": true, **record}`` for a known key and ``{"found": false}``
otherwise (the file is read on each call, so edits show at once). A ``python`` tool's function is called
as ``fn(**arguments)``; what it raises is reported to the customer and the agent by the flow.

:func:`load_desk` reads a desk folder: ``flows/*.yaml`` (:func:`~clearlm.apps.support.loading.load_flows`)
and ``tools.yaml`` (optional).
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from clearlm.apps.support.flows import Flow, FlowError
from clearlm.apps.support.loading import load_flows


def json_lookup(path: Path, key: str) -> Callable[..., dict]:
    """A tool returning the record under ``arguments[key]`` in the JSON object of ``path``."""

    def lookup(**arguments: Any) -> dict:
        records = json.loads(path.read_text(encoding="utf-8"))
        record = records.get(str(arguments.get(key)))
        return {"found": False} if record is None else {"found": True, **record}

    return lookup


def _python(ref: str, source: str) -> Callable[..., Any]:
    module, _, name = ref.partition(":")
    try:
        fn = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError, ValueError) as exc:
        raise FlowError(
            f"{source}: cannot import the tool function {ref!r} (module:function): {exc}"
        ) from None
    if not callable(fn):
        raise FlowError(f"{source}: {ref!r} is not a function")
    return fn


def load_tools(path: str | Path) -> dict[str, Callable[..., Any]]:
    """The tools declared in the YAML file ``path``: ``{name: fn}``.

    Raises:
        FlowError: unreadable YAML, a tool with neither (or both) ``json_file`` and ``python``, a
            ``json_file`` tool without ``key`` or whose file is missing, a function that cannot be imported.
    """
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise FlowError(f"cannot read the tools file {path}: {exc}") from None
    tools: dict[str, Callable[..., Any]] = {}
    declared = data.get("tools") if isinstance(data, dict) else None
    if not isinstance(declared, dict):
        raise FlowError(f"{path}: a tools file is a mapping with a 'tools' mapping of name: spec")
    for name, spec in declared.items():
        where = f"{path}: tool {name!r}"
        if not isinstance(spec, dict) or ("json_file" in spec) == ("python" in spec):
            raise FlowError(f"{where}: give exactly one of json_file (with key) or python (module:function)")
        if "python" in spec:
            tools[name] = _python(str(spec["python"]), where)
            continue
        file = path.parent / str(spec["json_file"])
        if "key" not in spec or not file.is_file():
            raise FlowError(f"{where}: a json_file tool needs key and an existing file ({file})")
        tools[name] = json_lookup(file, str(spec["key"]))
    return tools


def load_desk(folder: str | Path) -> tuple[dict[str, Flow], dict[str, Callable[..., Any]]]:
    """A desk folder's flows (``flows/``) and tools (``tools.yaml``, optional).

    Raises:
        FlowError: a missing folder, a bad flow or tools file.
    """
    folder = Path(folder)
    if not (folder / "flows").is_dir():
        raise FlowError(f"{folder} is not a support desk folder: it needs a flows/ folder of YAML flows")
    tools_file = folder / "tools.yaml"
    tools = load_tools(tools_file) if tools_file.is_file() else {}
    return load_flows(folder / "flows"), tools
