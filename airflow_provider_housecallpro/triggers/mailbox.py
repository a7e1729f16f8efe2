"""What an account's poller hands one waiting trigger: its results, in order, awaited by that trigger alone.

An ``asyncio.Queue`` would do, but each one holds three deques and an ``asyncio.Event`` (a fourth): ~3 KiB for
every waiting trigger, its largest item after its decoded state on a shared account
(``benchmarks/bench_triggers.py``, ``HCP_BENCH_TRACEMALLOC=1``). A mailbox has one reader, no size limit and no
``join``, so a list and the reader's one pending future are all it needs.
"""

from __future__ import annotations

import asyncio
from typing import Generic, TypeVar

T = TypeVar("T")


class Mailbox(Generic[T]):
    """An unbounded FIFO with a single reader. ``get`` cancelled (a ``wait_for`` timeout) loses nothing."""

    __slots__ = ("_items", "_waiter")

    def __init__(self) -> None:
        self._items: list[T] = []
        self._waiter: asyncio.Future[None] | None = None

    def put_nowait(self, item: T) -> None:
        self._items.append(item)
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def get(self) -> T:
        """The oldest item, waiting for one if there is none."""
        while not self._items:
            if self._waiter is not None:
                raise RuntimeError("a Mailbox has one reader: get() is already waiting")
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        return self._items.pop(0)

    def qsize(self) -> int:
        return len(self._items)

    def empty(self) -> bool:
        return not self._items
