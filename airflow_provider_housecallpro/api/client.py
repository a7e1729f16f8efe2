"""Thin sync and async drivers around :class:`~.core.HttpCore`.

They only send, sleep and feed outcomes back to the core; everything else is decided once, in the core.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from types import TracebackType
from typing import Any, Self, TypeVar

import httpx
from pydantic import BaseModel

from airflow_provider_housecallpro.api.core import ApiRequest, ClientConfig, HttpCore
from airflow_provider_housecallpro.api.errors import HousecallProDecodeError
from airflow_provider_housecallpro.api.models import Page
from airflow_provider_housecallpro.api.operations import Operation
from airflow_provider_housecallpro.api.pool import SharedHttp

T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)

PageOperation = Callable[[int], Operation[Page[M]]]


def _parse(core: HttpCore, op: Operation[T], data: Any) -> T:
    try:
        return op.parse(data)
    except ValueError as exc:  # pydantic.ValidationError is a ValueError
        raise HousecallProDecodeError(
            f"Housecall Pro {op.request.method} {op.request.path} answered with an unexpected shape: "
            f"{core.scrub(str(exc).splitlines()[0])}",
            method=op.request.method,
            path=op.request.path,
        ) from None


class HousecallProClient:
    """Synchronous client (``httpx.Client``). Use as a context manager or call :meth:`close`."""

    def __init__(self, config: ClientConfig, *, transport: httpx.BaseTransport | None = None) -> None:
        self.core = HttpCore(config)
        self._http = httpx.Client(timeout=self.core.timeout(), transport=transport)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.core.config!r})"

    def request(self, request: ApiRequest) -> Any:
        plan = self.core.attempts(request)
        delay = next(plan)
        while True:
            if delay:
                time.sleep(delay)
            outcome: httpx.Response | httpx.TransportError
            try:
                outcome = self._http.send(self.core.build(request))
            except httpx.TransportError as exc:
                outcome = exc
            try:
                delay = plan.send(outcome)
            except StopIteration as done:
                return done.value

    def call(self, op: Operation[T]) -> T:
        return _parse(self.core, op, self.request(op.request))

    def pages(self, make: PageOperation[M], *, max_pages: int | None = None) -> Iterator[Page[M]]:
        """Read pages 1, 2, ... until the last one (or ``max_pages``)."""
        page_no: int | None = 1
        read = 0
        while page_no is not None and (max_pages is None or read < max_pages):
            page = self.call(make(page_no))
            read += 1
            yield page
            page_no = page.next_page

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class AsyncHousecallProClient:
    """Asynchronous client (``httpx.AsyncClient``). Use as an async context manager.

    ``shared``: a credential-free pool shared by many accounts (:mod:`.pool`) to send through instead of a client
    of its own (each request waits for its gate; back-off sleeps hold nothing); :meth:`aclose` leaves it open.
    """

    _http: httpx.AsyncClient | None

    def __init__(
        self,
        config: ClientConfig,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        shared: SharedHttp | None = None,
    ) -> None:
        self.core = HttpCore(config)
        self._send: Callable[[httpx.Request], Awaitable[httpx.Response]]
        if shared is None:
            self._http = httpx.AsyncClient(timeout=self.core.timeout(), transport=transport)
            self._send = functools.partial(self._http.send, follow_redirects=False)
        else:
            self._http = None
            self._send = shared.send

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.core.config!r})"

    async def request(self, request: ApiRequest) -> Any:
        plan = self.core.attempts(request)
        delay = next(plan)
        while True:
            if delay:
                await asyncio.sleep(delay)
            outcome: httpx.Response | httpx.TransportError
            try:
                outcome = await self._send(self.core.build(request))
            except httpx.TransportError as exc:
                outcome = exc
            try:
                delay = plan.send(outcome)
            except StopIteration as done:
                return done.value

    async def call(self, op: Operation[T]) -> T:
        return _parse(self.core, op, await self.request(op.request))

    async def pages(self, make: PageOperation[M], *, max_pages: int | None = None) -> AsyncIterator[Page[M]]:
        """Read pages 1, 2, ... until the last one (or ``max_pages``)."""
        page_no: int | None = 1
        read = 0
        while page_no is not None and (max_pages is None or read < max_pages):
            page = await self.call(make(page_no))
            read += 1
            yield page
            page_no = page.next_page

    async def aclose(self) -> None:
        if self._http is not None:
            await self._http.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()
