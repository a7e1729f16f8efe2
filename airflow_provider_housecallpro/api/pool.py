"""One HTTP connection pool per event loop and API base URL, shared by every account that talks to it.

A triggerer watching a thousand Housecall Pro accounts talks to one host: one ``httpx.AsyncClient`` (one TLS
context, built once in a thread; one pool of keep-alive connections) serves them all. It carries **no
credentials**: no default headers, no auth, no cookies (its jar refuses every cookie, so an answer to one account
can never leak into another's requests), no redirects followed. Each request brings its own ``Authorization`` and
``X-Company-Id`` (:meth:`~.core.HttpCore.build`) and its own timeouts.

The pool lives while at least one user holds it (:func:`acquire` / :func:`release`) and is closed by the last.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from http.cookiejar import CookieJar, DefaultCookiePolicy

import httpx

from airflow_provider_housecallpro.api.shared import Shared

# ~100 polls a second (1,000 accounts at a 10 s interval) need a few connections at a time when answers take
# tens of milliseconds; the rest is room for slow answers (an account timing out holds one until its timeout).
# Requests beyond it wait in the pool's gate (a FIFO semaphore), not in httpcore's queue, whose every request
# scans every queued request and connection (a thousand queued requests cost seconds of CPU).
IN_FLIGHT = 20
LIMITS = httpx.Limits(max_connections=IN_FLIGHT, max_keepalive_connections=IN_FLIGHT, keepalive_expiry=4.0)


def no_cookies() -> CookieJar:
    """A cookie jar that stores nothing: a cookie one account's answer sets is never sent for another. (A jar, not
    an ``httpx.Cookies``: the client copies the cookies of one of those into a default jar, losing the policy.)"""
    return CookieJar(policy=DefaultCookiePolicy(allowed_domains=[]))


def make_client(limits: httpx.Limits = LIMITS) -> httpx.AsyncClient:
    """A credential-free client: every request must bring its own headers and timeout."""
    return httpx.AsyncClient(limits=limits, cookies=no_cookies(), follow_redirects=False)


@dataclass(eq=False)
class SharedHttp:
    """A shared client and the gate every request through it passes (at most ``IN_FLIGHT`` at a time)."""

    client: httpx.AsyncClient
    gate: asyncio.Semaphore = field(default_factory=lambda: asyncio.Semaphore(IN_FLIGHT))
    users: int = 0


_POOLS: Shared[tuple[int, str], SharedHttp] = Shared()


async def _make() -> SharedHttp:
    # httpx builds its TLS context when the client is made (~15 ms of CPU): not on the event loop.
    return SharedHttp(await asyncio.to_thread(make_client))


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
        await shared.client.aclose()


def open_pools() -> list[SharedHttp]:
    """The shared pools of this process (tests and benchmarks)."""
    return _POOLS.values()
