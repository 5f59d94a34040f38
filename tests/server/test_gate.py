"""Admission control: first come, first served, and never more waiting than allowed."""

from __future__ import annotations

import asyncio

import pytest

from clearlm.server.errors import OverloadedError
from clearlm.server.gate import Gate


def test_waiters_are_served_in_arrival_order_and_newcomers_do_not_barge_in():
    async def main() -> list[str]:
        gate = Gate(max_active=1, max_waiting=8)
        served: list[str] = []
        await gate.acquire()  # the only slot is busy

        async def user(name: str) -> None:
            await gate.acquire()
            served.append(name)
            await asyncio.sleep(0)
            await gate.release()

        waiters = [asyncio.create_task(user(f"w{i}")) for i in range(4)]
        await asyncio.sleep(0)  # all four are queued
        assert gate.waiting == 4
        await gate.release()
        # the holder asking again at once, before the woken waiter runs, must queue behind the four
        await gate.acquire()
        served.append("again")
        await gate.release()
        late = asyncio.create_task(user("late"))
        await asyncio.gather(*waiters, late)
        assert gate.active == 0 and gate.waiting == 0
        return served

    assert asyncio.run(main()) == ["w0", "w1", "w2", "w3", "again", "late"]


def test_the_queue_never_exceeds_max_waiting_and_a_cancelled_waiter_gives_its_place_back():
    async def main() -> None:
        gate = Gate(max_active=1, max_waiting=2)
        await gate.acquire()
        waiters = [asyncio.create_task(gate.acquire()) for _ in range(5)]
        await asyncio.sleep(0)
        refused = [t for t in waiters if t.done() and isinstance(t.exception(), OverloadedError)]
        assert len(refused) == 3 and gate.waiting == 2
        queued = [t for t in waiters if not t.done()]
        queued[0].cancel()  # leaves the queue: its place is free again
        await asyncio.sleep(0)
        assert gate.waiting == 1
        await gate.release()  # handed to the remaining waiter
        await queued[1]
        assert gate.active == 1 and gate.waiting == 0
        await gate.release()
        assert gate.active == 0

    asyncio.run(main())


def test_a_waiter_cancelled_just_as_it_is_handed_the_slot_passes_it_on():
    async def main() -> None:
        gate = Gate(max_active=1, max_waiting=4)
        await gate.acquire()
        first = asyncio.create_task(gate.acquire())
        second = asyncio.create_task(gate.acquire())
        await asyncio.sleep(0)
        await gate.release()  # the slot is handed to `first` ...
        first.cancel()  # ... which is cancelled before it runs: the slot must go to `second`
        with pytest.raises(asyncio.CancelledError):
            await first
        await asyncio.wait_for(second, 1)
        assert gate.active == 1 and gate.waiting == 0

    asyncio.run(main())
