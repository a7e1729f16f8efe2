"""One poll per Housecall Pro account per triggerer process, shared by every job trigger on it.

Each trigger *subscribes* with its own detector (filter, state, cursor, event cap). The account's
:class:`SharedPoller` holds its connection's client settings (looked up once) and one timer; when the timer fires,
a short-lived task runs the poll plans of the subscribers that are due one after another: identical page requests
(the idle poll's first page, the upcoming-window ranges) are fetched once and handed to every plan that asks,
and a plan that needs more (an older cursor after a restart, a late joiner) reads further on its own. A
failing fetch fails every plan that waited on it with the same error; retries, back-off and ``Retry-After`` are
the account's own (they delay no other account). The last subscriber leaving stops the poller.

Many accounts: every poller sends through one connection pool per API base URL (:mod:`..api.pool`, credentials
per request), and poll starts across accounts are at least ``_Slots.GAP`` apart, so a thousand accounts coming
due together (a triggerer starting) are spread out instead of stalling the loop in one herd.

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
import weakref
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from airflow_provider_housecallpro.api import operations as ops
from airflow_provider_housecallpro.api import pool
from airflow_provider_housecallpro.api.client import AsyncHousecallProClient
from airflow_provider_housecallpro.api.core import ClientConfig
from airflow_provider_housecallpro.api.models import Page, RawJob
from airflow_provider_housecallpro.api.query import JobsQuery
from airflow_provider_housecallpro.api.shared import Shared
from airflow_provider_housecallpro.events.detector import Detector, DetectorSettings, DetectorState, PollResult
from airflow_provider_housecallpro.events.poll import adrive, poll_plan
from airflow_provider_housecallpro.triggers import process_gc
from airflow_provider_housecallpro.triggers.mailbox import Mailbox

log = logging.getLogger(__name__)

AccountKey = tuple[Any, ...]
_POLLERS: Shared[tuple[int, AccountKey], SharedPoller] = Shared()


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
    results: Mailbox[PollResult | BaseException] = field(default_factory=Mailbox)
    last_poll: float = float("-inf")
    polls: int = 0

    def due(self, now: float, tick: float) -> bool:
        return now - self.last_poll >= self.interval - tick / 2


def _on_cadence(last: float, interval: float, started: float, tick: float) -> float:
    """When this poll counts as made: on the subscriber's cadence (its previous poll plus whole intervals), not when
    it started. A poll that starts late (a taken slot, a busy loop) does not push every later poll back: an account
    keeps its phase, one request per interval. A subscriber more than an interval behind (a long outage of the
    loop) skips the polls it missed instead of making them up in a burst; a first poll sets the phase."""
    if last == float("-inf") or started - last >= 2 * interval:
        return started
    return last + max(1, math.floor((started - last + tick / 2) / interval)) * interval


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
        """The tick is over: a fetch still running (the poll was cancelled: its trigger ended) is cancelled
        before the client it uses is closed; a finished one's error counts as retrieved."""
        for pending in self._pages.values():
            if not pending.done():
                pending.cancel()
            elif not pending.cancelled():
                pending.exception()  # retrieved: no "exception never retrieved" warnings


class _Slots:
    """Start times of polls in one event loop, at least ``GAP`` apart: accounts due at the same moment (a
    triggerer starting 1,000 of them, or phases that drifted together) start one after another instead of in one
    herd, and keep the phases they got. A few accounts never wait: only a taken slot moves a poll."""

    GAP = 0.002  # seconds: at most 500 poll starts a second

    def __init__(self) -> None:
        self.taken: set[int] = set()

    def take(self, when: float) -> int:
        slot = math.ceil(when / self.GAP)
        while slot in self.taken:
            slot += 1
        self.taken.add(slot)
        return slot

    def free(self, slot: int | None) -> None:
        if slot is not None:
            self.taken.discard(slot)


_SLOTS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Slots] = weakref.WeakKeyDictionary()


class SharedPoller:
    """One account's poll: between polls it holds its subscribers' states and one timer (no task, no client of its
    own: it sends through the process's shared pool, :mod:`~airflow_provider_housecallpro.api.pool`)."""

    def __init__(
        self, key: tuple[int, AccountKey], client: AsyncHousecallProClient, http: pool.SharedHttp | None = None
    ) -> None:
        self.key = key
        self.loop = asyncio.get_running_loop()
        self.client = client
        self.http = http  # the shared pool this poller holds a reference to (released when it stops)
        self.subscribers: list[Subscription] = []
        self.requests = 0
        self.closed = False
        self._timer: asyncio.TimerHandle | None = None
        self._slot: int | None = None
        self._polling: asyncio.Task[None] | None = None
        self._slots = _SLOTS.setdefault(self.loop, _Slots())
        self.first_page: int | None = None  # the changes pass's first page size (None: the settings')
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
        if self._polling is None:
            self._arm()

    async def unsubscribe(self, subscription: Subscription) -> None:
        with contextlib.suppress(ValueError):
            self.subscribers.remove(subscription)
        if self.subscribers or self.closed:
            return
        self.closed = True
        _POLLERS.discard(self)
        self._disarm()
        if self._polling is not None and self._polling is not asyncio.current_task():
            self._polling.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._polling
        await self.client.aclose()
        if self.http is not None:
            await pool.release(self.http)

    def push(self, entries: Sequence[Mapping[str, Any]]) -> None:
        """Job changes delivered by webhook: judged by every subscriber now, or right after a poll in progress
        (never during one)."""
        if not entries or self.closed:
            return
        self._pushed.extend(entries)
        if self._polling is None:
            self._disarm()
            self._start()

    # -- the timer --------------------------------------------------------------------------------
    def _disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._slots.free(self._slot)
        self._slot = None

    def _arm(self) -> None:
        """One timer for when the next subscriber is due, at a free slot."""
        self._disarm()
        if not self.subscribers or self.closed:
            return
        due = min(s.last_poll + s.interval for s in self.subscribers)
        self._slot = self._slots.take(max(due, time.monotonic()))
        self._timer = self.loop.call_later(max(self._slot * self._slots.GAP - time.monotonic(), 0.0), self._fire)

    def _fire(self) -> None:
        self._timer = None
        self._slots.free(self._slot)  # in the past now: no poll asks for it again
        self._slot = None
        self._start()

    def _start(self) -> None:
        self._polling = self.loop.create_task(self._poll_due(), name=f"housecallpro-poll-{self.key[1][0]}")

    async def _poll_due(self) -> None:
        try:
            if self._pushed:
                pushed, self._pushed = self._pushed, []
                await self._judge(pushed)
            tick = self._tick()
            started = time.monotonic()
            due = [s for s in self.subscribers if s.due(started, tick)]
            if due:
                await self._poll(due, started, tick)
        finally:
            self._polling = None
            if self._pushed and not self.closed and self.subscribers:
                self._start()  # delivered while this poll ran: judged now
            else:
                self._arm()

    # -- the poll ---------------------------------------------------------------------------------
    async def _fetch(self, query: JobsQuery) -> Page[RawJob]:
        self.requests += 1
        return await self.client.call(ops.list_jobs_raw(query))

    def _tick(self) -> float:
        return min((s.interval for s in self.subscribers), default=60.0)

    async def _poll(self, due: list[Subscription], started: float, tick: float) -> None:
        pages = _TickPages(self._fetch)
        now = datetime.now(UTC)
        recents: list[int] = []

        async def one(sub: Subscription, read: Callable[[JobsQuery], Awaitable[Page[RawJob]]]) -> None:
            sub.last_poll = _on_cadence(sub.last_poll, sub.interval, started, tick)
            sub.polls += 1
            try:
                plan = poll_plan(
                    sub.settings,
                    sub.state,
                    now,
                    since=sub.since,
                    max_events=sub.max_events,
                    first_page=self.first_page,
                )
                result = await adrive(plan, read)
            except Exception as exc:  # every plan that waited on a failed fetch gets the same error
                sub.results.put_nowait(exc)
                return
            if result.recent is not None:
                recents.append(result.recent)
            sub.state = result.state
            sub.results.put_nowait(result)

        # One plan after another, yielding in between: the first plan fetches, the others are fed from the tick's
        # pages, and the loop runs other triggers between plans (1,000 plans resumed in one batch would stall it
        # for their whole CPU time).
        try:
            if len(due) == 1:  # nothing to share: no single-flight task per page
                await one(due[0], self._fetch)
                return
            for index, sub in enumerate(due):
                await one(sub, pages.reader())
                if index + 1 < len(due):
                    await asyncio.sleep(0)
        finally:
            pages.settle()
            if recents:
                # The next first page: the jobs within the look-back last time, plus one to show the floor (one
                # job on a quiet account), the same for every subscriber so that one request still serves all.
                self.first_page = max(recents) + 1

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


_LOOKUPS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = weakref.WeakKeyDictionary()


def _lookup_gate(loop: asyncio.AbstractEventLoop) -> asyncio.Lock:
    gate = _LOOKUPS.get(loop)
    if gate is None:
        gate = _LOOKUPS[loop] = asyncio.Lock()
    return gate


async def shared_poller(account: AccountKey, config: Callable[[], Awaitable[ClientConfig]]) -> SharedPoller:
    """The running poller for ``account`` in this event loop, created on first use (its connection looked up
    once; its requests sent through the shared pool of its API base URL)."""
    loop = asyncio.get_running_loop()
    key = (id(loop), account)

    async def make() -> SharedPoller:
        if process_gc.pending():
            await asyncio.to_thread(process_gc.freeze_once)
        # One account's connection lookup at a time: each masks the account's API key, and Airflow's secrets
        # masker recompiles one pattern of every key it holds per new key (~10 ms at a thousand keys); a thousand
        # lookups answered together would do that in one go and stall the loop for seconds.
        async with _lookup_gate(loop):
            client_config = await config()
        http = await pool.acquire(client_config.base_url)
        return SharedPoller(key, AsyncHousecallProClient(client_config, shared=http), http)

    return await _POLLERS.get(key, make, usable=lambda poller: poller.loop is loop)


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
    return _POLLERS.values()
