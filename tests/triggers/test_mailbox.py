"""The mailbox a poller hands each waiting trigger its results through (an ``asyncio.Queue`` without its weight)."""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import given
from hypothesis import strategies as st

from airflow_provider_housecallpro.triggers.mailbox import Mailbox


async def test_items_come_out_in_order_and_a_waiting_reader_is_woken() -> None:
    box: Mailbox[int] = Mailbox()
    reader = asyncio.ensure_future(box.get())
    await asyncio.sleep(0)
    assert not reader.done()  # nothing there yet: it waits
    box.put_nowait(1)
    box.put_nowait(2)
    assert await reader == 1
    assert box.qsize() == 1
    assert await box.get() == 2
    assert box.empty()


async def test_a_timed_out_get_loses_nothing() -> None:
    """``asyncio.wait_for`` cancels ``get`` on its timeout (the triggers' deadline and state-confirm waits): an item
    put after that, or in the same loop step as the cancellation, is there for the next ``get``."""
    box: Mailbox[str] = Mailbox()
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(box.get(), timeout=0)
    box.put_nowait("after")
    assert await asyncio.wait_for(box.get(), timeout=None) == "after"

    reader = asyncio.ensure_future(box.get())
    await asyncio.sleep(0)
    box.put_nowait("woken, then cancelled")  # the reader is woken...
    reader.cancel()  # ...and cancelled before it runs
    with pytest.raises(asyncio.CancelledError):
        await reader
    assert await box.get() == "woken, then cancelled"


async def test_one_reader_only() -> None:
    box: Mailbox[int] = Mailbox()
    first = asyncio.ensure_future(box.get())
    await asyncio.sleep(0)
    with pytest.raises(RuntimeError, match="one reader"):
        await box.get()
    box.put_nowait(7)
    assert await first == 7


@given(st.lists(st.one_of(st.integers(), st.none()), max_size=40))
def test_matches_a_fifo(script: list[int | None]) -> None:
    """Puts (integers) and gets (None) in any order, a get on an empty box waiting for the next put: what comes
    out is what a FIFO list gives, in the same order."""

    async def run() -> tuple[list[int], list[int]]:
        box: Mailbox[int] = Mailbox()
        fifo: list[int] = []
        got: list[int] = []
        expected: list[int] = []
        waiting: asyncio.Future[int] | None = None
        for step in script:
            if step is None:
                if waiting is None:
                    waiting = asyncio.ensure_future(box.get())
                    await asyncio.sleep(0)
            else:
                box.put_nowait(step)
                fifo.append(step)
            if waiting is not None and fifo:
                got.append(await waiting)
                expected.append(fifo.pop(0))
                waiting = None
        if waiting is not None:
            waiting.cancel()
        while not box.empty():
            got.append(await box.get())
            expected.append(fifo.pop(0))
        return got, expected

    got, expected = asyncio.run(run())
    assert got == expected
