"""Admission control: a fixed number of generations at once, a bounded queue, and 429 past it."""

from __future__ import annotations

import asyncio

from clearlm.server.errors import OverloadedError


class Gate:
    """At most ``max_active`` holders at once and ``max_waiting`` waiting; any more are refused at once
    with :class:`OverloadedError` (HTTP 429 with ``Retry-After``), so no request hangs unboundedly."""

    def __init__(self, max_active: int, max_waiting: int, retry_after: int = 1) -> None:
        if max_active < 1 or max_waiting < 0:
            raise ValueError("max_active must be >= 1 and max_waiting >= 0")
        self.max_active = max_active
        self.max_waiting = max_waiting
        self.retry_after = retry_after
        self.active = 0
        self.waiting = 0
        self._free = asyncio.Condition()

    async def acquire(self) -> None:
        """Wait for a slot. Raises OverloadedError when the queue is full."""
        if self.active >= self.max_active and self.waiting >= self.max_waiting:
            raise OverloadedError(
                f"the server is busy ({self.active} generating, {self.waiting} queued): "
                f"retry after {self.retry_after} s",
                self.retry_after,
            )
        async with self._free:
            self.waiting += 1
            try:
                await self._free.wait_for(lambda: self.active < self.max_active)
            finally:
                self.waiting -= 1
            self.active += 1

    async def release(self) -> None:
        async with self._free:
            self.active -= 1
            self._free.notify()
