"""Polling triggers for task deferral: Job scheduled / Job completed.

They run in the triggerer's event loop, so they do no sync I/O: the connection is resolved with the
hook's async path and every page read is async. Kwargs are JSON primitives only — connection id,
filter dict, detector state, intervals — never the API key.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from datetime import UTC, datetime
from typing import Any, ClassVar

from airflow.triggers.base import BaseTrigger, TriggerEvent

from airflow_provider_housecallpro.api.errors import HousecallProError
from airflow_provider_housecallpro.events.detector import (
    COMPLETED,
    SCHEDULED,
    DetectorState,
    EventType,
    PollResult,
)
from airflow_provider_housecallpro.events.poll import PollPlan, poll_plan
from airflow_provider_housecallpro.hooks.housecallpro import HousecallProHook
from airflow_provider_housecallpro.options import client_options as check_client_options
from airflow_provider_housecallpro.options import detector_settings

__all__ = ["JobCompletedTrigger", "JobEventsTrigger", "JobScheduledTrigger", "detector_settings"]


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
        self.poll_interval = float(poll_interval)
        self.max_events = max_events
        self.timeout_at = timeout_at
        self.detector_options = dict(detector_options or {})
        self.client_options = check_client_options(client_options)
        self.settings = detector_settings(self.kind, self.filters, self.detector_options)

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
        # The HTTP client is closed before the event is yielded: nothing is held open while Airflow
        # decides what to do with the generator.
        yield await self._wait_for_event()

    async def _wait_for_event(self) -> TriggerEvent:
        hook = HousecallProHook(self.housecallpro_conn_id, client_options=self.client_options)
        try:
            async with hook.ajob_event_poller() as poll:  # one async connection lookup, one client
                return await self._poll_until_event(poll)
        except HousecallProError as exc:
            self.log.error("Housecall Pro %s poll failed: %s", self.kind, exc)
            return TriggerEvent({"status": "error", "message": f"{type(exc).__name__}: {exc}"})
        except Exception as exc:  # never die in the triggerer: the task gets the error (and its retries)
            self.log.exception("Housecall Pro %s trigger failed unexpectedly", self.kind)
            return TriggerEvent({"status": "error", "message": f"{type(exc).__name__}: {exc}"})

    async def _poll_until_event(self, poll: Callable[[PollPlan], Awaitable[PollResult]]) -> TriggerEvent:
        deadline = datetime.fromisoformat(self.timeout_at) if self.timeout_at else None
        # Decoded once; polls that change nothing hand the same state object on.
        state = DetectorState.from_json(self.state, self.kind)
        polls = 0
        while True:
            result = await poll(poll_plan(self.settings, state, datetime.now(UTC), max_events=self.max_events))
            polls += 1
            state = result.state
            if result.skipped:
                self.log.warning(
                    "Housecall Pro: %d job(s) could not be read and were skipped: %s",
                    len(result.skipped),
                    ", ".join(result.skipped[:10]),
                )
            if result.events:
                self.log.info("Housecall Pro: %d %s event(s) after %d poll(s)", len(result.events), self.kind, polls)
                return TriggerEvent(
                    {
                        "status": "success",
                        "events": result.events,
                        "state": state.to_json(),
                        "pending": result.pending,
                    }
                )
            wait = self.poll_interval
            if deadline is not None:
                remaining = (deadline - datetime.now(UTC)).total_seconds()
                if remaining <= 0:
                    return TriggerEvent({"status": "timeout", "message": f"no {self.kind} event by {self.timeout_at}"})
                wait = min(wait, remaining)
            await asyncio.sleep(wait)


class JobScheduledTrigger(JobEventsTrigger):
    """Fires when a job matching the filter is booked or rescheduled."""

    kind = SCHEDULED


class JobCompletedTrigger(JobEventsTrigger):
    """Fires when a job matching the filter is completed."""

    kind = COMPLETED
