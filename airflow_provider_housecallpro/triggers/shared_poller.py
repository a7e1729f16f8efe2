"""One poll per Housecall Pro account per triggerer process, shared by every job trigger on it.

Each trigger *subscribes* with its own detector (filter, state, cursor, event cap). The account's
:class:`SharedPoller` owns the one HTTP client (created once, in a thread, off the event loop) and one loop
that, every tick, runs the poll plans of the subscribers that are due one after another: identical page requests
(the idle poll's first page, the upcoming-window ranges) are fetched once and handed to every plan that asks,
and a plan that needs more (an older cursor after a restart, a late joiner) reads further on its own. A
failing fetch fails every plan that waited on it with the same error. The last subscriber leaving stops the
loop and closes the client.

Webhook deliveries (:mod:`.webhook_inbox`) are *pushed* into the same loop: between two polls, each subscriber's
detector judges the delivered jobs against its state exactly as a poll's (:mod:`..events.detector`), and the result
goes out on the subscriber's ``results`` like a poll's. One loop, one state per subscriber: a change seen by the
webhook and then by a poll (or the other way round) fires once.

Sharing is per event loop (one triggerer process runs one loop). Poke mode keeps its own poll: it runs in
workers.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from airflow_provider_housecallpro.api import operations as ops
from airflow_provider_housecallpro.api.client import AsyncHousecallProClient
from airflow_provider_housecallpro.api.core import ClientConfig
from airflow_provider_housecallpro.api.models import Page, RawJob
from airflow_provider_housecallpro.api.query import JobsQuery
from airflow_provider_housecallpro.events.detector import Detector, DetectorSettings, DetectorState, PollResult
from airflow_provider_housecallpro.events.poll import adrive, poll_plan

log = logging.getLogger(__name__)

AccountKey = tuple[Any, ...]
_POLLERS: dict[tuple[int, AccountKey], SharedPoller] = {}
_CREATING: dict[tuple[int, AccountKey], asyncio.Future[SharedPoller]] = {}


@dataclass(eq=False)
class Subscription:
    """One trigger's detector, fed by the account's poller. Results arrive on ``results``."""

    settings: DetectorSettings
    state: DetectorState | None
    interval: float
    max_events: int | None = None
    delay: float = 0.0  # the first poll comes no sooner than this many seconds after subscribing
    since: datetime | None = None  # go-live when ``state`` is None (a first run)
    webhooks: bool = False  # also judges the jobs webhook deliveries push (:meth:`SharedPoller.push`)
    results: asyncio.Queue[PollResult | BaseException] = field(default_factory=asyncio.Queue)
    last_poll: float = float("-inf")
    polls: int = 0

    def due(self, now: float, tick: float) -> bool:
        return now - self.last_poll >= self.interval - tick / 2


class _TickPages:
    """The pages fetched in one tick: each distinct query once (single flight), but never the same cached
    page twice to one plan (a plan that re-reads because the list moved gets a fresh page)."""

    def __init__(self, fetch: Callable[[JobsQuery], Awaitable[Page[RawJob]]]) -> None:
        self._fetch = fetch
        self._pages: dict[str, asyncio.Future[Page[RawJob]]] = {}

    def reader(self) -> Callable[[JobsQuery], Awaitable[Page[RawJob]]]:
        served: set[str] = set()

        async def read(query: JobsQuery) -> Page[RawJob]:
            key = repr(query.to_params())
            pending = self._pages.get(key)
            if pending is None or key in served:
                pending = asyncio.ensure_future(self._fetch(query))
                self._pages[key] = pending
            served.add(key)
            return await asyncio.shield(pending)

        return read

    def settle(self) -> None:
        for pending in self._pages.values():
            if pending.done() and not pending.cancelled():
                pending.exception()  # retrieved: no "exception never retrieved" warnings


class SharedPoller:
    def __init__(self, key: tuple[int, AccountKey], client: AsyncHousecallProClient) -> None:
        self.key = key
        self.loop = asyncio.get_running_loop()
        self.client = client
        self.subscribers: list[Subscription] = []
        self.requests = 0
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._pushed: list[Mapping[str, Any]] = []  # webhook entries ({"job": {...}} or {"job_id": ...}) to judge
        self.pushes = 0

    # -- subscribers ------------------------------------------------------------------------------
    def subscribe(self, subscription: Subscription) -> None:
        # Join the cadence of those already polling at this interval (one request serves them all): the first of
        # their polls at least ``delay`` from now. The first subscriber, or one with a new interval, polls after
        # ``delay``.
        interval, earliest = subscription.interval, time.monotonic() + subscription.delay
        peers = [s.last_poll for s in self.subscribers if s.interval == interval and s.polls]
        if peers:
            phase = max(peers)
            behind = earliest - (phase + interval)
            subscription.last_poll = phase + max(0, math.ceil(behind / interval)) * interval
        elif subscription.delay > 0:
            subscription.last_poll = earliest - interval
        self.subscribers.append(subscription)
        self._wake.set()
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run(), name=f"housecallpro-poller-{self.key[1]}")

    async def unsubscribe(self, subscription: Subscription) -> None:
        with contextlib.suppress(ValueError):
            self.subscribers.remove(subscription)
        if self.subscribers:
            return
        if _POLLERS.get(self.key) is self:
            del _POLLERS[self.key]
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        await self.client.aclose()

    def push(self, entries: Sequence[Mapping[str, Any]]) -> None:
        """Job changes delivered by webhook: judged by every subscriber before the next poll."""
        if entries:
            self._pushed.extend(entries)
            self._wake.set()

    # -- the loop ---------------------------------------------------------------------------------
    async def _fetch(self, query: JobsQuery) -> Page[RawJob]:
        self.requests += 1
        return await self.client.call(ops.list_jobs_raw(query))

    def _tick(self) -> float:
        return min((s.interval for s in self.subscribers), default=60.0)

    async def _run(self) -> None:
        while self.subscribers:
            if self._pushed:
                pushed, self._pushed = self._pushed, []
                await self._judge(pushed)
            tick = self._tick()
            started = time.monotonic()
            due = [s for s in self.subscribers if s.due(started, tick)]
            if due:
                await self._poll(due, started)
            # Sleep until the next subscriber is due, or a new one joins.
            now = time.monotonic()
            waits = [s.last_poll + s.interval - now for s in self.subscribers]
            self._wake.clear()
            if self._pushed:
                continue
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=max(min(waits, default=tick), 0.0))

    async def _poll(self, due: list[Subscription], started: float) -> None:
        pages = _TickPages(self._fetch)
        now = datetime.now(UTC)

        async def one(sub: Subscription) -> None:
            sub.last_poll = started
            sub.polls += 1
            try:
                plan = poll_plan(sub.settings, sub.state, now, since=sub.since, max_events=sub.max_events)
                result = await adrive(plan, pages.reader())
            except Exception as exc:  # every plan that waited on a failed fetch gets the same error
                sub.results.put_nowait(exc)
                return
            sub.state = result.state
            sub.results.put_nowait(result)

        # One plan after another, yielding in between: the first plan fetches, the others are fed from the tick's
        # pages, and the loop runs other triggers between plans (1,000 plans resumed in one batch would stall it
        # for their whole CPU time).
        for sub in due:
            await one(sub)
            await asyncio.sleep(0)
        pages.settle()

    async def _jobs_of(self, entries: list[Mapping[str, Any]]) -> list[RawJob]:
        """The delivered jobs; an entry naming only its job (an appointment event) is read with ``GET /jobs/{id}``."""
        jobs: list[RawJob] = []
        for entry in entries:
            job, job_id = entry.get("job"), entry.get("job_id")
            if isinstance(job, dict):
                jobs.append(job)
            elif isinstance(job_id, str):
                try:
                    self.requests += 1
                    jobs.append(await self.client.call(ops.get_job_raw(job_id)))
                except Exception as exc:  # the poll finds the change: only the fast path is lost
                    log.warning("Housecall Pro: job %s of a webhook could not be read (%s)", job_id, type(exc).__name__)
        return jobs

    async def _judge(self, entries: list[Mapping[str, Any]]) -> None:
        jobs = await self._jobs_of(entries)
        if not jobs:
            return
        self.pushes += 1
        now = datetime.now(UTC)
        for sub in list(self.subscribers):
            if not sub.webhooks or sub.state is None:
                continue  # not for webhooks; or before its first poll, which reads the account (go-live rules)
            detector = Detector(sub.settings, sub.state, now)
            for job in jobs:
                detector.observe(job)
            result = detector.finish()
            if result.events or result.state.records is not sub.state.records:
                sub.state = result.state
                sub.results.put_nowait(result)
            await asyncio.sleep(0)


async def shared_poller(account: AccountKey, config: Callable[[], Awaitable[ClientConfig]]) -> SharedPoller:
    """The running poller for ``account`` in this event loop, created (with its client) on first use."""
    loop = asyncio.get_running_loop()
    key = (id(loop), account)
    poller = _POLLERS.get(key)
    if poller is not None and poller.loop is loop:
        return poller
    creating = _CREATING.get(key)
    if creating is not None:
        return await asyncio.shield(creating)
    future: asyncio.Future[SharedPoller] = asyncio.get_running_loop().create_future()
    _CREATING[key] = future
    try:
        client_config = await config()
        # httpx builds its TLS context when the client is made (~15 ms of CPU): not on the event loop.
        client = await asyncio.to_thread(AsyncHousecallProClient, client_config)
        poller = SharedPoller(key, client)
        _POLLERS[key] = poller
        future.set_result(poller)
        return poller
    except BaseException as exc:
        future.set_exception(exc)
        future.exception()
        raise
    finally:
        del _CREATING[key]


def account_key(conn_id: str, client_options: Mapping[str, Any]) -> AccountKey:
    """Triggers on the same connection (with the same client options) share one poll and one client."""
    return (conn_id, tuple(sorted(client_options.items())))


def warn_skipped(logger: Any, skipped: list[str]) -> None:
    """One warning per poll naming the jobs that could not be read (the rest were delivered)."""
    if skipped:
        logger.warning(
            "Housecall Pro: %d job(s) could not be read and were skipped: %s", len(skipped), ", ".join(skipped[:10])
        )


def active_pollers() -> list[SharedPoller]:
    """The pollers of this process (for tests and benchmarks)."""
    return list(_POLLERS.values())
