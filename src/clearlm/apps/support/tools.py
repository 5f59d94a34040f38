"""The desk's tools, declared in YAML (a desk folder's ``tools.yaml``)::

    tools:
      lookup_order:
        description: An order by its number.
        json_file: orders.json       # a JSON object {key: record}, relative to this file
        key: order_number            # the argument holding the key
      request_refund:
        python: my_shop.tools:request_refund   # any importable function, called with the flow's args
        confirm: agent                         # optional: customer or agent
      change_address:
        python: shop_tools.py:change_address   # or a function of a .py file, relative to this file
        confirm: customer

A ``json_file`` tool returns ``{"found": true, **record}`` for a known key and ``{"found": false}``
otherwise (the file is read on each call, so edits show at once). A ``python`` tool's function is called
as ``fn(**arguments)``; what it raises is reported to the customer and the agent by the flow.

``confirm`` (any tool): before a flow calls it, ``customer``: the customer answers a yes/no question in
the chat; ``agent``: a person approves it through the review queue (:mod:`.confirm`, :mod:`.approvals`).
A tool registered in Python declares it with :class:`Tool` (``Tool(fn, confirm="agent")``); a plain
function needs none.

:func:`load_desk` reads a desk folder: ``flows/*.yaml`` (:func:`~clearlm.apps.support.loading.load_flows`)
and ``tools.yaml`` (optional).
"""

from __future__ import annotations

import importlib
import importlib.util
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from clearlm.apps.support.flows import Flow, FlowError
from clearlm.apps.support.loading import load_flows
from clearlm.apps.support.state import Confirm

CONFIRM_BY = ("customer", "agent")  # who may confirm a tool call


def _confirm(value: Any, source: str) -> str | None:
    if value is None or value in CONFIRM_BY:
        return value
    raise FlowError(
        f"{source}: confirm is customer (the customer answers yes or no) or agent (a person approves "
        f"it in the review queue), or left out; got {value!r}"
    )


class Tool:
    """A desk tool: ``fn(**arguments)`` with what it needs before it is called. ``confirm``: None,
    ``customer`` or ``agent``; ``description``: what it does (the confirmation question says it).
    Called like ``fn``.

    Raises:
        FlowError: a ``confirm`` other than customer, agent or None; an ``fn`` that is not callable.
    """

    __slots__ = ("fn", "confirm", "description")

    def __init__(
        self, fn: Callable[..., Any], confirm: str | None = None, description: str = "", name: str = ""
    ) -> None:
        source = f"tool {name or getattr(fn, '__name__', fn)!r}"
        if not callable(fn):
            raise FlowError(f"{source}: {fn!r} is not a function")
        self.fn, self.confirm, self.description = fn, _confirm(confirm, source), description

    def __call__(self, **arguments: Any) -> Any:
        return self.fn(**arguments)

    def __repr__(self) -> str:
        return f"Tool({self.fn!r}, confirm={self.confirm!r})"


def confirm_of(name: str, fn: Callable[..., Any]) -> Confirm | None:
    """What the tool ``name`` needs before it is called (None: nothing): a :class:`Tool`'s ``confirm``,
    with its description (else its name, in words) as the action."""
    if not isinstance(fn, Tool) or fn.confirm is None:
        return None
    return Confirm(fn.confirm, fn.description.strip().rstrip(".") or name.replace("_", " "))


def confirmations(tools: dict[str, Callable[..., Any]]) -> dict[str, Confirm]:
    """``{name: Confirm}`` for the ``tools`` (``{name: fn}``) that are called only once confirmed."""
    found = {name: confirm_of(name, fn) for name, fn in tools.items()}
    return {name: need for name, need in found.items() if need is not None}


def json_lookup(path: Path, key: str) -> Callable[..., dict]:
    """A tool returning the record under ``arguments[key]`` in the JSON object of ``path``."""

    def lookup(**arguments: Any) -> dict:
        records = json.loads(path.read_text(encoding="utf-8"))
        record = records.get(str(arguments.get(key)))
        return {"found": False} if record is None else {"found": True, **record}

    return lookup


def _module(module: str, base: Path):
    """The module ``module`` (dotted, importable) or, for a name ending in ``.py``, that file (relative
    to ``base``), loaded under a name of its own."""
    if not module.endswith(".py"):
        return importlib.import_module(module)
    path = (base / module).resolve()
    if not path.is_file():
        raise ImportError(f"no file {path}")
    name = f"clearlm_desk_tools_{abs(hash(str(path))):x}"
    spec = importlib.util.spec_from_file_location(name, path)
    loaded = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(loaded)
    return loaded


def _python(ref: str, source: str, base: Path) -> Callable[..., Any]:
    module, _, name = ref.partition(":")
    try:
        fn = getattr(_module(module, base), name)
    except (ImportError, AttributeError, ValueError, SyntaxError) as exc:
        raise FlowError(
            f"{source}: cannot import the tool function {ref!r} (module:function or file.py:function): {exc}"
        ) from None
    if not callable(fn):
        raise FlowError(f"{source}: {ref!r} is not a function")
    return fn


def load_tools(path: str | Path) -> dict[str, Tool]:
    """The tools declared in the YAML file ``path``: ``{name: Tool}``.

    Raises:
        FlowError: unreadable YAML, a tool with neither (or both) ``json_file`` and ``python``, a
            ``json_file`` tool without ``key`` or whose file is missing, a function that cannot be
            imported, a ``confirm`` other than customer or agent.
    """
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise FlowError(f"cannot read the tools file {path}: {exc}") from None
    tools: dict[str, Tool] = {}
    declared = data.get("tools") if isinstance(data, dict) else None
    if not isinstance(declared, dict):
        raise FlowError(f"{path}: a tools file is a mapping with a 'tools' mapping of name: spec")
    for name, spec in declared.items():
        where = f"{path}: tool {name!r}"
        if not isinstance(spec, dict) or ("json_file" in spec) == ("python" in spec):
            raise FlowError(f"{where}: give exactly one of json_file (with key) or python (module:function)")
        confirm, description = _confirm(spec.get("confirm"), where), str(spec.get("description") or "")
        if "python" in spec:
            tools[name] = Tool(_python(str(spec["python"]), where, path.parent), confirm, description, name)
            continue
        file = path.parent / str(spec["json_file"])
        if "key" not in spec or not file.is_file():
            raise FlowError(f"{where}: a json_file tool needs key and an existing file ({file})")
        tools[name] = Tool(json_lookup(file, str(spec["key"])), confirm, description, name)
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
