"""Event triggers for event-driven DAG runs: Housecall Pro job changes as Airflow asset events.

::

    bookings = Asset(
        "housecallpro_bookings",
        watchers=[AssetWatcher(name="hcp_bookings", trigger=JobScheduledEventTrigger(name="bookings"))],
    )

    with DAG("on_booking", schedule=bookings, max_active_runs=1): ...

Each trigger runs for as long as a DAG scheduled on its asset is unpaused, polls through the account's shared
poller (:mod:`.shared_poller`; the same detector, filters and payload as the sensors), and yields one
``TriggerEvent`` per change: the payload of :mod:`airflow_provider_housecallpro.events.payload`, which
becomes the asset event's ``extra["payload"]``.

Its detector state lives outside the kwargs (fixed at parse time) in the store of :mod:`.state_store`. Each
poll's new state is written together with the events it found *before* they are yielded, and the events stay in
the stored value for ``CONFIRM_SECONDS`` (by then the triggerer has handed them to its supervisor, which
stores them before it handles a later request). A trigger restarted after a crash sends the events still in
the stored value again (same ``event.id``) and carries on from the state that produced them: duplicates, never
losses, and a job that moved while the trigger was down is a reschedule of what was sent. The consumer helper
(:func:`airflow_provider_housecallpro.assets.job_events`) drops the duplicates.

A stored state the trigger cannot use (corrupt; on Airflow 3.0-3.2 another kind's, when two watchers share a name) is
never guessed past: the trigger yields one error event (``{"error": {"watcher", "kind", "store", "message",
"fix"}}``, which fails the consumer's ``job_events()``), then waits without polling, logging the error and reading
the store again every ``ERROR_REPEAT_SECONDS``, until ``housecallpro watcher-state reset`` has removed it.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections import deque
from collections.abc import AsyncIterator, Mapping
from datetime import UTC, datetime
from typing import Any, ClassVar

from airflow.triggers.base import BaseEventTrigger, TriggerEvent

from airflow_provider_housecallpro import options
from airflow_provider_housecallpro.api.models import parse_timestamp
from airflow_provider_housecallpro.events.detector import COMPLETED, SCHEDULED, DetectorState, EventType
from airflow_provider_housecallpro.hooks.housecallpro import HousecallProHook
from airflow_provider_housecallpro.triggers import webhook_inbox
from airflow_provider_housecallpro.triggers.shared_poller import (
    Subscription,
    account_key,
    shared_poller,
    warn_skipped,
)
from airflow_provider_housecallpro.triggers.state_store import StateStore, state_store
from airflow_provider_housecallpro.triggers.watcher_state import (
    ERROR,
    Saved,
    WatcherStateError,
    error_record,
    go_live_value,
    kind_of,
    read,
    reset_command,
    state_value,
)

__all__ = ["JobCompletedEventTrigger", "JobEventsEventTrigger", "JobScheduledEventTrigger"]

ERROR_REPEAT_SECONDS = 600.0  # a watcher stopped by an unusable state says so again this often
CONFIRM_SECONDS = 10.0  # events stay in the stored value this long after they were yielded
HORIZON_SLACK = 3600.0  # seconds the stored horizon may lag behind before a quiet poll writes the state
POLL_INTERVAL = 60.0
WEBHOOK_POLL_INTERVAL = 900.0  # with webhooks on, polling only catches what deliveries missed
NAME = re.compile(r"[A-Za-z0-9_.-]{1,200}")


class JobEventsEventTrigger(BaseEventTrigger):
    """Poll Housecall Pro for as long as the watcher runs; yield one event per booking/reschedule/completion.

    :param name: names this watcher's state (the Variable ``housecallpro_watcher__<name>`` on Airflow 3.0-3.2);
        unique per asset. Letters, digits, ``_ . -``.
    :param housecallpro_conn_id: the Housecall Pro connection.
    :param filters: which jobs (as for the sensors: customer attributes, job type, tags, employee).
    :param poll_interval: seconds between polls (default 60; 900 with ``webhooks``, where polling is the safety net).
    :param since: go-live for the very first start (ISO-8601); default: when the trigger first runs.
    :param max_events: at most this many events per poll (the rest follow on the next polls).
    :param detector_options: as for the sensors.
    :param client_options: as for the sensors.
    :param webhooks: also judge the job changes Housecall Pro's webhooks deliver to the receiver (README
        "Real-time (webhooks)"), within about a second, against the same state as the polls.
    """

    kind: ClassVar[EventType]

    def __init__(
        self,
        *,
        name: str,
        housecallpro_conn_id: str = HousecallProHook.default_conn_name,
        filters: Mapping[str, Any] | None = None,
        poll_interval: float | None = None,
        since: str | None = None,
        max_events: int | None = 100,
        detector_options: Mapping[str, Any] | None = None,
        client_options: Mapping[str, Any] | None = None,
        webhooks: bool = False,
    ) -> None:
        super().__init__()
        if not isinstance(name, str) or not NAME.fullmatch(name):
            raise ValueError(f"name must be 1-200 letters, digits, '_', '.' or '-'; got {name!r}")
        if since is not None:
            try:
                parse_timestamp(since)
            except (TypeError, ValueError) as exc:
                raise ValueError(f"since must be an ISO-8601 timestamp: {exc}") from None
        self.name = name
        self.housecallpro_conn_id = housecallpro_conn_id
        self.filters = dict(filters or {})
        if not isinstance(webhooks, bool):
            raise ValueError(f"webhooks must be True or False; got {webhooks!r}")
        self.webhooks = webhooks
        if poll_interval is None:
            poll_interval = WEBHOOK_POLL_INTERVAL if webhooks else POLL_INTERVAL
        self.poll_interval = options.poke_interval(poll_interval)
        self.since = since
        self.max_events = options.max_events(max_events)
        self.detector_options = dict(detector_options or {})
        self.client_options = options.client_options(client_options)
        self.settings = options.detector_settings(self.kind, self.filters, self.detector_options)
        self._reported = False  # the error event of an unusable state is sent once per run

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "name": self.name,
                "housecallpro_conn_id": self.housecallpro_conn_id,
                "filters": self.filters,
                "poll_interval": self.poll_interval,
                "since": self.since,
                "max_events": self.max_events,
                "detector_options": self.detector_options,
                "client_options": self.client_options,
                **({"webhooks": True} if self.webhooks else {}),  # absent when off: existing watchers keep their hash
            },
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        store = state_store(self, self.kind, self.name)
        saved: Saved | None = None
        while saved is None:
            try:
                saved = await self._load(store)
            except WatcherStateError as exc:
                async for stuck in self._stuck(exc):
                    yield stuck
        writer = _Writer(store, saved)
        for event in saved.pending:  # yielded before a restart, maybe never stored by Airflow: again
            yield TriggerEvent(event)
        if saved.pending:
            self.log.info(
                "Housecall Pro %s watcher %r: re-sent %d unconfirmed event(s)", self.kind, self.name, len(saved.pending)
            )
            writer.sent(saved.pending)
        hook = HousecallProHook(self.housecallpro_conn_id, client_options=self.client_options)
        poller = await shared_poller(
            account_key(self.housecallpro_conn_id, self.client_options), hook.aget_client_config
        )
        subscription = Subscription(
            self.settings,
            saved.detector,
            self.poll_interval,
            self.max_events,
            since=saved.since,
            webhooks=self.webhooks,
        )
        poller.subscribe(subscription)
        reader = webhook_inbox.join(self.housecallpro_conn_id) if self.webhooks else None
        try:
            while True:
                try:
                    outcome = await asyncio.wait_for(subscription.results.get(), timeout=writer.wait())
                except TimeoutError:
                    await writer.confirm()
                    continue
                if isinstance(outcome, BaseException):  # the poller retries next tick: keep watching
                    self.log.error("Housecall Pro %s poll failed: %s: %s", self.kind, type(outcome).__name__, outcome)
                    continue
                warn_skipped(self.log, outcome.skipped)
                # The new state and its events are stored *before* they are yielded: a crash after this write
                # re-sends them on restart (duplicates the ledger drops), never loses them.
                await writer.polled(outcome.state, outcome.events)
                for event in outcome.events:
                    yield TriggerEvent(event)
                if outcome.events:
                    self.log.info("Housecall Pro: %d %s event(s)", len(outcome.events), self.kind)
                    writer.sent(outcome.events)
        finally:
            if reader is not None:
                await webhook_inbox.leave(reader)
            await poller.unsubscribe(subscription)

    async def _load(self, store: StateStore) -> Saved:
        """What the store holds; for a watcher with nothing stored, its go-live, stored before the first poll so a
        restart before the first state write goes live at the same moment (and loses nothing made in between)."""
        value = await store.load()
        if value is None:
            since = parse_timestamp(self.since) if self.since else datetime.now(UTC).replace(microsecond=0)
            assert since is not None
            await store.save(go_live_value(self.kind, since))
            self.log.info("Housecall Pro %s watcher %r: no state yet, going live at %s", self.kind, self.name, since)
            return Saved(None, since, [])
        other = kind_of(value)
        if store.asset is None and other not in (None, self.kind):  # one Variable per name, whatever the kind
            raise WatcherStateError(
                self._error(
                    store,
                    f"{store.where} holds a {other} watcher's state: two watchers share the name {self.name!r}",
                    "give each watcher its own `name` (the other watcher keeps this Variable)",
                )
            )
        try:
            return read(value, self.kind)
        except (KeyError, TypeError, ValueError) as exc:  # never guess: a fresh start would drop or repeat events
            command = reset_command(self.name, self.kind, store.asset)
            raise WatcherStateError(
                self._error(
                    store,
                    f"{store.where} holds an unreadable state ({type(exc).__name__}: {exc})",
                    f"run `{command}` where the `airflow` command runs: the watcher then goes live again within "
                    f"{ERROR_REPEAT_SECONDS / 60:.0f} minutes or at its next start (changes made before then are not "
                    "delivered)",
                )
            ) from None

    def _error(self, store: StateStore, message: str, fix: str) -> dict[str, Any]:
        return error_record(watcher=self.name, kind=self.kind, store=store.where, message=message, fix=fix)

    async def _stuck(self, exc: WatcherStateError) -> AsyncIterator[TriggerEvent]:
        """A state it cannot use: the first time, one error event (an asset event: on the asset's page, and it
        fails the consumer's ``job_events()``); then alive without polling Housecall Pro, the error logged again
        and the store read again every ``ERROR_REPEAT_SECONDS`` (once reset, the watcher goes live). Exiting would
        only have the triggerer re-create it every few seconds, forever."""
        self.log.error("%s", exc)
        if not self._reported:
            self._reported = True
            now = datetime.now(UTC).isoformat()
            error = {**exc.record, "id": f"error:{self.kind}:{self.name}:{now}", "detected_at": now}
            yield TriggerEvent({ERROR: error})
        await asyncio.sleep(ERROR_REPEAT_SECONDS)


class _Writer:
    """Keeps the stored value = the newest detector state + the events yielded less than ``CONFIRM_SECONDS``
    ago (by then the triggerer has handed them to its supervisor, which stores them before it handles a later
    request). Writes only when the value changes."""

    def __init__(self, store: StateStore, saved: Saved) -> None:
        self.store = store
        self.detector = saved.detector
        self.unconfirmed: deque[tuple[float, list[dict[str, Any]]]] = deque()
        self.written: dict[str, Any] | None = None

    def _value(self, extra: list[dict[str, Any]] = []) -> dict[str, Any]:  # noqa: B006 (read only)
        assert self.detector is not None
        pending = [event for _, events in self.unconfirmed for event in events] + extra
        return state_value(self.detector, pending)

    async def _write(self, value: dict[str, Any]) -> None:
        if not _same(value, self.written):
            await self.store.save(value)
            self.written = value

    async def polled(self, detector: DetectorState, events: list[dict[str, Any]]) -> None:
        self.detector = detector
        await self._write(self._value(events))

    def sent(self, events: list[dict[str, Any]]) -> None:
        self.unconfirmed.append((time.monotonic() + CONFIRM_SECONDS, list(events)))

    def wait(self) -> float | None:
        return max(self.unconfirmed[0][0] - time.monotonic(), 0.0) if self.unconfirmed else None

    async def confirm(self) -> None:
        now, dropped = time.monotonic(), False
        while self.unconfirmed and self.unconfirmed[0][0] <= now:
            self.unconfirmed.popleft()
            dropped = True
        if dropped and self.detector is not None:
            await self._write(self._value())


def _same(value: dict[str, Any], written: dict[str, Any] | None) -> bool:
    """Nothing worth a write changed: the horizon trails *now* and the cursor follows the server's clock on every
    poll, so they alone moving by less than an hour do not count (a restart re-derives the horizon, and from an
    older cursor it reads back further and judges what it re-reads against the stored records: nothing is lost
    or repeated)."""
    if written is None:
        return False
    if value == written:
        return True
    new, old = dict(value["detector"]), dict(written["detector"])
    moved = max(abs(_epoch(new.pop(key, None)) - _epoch(old.pop(key, None))) for key in ("horizon", "cursor"))
    return new == old and value["pending"] == written["pending"] and moved < HORIZON_SLACK


def _epoch(stamp: Any) -> float:
    parsed = parse_timestamp(stamp) if isinstance(stamp, str) else None
    return parsed.timestamp() if parsed else 0.0


class JobScheduledEventTrigger(JobEventsEventTrigger):
    """One event per booking or reschedule of a job matching the filters."""

    kind = SCHEDULED


class JobCompletedEventTrigger(JobEventsEventTrigger):
    """One event per completion of a job matching the filters."""

    kind = COMPLETED
