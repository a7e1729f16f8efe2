"""Every call the provider makes to an Airflow supervisor from async code goes through :func:`round_trip`.

Inside the triggerer, Variables, Connections and (Airflow >= 3.3) the asset state store are reached through the
trigger runner's comms channel to its supervisor: one request frame out, one response frame back. On Airflow 3.0
the channel is a lock around "write the request, read the next frame"; a sync SDK call (``Variable.get``) made in a
``sync_to_async`` thread sends through ``async_to_sync``, and asgiref ties that send to the awaiting task. Cancel
that task (the triggerer cancels triggers on reassignment and shutdown) and asgiref cancels the send while it waits
for its response: the lock is released with the response unread, the runner's next request reads it instead of its
own ("Response read out of order!"), and the whole trigger runner dies with every trigger in it.

:func:`round_trip` runs the call in a task of its own and awaits it through :func:`asyncio.shield`: cancelling the
caller cancels the wait, never the round trip, which runs to its end (its result is dropped). Airflow >= 3.3 routes
responses by request id, so it never needed this; the same code runs on every version.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

T = TypeVar("T")

_IN_FLIGHT: set[asyncio.Future[Any]] = set()  # strong references: a caller gone, the loop holds tasks only weakly


def _finished(task: asyncio.Future[Any]) -> None:
    _IN_FLIGHT.discard(task)
    if not task.cancelled():
        task.exception()  # retrieved: a round trip whose caller left fails silently (the caller is gone)


async def round_trip(call: Awaitable[T]) -> T:
    """Await ``call`` (a supervisor round trip) so that cancelling the caller cannot cut it off half-way."""
    task = asyncio.ensure_future(call)
    _IN_FLIGHT.add(task)
    task.add_done_callback(_finished)
    return await asyncio.shield(task)


async def in_thread(fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
    """A sync SDK call (``Variable.get``, ``BaseHook.get_connection``...) in asgiref's worker thread, never on the
    event loop, as one uncancellable :func:`round_trip`."""
    from asgiref.sync import sync_to_async

    return await round_trip(sync_to_async(functools.partial(fn, *args, **kwargs))())


async def settle() -> None:
    """Wait until every round trip of this event loop whose caller left has run to its end (for tests and a clean
    shutdown)."""
    loop = asyncio.get_running_loop()
    while mine := [task for task in _IN_FLIGHT if task.get_loop() is loop]:
        await asyncio.gather(*mine, return_exceptions=True)
