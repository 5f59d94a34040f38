"""The sample shop's Python tools (``tools.yaml`` names them as ``shop_tools.py:function``).

Both read ``orders.json`` beside this file and keep what they did in ``CHANGES`` (in memory: a real
shop would call its order system here).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

HERE = Path(__file__).parent
CHANGES: list[dict] = []  # what the tools did, oldest first


def _orders() -> dict:
    return json.loads((HERE / "orders.json").read_text(encoding="utf-8"))


def _order(order_number: str) -> dict:
    order = _orders().get(str(order_number))
    if order is None:
        raise LookupError(f"no order {order_number}")
    return order


def _keep(change: dict) -> dict:
    change = {**change, "at": datetime.now(UTC).isoformat(timespec="seconds")}
    CHANGES.append(change)
    return change


def change_address(order_number: str, address: str) -> dict:
    """Send an order that is still in transit to ``address``. LookupError: no such order; ValueError:
    it was delivered already or the address is blank."""
    order = _order(order_number)
    if order.get("status") != "in transit":
        raise ValueError(f"order {order_number} was {order.get('status')} already")
    if not str(address).strip():
        raise ValueError("the new address is blank")
    return _keep({"kind": "address", "order_number": order_number, "address": str(address).strip()})


def refund_request(order_number: str, reason: str) -> dict:
    """Refund an order (a person approves it first: ``confirm: agent``). LookupError: no such order."""
    order = _order(order_number)
    refund_id = f"RF-{order_number.removeprefix('A-')}"
    kept = _keep({"kind": "refund", "order_number": order_number, "reason": reason, "refund_id": refund_id})
    return {**kept, "item": order["item"], "email": order["email"]}
