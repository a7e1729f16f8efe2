"""One HTTP connection pool per event loop and API base URL, shared by every account that talks to it.

A triggerer watching a thousand Housecall Pro accounts talks to one host: one ``httpx.AsyncHTTPTransport`` (one TLS
context, built once in a thread; one pool of keep-alive connections) serves them all. Requests go to the transport
itself, with no client in between: a client's layer would bring default headers, auth, a cookie jar and redirects,
none of which a shared pool may apply (an answer to one account must never shape another's request), and it costs
about a sixth of each idle poll's CPU. Each request brings its own ``Authorization``, ``X-Company-Id`` and
timeouts (:meth:`~.core.HttpCore.build`); cookies are never stored and a redirect is an answer like any other.

The pool lives while at least one user holds it (:func:`acquire` / :func:`release`) and is closed by the last.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field

import httpx

from airflow_provider_housecallpro.api.shared import Shared

# ~100 polls a second (1,000 accounts at a 10 s interval) need a few connections at a time when answers take
# tens of milliseconds; the rest is room for slow answers (an account timing out holds one until its timeout).
# Requests beyond it wait in the pool's gate (a FIFO semaphore), not in httpcore's queue, whose every request
# scans every queued request and connection (a thousand queued requests cost seconds of CPU).
IN_FLIGHT = 20
LIMITS = httpx.Limits(max_connections=IN_FLIGHT, max_keepalive_connections=IN_FLIGHT, keepalive_expiry=4.0)


def make_transport(limits: httpx.Limits = LIMITS) -> httpx.AsyncHTTPTransport:
    """A credential-free connection pool: every request must bring its own headers and timeout."""
    return httpx.AsyncHTTPTransport(limits=limits)


@dataclass(eq=False)
class SharedHttp:
    """A shared transport and the gate every request through it passes (at most ``IN_FLIGHT`` at a time)."""

    transport: httpx.AsyncBaseTransport
    gate: asyncio.Semaphore = field(default_factory=lambda: asyncio.Semaphore(IN_FLIGHT))
    users: int = 0
    closed: bool = False

    async def send(self, request: httpx.Request) -> httpx.Response:
        """The answer to ``request``, its body read (transport errors are httpx's, as from a client)."""
        if self.closed:
            raise RuntimeError("Cannot send a request, as the shared Housecall Pro pool has been closed")
        async with self.gate:
            response = await self.transport.handle_async_request(request)
            response.request = request
            try:
                await response.aread()
            finally:
                await response.aclose()
        return response

    async def aclose(self) -> None:
        self.closed = True
        await self.transport.aclose()


_POOLS: Shared[tuple[int, str], SharedHttp] = Shared()


async def _make() -> SharedHttp:
    # httpx builds its TLS context when the client is made (~15 ms of CPU): not on the event loop.
    return SharedHttp(await asyncio.to_thread(make_transport))


async def acquire(base_url: str) -> SharedHttp:
    """The shared client for ``base_url`` in this event loop (created on first use, off the loop)."""
    pool = await _POOLS.get((id(asyncio.get_running_loop()), base_url.rstrip("/")), _make)
    pool.users += 1
    return pool


async def release(shared: SharedHttp) -> None:
    """One user fewer; the last one closes the pool."""
    shared.users -= 1
    if shared.users > 0:
        return
    _POOLS.discard(shared)
    with contextlib.suppress(Exception):
        await shared.aclose()


def open_pools() -> list[SharedHttp]:
    """The shared pools of this process (tests and benchmarks)."""
    return _POOLS.values()
