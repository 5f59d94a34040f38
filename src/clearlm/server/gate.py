"""Admission control: a fixed number of generations at once, a bounded FIFO queue, and 429 past it."""

from __future__ import annotations

import asyncio
from collections import deque

from clearlm.server.errors import OverloadedError


class Gate:
    """At most ``max_active`` holders at once and ``max_waiting`` waiting, served first come, first served;
    any more are refused at once with :class:`OverloadedError` (HTTP 429 with ``Retry-After``), so no request
    hangs unboundedly.

    A released slot is handed straight to the longest waiter (its count never drops to let a newcomer barge
    in), so the queue is FIFO and a waiter cannot starve. All state changes happen without an ``await`` in
    between, on the event loop's one thread, so the bounds hold under any interleaving.
    """

    def __init__(self, max_active: int, max_waiting: int, retry_after: int = 1) -> None:
        if max_active < 1 or max_waiting < 0:
            raise ValueError("max_active must be >= 1 and max_waiting >= 0")
        self.max_active = max_active
        self.max_waiting = max_waiting
        self.retry_after = retry_after
        self.active = 0
        self._queue: deque[asyncio.Future[None]] = deque()

    @property
    def waiting(self) -> int:
        return len(self._queue)

    async def acquire(self) -> None:
        """Wait for a slot, behind every earlier waiter. Raises OverloadedError when the queue is full."""
        if self.active < self.max_active and not self._queue:
            self.active += 1
            return
        if len(self._queue) >= self.max_waiting:
            raise OverloadedError(
                f"the server is busy ({self.active} generating, {len(self._queue)} queued): "
                f"retry after {self.retry_after} s",
                self.retry_after,
            )
        turn: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queue.append(turn)
        try:
            await turn
        except asyncio.CancelledError:
            if turn.done() and not turn.cancelled():  # the slot was handed over as we left: pass it on
                self._hand_over()
            else:
                self._queue.remove(turn)
            raise

    async def release(self) -> None:
        """Give back a slot: to the longest waiter if any, else to the pool."""
        self._hand_over()

    def _hand_over(self) -> None:
        while self._queue:
            turn = self._queue.popleft()
            if not turn.done():
                turn.set_result(None)  # the slot passes on; ``active`` is unchanged
                return
        self.active -= 1
