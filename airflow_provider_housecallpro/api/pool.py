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
from dataclasses import dataclass
from http.cookiejar import CookieJar, DefaultCookiePolicy

import httpx

# ~100 polls a second (1,000 accounts at a 10 s interval) need a handful of connections at a time; the rest is
# room for slow answers (an account timing out holds one connection until its timeout).
LIMITS = httpx.Limits(max_connections=100, max_keepalive_connections=20, keepalive_expiry=5.0)


def no_cookies() -> CookieJar:
    """A cookie jar that stores nothing: a cookie one account's answer sets is never sent for another. (A jar, not
    an ``httpx.Cookies``: the client copies the cookies of one of those into a default jar, losing the policy.)"""
    return CookieJar(policy=DefaultCookiePolicy(allowed_domains=[]))


def make_client(limits: httpx.Limits = LIMITS) -> httpx.AsyncClient:
    """A credential-free client: every request must bring its own headers and timeout."""
    return httpx.AsyncClient(limits=limits, cookies=no_cookies(), follow_redirects=False)


@dataclass(eq=False)
class _Pool:
    client: httpx.AsyncClient
    users: int = 0


_POOLS: dict[tuple[int, str], _Pool] = {}
_CREATING: dict[tuple[int, str], asyncio.Future[_Pool]] = {}


def _key(base_url: str) -> tuple[int, str]:
    return (id(asyncio.get_running_loop()), base_url.rstrip("/"))


async def acquire(base_url: str) -> httpx.AsyncClient:
    """The shared client for ``base_url`` in this event loop (created on first use, off the loop)."""
    key = _key(base_url)
    pool = _POOLS.get(key)
    if pool is None:
        creating = _CREATING.get(key)
        if creating is not None:
            pool = await asyncio.shield(creating)
        else:
            future: asyncio.Future[_Pool] = asyncio.get_running_loop().create_future()
            _CREATING[key] = future
            try:
                # httpx builds its TLS context when the client is made (~15 ms of CPU): not on the event loop.
                pool = _Pool(await asyncio.to_thread(make_client))
                _POOLS[key] = pool
                future.set_result(pool)
            except BaseException as exc:
                future.set_exception(exc)
                future.exception()
                raise
            finally:
                del _CREATING[key]
    pool.users += 1
    return pool.client


async def release(client: httpx.AsyncClient) -> None:
    """One user fewer; the last one closes the pool."""
    for key, pool in list(_POOLS.items()):
        if pool.client is client:
            pool.users -= 1
            if pool.users <= 0:
                del _POOLS[key]
                with contextlib.suppress(Exception):
                    await client.aclose()
            return


def open_pools() -> list[httpx.AsyncClient]:
    """The shared clients of this process (tests and benchmarks)."""
    return [pool.client for pool in _POOLS.values()]
