"""Objects shared per key within a process, each made once even when many coroutines ask for it at the same time.

The connection pools (:mod:`.pool`, one per event loop and API base URL) and the account pollers
(:mod:`..triggers.shared_poller`, one per event loop and account) are both made on first use by an ``await`` (a
client built in a thread, a connection looked up). Without care, a thousand triggers starting together would each
make their own: the first asker makes it, the others wait for that one.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class Shared(Generic[K, V]):
    """``key -> value``, made by the first :meth:`get` of a key; concurrent askers get the same value (or the same
    error: a failed make is not cached, the next ask tries again)."""

    def __init__(self) -> None:
        self._values: dict[K, V] = {}
        self._making: dict[K, asyncio.Future[V]] = {}

    async def get(self, key: K, make: Callable[[], Awaitable[V]], usable: Callable[[V], bool] | None = None) -> V:
        """The value for ``key``; ``make()`` is awaited by the first asker only. A value that is not ``usable``
        (e.g. one left by an event loop that is gone and whose id was reused) is replaced."""
        value = self._values.get(key)
        if value is not None and (usable is None or usable(value)):
            return value
        making = self._making.get(key)
        if making is not None:
            return await asyncio.shield(making)
        future: asyncio.Future[V] = asyncio.get_running_loop().create_future()
        self._making[key] = future
        try:
            value = await make()
            self._values[key] = value
            future.set_result(value)
            return value
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: no "exception was never retrieved" when nobody else waited
            raise
        finally:
            del self._making[key]

    def discard(self, value: V) -> None:
        """Forget ``value`` (under whatever key holds it)."""
        for key in [k for k, v in self._values.items() if v is value]:
            del self._values[key]

    def values(self) -> list[V]:
        return list(self._values.values())
