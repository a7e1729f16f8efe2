"""Polling triggers for task deferral: Job scheduled / Job completed.

They run in the triggerer's event loop, so they do no sync I/O: the connection is resolved with the
hook's async path and every page read is async. Every trigger on one connection subscribes to that
account's shared poller (:mod:`.shared_poller`): one poll per account per triggerer process (every account
sending through one shared connection pool), each trigger keeping its own filter, state and cursor. Kwargs are
JSON primitives only — connection id, filter dict, detector state, intervals — never the API key.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from datetime import UTC, datetime
from typing import Any, ClassVar

from airflow.triggers.base import BaseTrigger, TriggerEvent

from airflow_provider_housecallpro import options
from airflow_provider_housecallpro.api.errors import HousecallProError
from airflow_provider_housecallpro.events.detector import (
    COMPLETED,
    SCHEDULED,
    DetectorState,
    EventType,
)
from airflow_provider_housecallpro.hooks.housecallpro import HousecallProHook
from airflow_provider_housecallpro.triggers.shared_poller import (
    Subscription,
    account_key,
    shared_poller,
    warn_skipped,
)

__all__ = ["JobCompletedTrigger", "JobEventsTrigger", "JobScheduledTrigger"]

FIRST_POLL_DELAY = 10.0  # seconds


class JobEventsTrigger(BaseTrigger):
    """Poll Housecall Pro until jobs change in a way that fires events, then yield them once.

    Yields one TriggerEvent and ends: ``{"status": "success", "events": [...], "state": {...}}``,
    ``{"status": "timeout", ...}`` when ``timeout_at`` passes, or ``{"status": "error", "message": ...}``
    when the API keeps failing after the hook's retries.
    """

    kind: ClassVar[EventType]

    def __init__(
        self,
        *,
        housecallpro_conn_id: str,
        state: Mapping[str, Any],
        filters: Mapping[str, Any] | None = None,
        poll_interval: float = 60.0,
        max_events: int | None = None,
        timeout_at: str | None = None,
        detector_options: Mapping[str, Any] | None = None,
        client_options: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__()
        self.housecallpro_conn_id = housecallpro_conn_id
        self.state = dict(state)
        self.filters = dict(filters or {})
        self.poll_interval = options.poke_interval(poll_interval)
        self.max_events = options.max_events(max_events)
        self.timeout_at = timeout_at
        self.detector_options = dict(detector_options or {})
        self.client_options = options.client_options(client_options)
        self.settings = options.detector_settings(self.kind, self.filters, self.detector_options)

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "housecallpro_conn_id": self.housecallpro_conn_id,
                "state": self.state,
                "filters": self.filters,
                "poll_interval": self.poll_interval,
                "max_events": self.max_events,
                "timeout_at": self.timeout_at,
                "detector_options": self.detector_options,
                "client_options": self.client_options,
            },
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        yield await self._wait_for_event()

    async def _wait_for_event(self) -> TriggerEvent:
        hook = HousecallProHook(self.housecallpro_conn_id, client_options=self.client_options)
        try:
            state = DetectorState.from_json(self.state, self.kind)  # decoded once, then kept by the poller
            poller = await shared_poller(
                account_key(self.housecallpro_conn_id, self.client_options), hook.aget_client_config
            )
            # The sensor polled in the worker just before deferring: the trigger's first poll comes one interval
            # later (at most FIRST_POLL_DELAY), which also keeps clear of an Airflow 3.0 scheduler race that fails
            # a try whose trigger fires before the scheduler has seen the worker leave (see docs/RELIABILITY.md).
            delay = min(self.poll_interval, FIRST_POLL_DELAY)
            subscription = Subscription(self.settings, state, self.poll_interval, self.max_events, delay=delay)
            poller.subscribe(subscription)
            try:
                return await self._wait(subscription)
            finally:
                await poller.unsubscribe(subscription)
        except HousecallProError as exc:
            self.log.error("Housecall Pro %s poll failed: %s", self.kind, exc)
            return TriggerEvent({"status": "error", "message": f"{type(exc).__name__}: {exc}"})
        except Exception as exc:  # never die in the triggerer: the task gets the error (and its retries)
            self.log.exception("Housecall Pro %s trigger failed unexpectedly", self.kind)
            return TriggerEvent({"status": "error", "message": f"{type(exc).__name__}: {exc}"})

    async def _wait(self, subscription: Subscription) -> TriggerEvent:
        deadline = datetime.fromisoformat(self.timeout_at) if self.timeout_at else None
        while True:
            timeout = None
            if deadline is not None and subscription.polls:  # the first poll always happens
                timeout = max((deadline - datetime.now(UTC)).total_seconds(), 0.0)
            try:
                outcome = await asyncio.wait_for(subscription.results.get(), timeout=timeout)
            except TimeoutError:
                return TriggerEvent({"status": "timeout", "message": f"no {self.kind} event by {self.timeout_at}"})
            if isinstance(outcome, BaseException):
                raise outcome
            warn_skipped(self.log, outcome.skipped)
            if outcome.events:
                self.log.info(
                    "Housecall Pro: %d %s event(s) after %d poll(s)", len(outcome.events), self.kind, subscription.polls
                )
                return TriggerEvent(
                    {
                        "status": "success",
                        "events": outcome.events,
                        "state": outcome.state.to_json(),
                        "pending": outcome.pending,
                    }
                )
            if deadline is not None and datetime.now(UTC) >= deadline:
                return TriggerEvent({"status": "timeout", "message": f"no {self.kind} event by {self.timeout_at}"})


class JobScheduledTrigger(JobEventsTrigger):
    """Fires when a job matching the filter is booked or rescheduled."""

    kind = SCHEDULED


class JobCompletedTrigger(JobEventsTrigger):
    """Fires when a job matching the filter is completed."""

    kind = COMPLETED
