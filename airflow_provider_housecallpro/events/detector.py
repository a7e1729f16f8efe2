"""Change detection for the Job scheduled / Job completed triggers (pure: no I/O, no Airflow).

The detector is fed jobs (raw dicts, exactly as the API returned them) and keeps a small state:

- ``cursor``: the newest ``updated_at`` seen; incremental reads go newest-first down to it (with overlap).
- ``jobs``: per-job fingerprints — the schedule (``start|end|arrival_window``) for *scheduled*, the
  completion for *completed* — each with an anchor time (scheduled start / completion time).
- ``horizon``: jobs anchored before it are history. A job the detector has never seen fires only if
  its anchor is after the horizon; that is how pruning keeps the state bounded without re-firing for
  pruned jobs.

A first poll has no state and starts from ``since`` (the sensor uses its DAG run's start unless told
otherwise): what changed before it is history and fires nothing.

Events fire on a fingerprint change of a job that matches the filter, so re-reading a job (overlapping
polls, shifted pages, retries, restarts from an older state) never fires twice.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from airflow_provider_housecallpro.api.models import Job, format_timestamp, parse_timestamp
from airflow_provider_housecallpro.events.filters import JobFilter
from airflow_provider_housecallpro.events.payload import build_event, decode_schedule, schedule_fingerprint

log = logging.getLogger(__name__)

EventType = Literal["job.scheduled", "job.completed"]
SCHEDULED: EventType = "job.scheduled"
COMPLETED: EventType = "job.completed"
_SCHEDULABLE = {"scheduled", "in progress"}
_COMPLETE = {"complete rated", "complete unrated"}
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class DetectorState(BaseModel):
    """What a sensor remembers between polls and runs. JSON-serialisable and bounded in size."""

    model_config = ConfigDict(extra="forbid")

    version: Literal[1] = 1
    kind: EventType
    cursor: str | None = None
    horizon: str
    reconciled_at: str | None = None
    # job id -> (fingerprint, anchor as epoch seconds); a schedule's fingerprint is "start|end|window"
    # in epoch seconds and minutes, compact because the state travels in trigger kwargs and XCom.
    jobs: dict[str, tuple[str, int]] = Field(default_factory=dict)


@dataclass(frozen=True)
class DetectorSettings:
    kind: EventType
    filter: JobFilter = field(default_factory=JobFilter)
    page_size: int = 100
    overlap: timedelta = timedelta(minutes=2)
    retention: timedelta = timedelta(days=30)
    max_tracked: int = 5000
    reconcile_interval: timedelta = timedelta(minutes=15)


@dataclass
class PollResult:
    events: list[dict[str, Any]]
    state: DetectorState
    pending: int = 0  # events found but held back by max_events (they fire on the next poll)


def _ts(value: Any) -> datetime | None:
    try:
        return parse_timestamp(value)
    except ValueError:
        return None


def _epoch(when: datetime) -> int:
    return int((when - _EPOCH).total_seconds())


class Detector:
    """One poll's worth of detection: ``observe`` jobs, then ``finish``."""

    def __init__(
        self,
        settings: DetectorSettings,
        state: DetectorState | Mapping[str, Any] | None,
        now: datetime,
        since: datetime | None = None,
    ) -> None:
        self.settings = settings
        self.now = now
        if state is not None and not isinstance(state, DetectorState):
            state = DetectorState.model_validate(state)
        if state is not None and state.kind != settings.kind:
            raise ValueError(f"state is for {state.kind} events, not {settings.kind}")
        # A first poll starts from ``since``: jobs last changed before it are history, remembered (so a
        # later change is told apart from a new booking) but not fired.
        self.floor: datetime | None = None
        if state is None:
            if since is None:
                raise ValueError("a first poll (no state) needs `since`")
            since = since.replace(microsecond=0)  # the API's timestamps have whole seconds
            self.floor = since
            # Completions before `since` are history; schedules are remembered back to since - retention.
            horizon = since if settings.kind == COMPLETED else since - settings.retention
            state = DetectorState(kind=settings.kind, cursor=format_timestamp(since), horizon=format_timestamp(horizon))
        self.before = dict(state.jobs)
        self.state = state.model_copy(deep=True)
        self.horizon = parse_timestamp(self.state.horizon) or now
        self.cursor = _ts(self.state.cursor)
        self.newest: datetime | None = self.cursor
        self._found: dict[str, tuple[datetime, dict[str, Any], bool]] = {}  # job id -> (sort key, event, reconcile)

    @property
    def found(self) -> int:
        return len(self._found)

    # -- what to read ---------------------------------------------------------------------------
    def wants_older_than(self, oldest_on_page: datetime | None) -> bool:
        """After a newest-first page: is the cursor (minus overlap) still older than the page's end?"""
        if self.cursor is None or oldest_on_page is None:
            return True
        return oldest_on_page >= self.cursor - self.settings.overlap

    def reconcile_due(self) -> bool:
        if self.settings.kind != SCHEDULED:
            return False
        last = _ts(self.state.reconciled_at)
        return last is None or self.now - last >= self.settings.reconcile_interval

    def window_start(self) -> datetime:
        return self.horizon

    # -- observing ------------------------------------------------------------------------------
    def observe(self, raw: Mapping[str, Any], *, reconcile: bool = False) -> None:
        job = Job.model_validate(raw)
        updated = job.updated_at
        if updated is not None and not reconcile and (self.newest is None or updated > self.newest):
            self.newest = updated
        if self.settings.kind == SCHEDULED:
            self._observe_schedule(job, raw, reconcile)
        else:
            self._observe_completion(job, raw, reconcile)

    def _observe_schedule(self, job: Job, raw: Mapping[str, Any], reconcile: bool) -> None:
        schedule = job.schedule
        start = schedule.scheduled_start if schedule else None
        if start is None or (job.work_status or "scheduled") not in _SCHEDULABLE:
            self.state.jobs.pop(job.id, None)  # canceled / unscheduled / done: a later booking is new
            return
        assert schedule is not None
        fingerprint = schedule_fingerprint(start, schedule.scheduled_end, schedule.arrival_window)
        known = self.state.jobs.get(job.id)
        if known is None and start < self.horizon:
            return  # history: never seen, anchored before the horizon
        self.state.jobs[job.id] = (fingerprint, _epoch(start))
        if known is not None and known[0] == fingerprint:
            return
        unchanged_since_floor = self.floor is not None and job.updated_at is not None and job.updated_at < self.floor
        if unchanged_since_floor or not self.settings.filter.matches(job):
            return
        previous = decode_schedule(known[0]) if known else None
        self._fire(job, raw, reconcile, is_reschedule=known is not None, previous=previous, version=fingerprint)

    def _observe_completion(self, job: Job, raw: Mapping[str, Any], reconcile: bool) -> None:
        completed_at = job.work_timestamps.completed_at if job.work_timestamps else None
        if job.work_status not in _COMPLETE and completed_at is None:
            return
        if job.id in self.state.jobs:
            return
        anchor = completed_at or job.updated_at or self.now
        if anchor < self.horizon:
            return
        self.state.jobs[job.id] = ("completed", _epoch(anchor))
        if not self.settings.filter.matches(job):
            return
        self._fire(job, raw, reconcile, is_reschedule=False, previous=None, version="completed")

    def _fire(
        self,
        job: Job,
        raw: Mapping[str, Any],
        reconcile: bool,
        *,
        is_reschedule: bool,
        previous: dict[str, Any] | None,
        version: str,
    ) -> None:
        event_id = f"{job.id}/{self.settings.kind}/{hashlib.sha1(version.encode()).hexdigest()[:12]}"
        event = build_event(
            raw,
            job,
            event_type=self.settings.kind,
            event_id=event_id,
            is_reschedule=is_reschedule,
            previous_schedule=previous,
            detected_at=format_timestamp(self.now),
        )
        self._found[job.id] = (job.updated_at or self.now, event, reconcile)

    # -- result ---------------------------------------------------------------------------------
    def finish(self, *, reconciled: bool = False, max_events: int | None = None) -> PollResult:
        """Events oldest first (at most ``max_events``; the rest stay pending) and the new state."""
        found = sorted(self._found.items(), key=lambda item: (item[1][0], item[0]))
        cut = len(found) if max_events is None else max_events
        delivered, held = found[:cut], found[cut:]
        cursor = self.newest
        if reconciled:
            self.state.reconciled_at = format_timestamp(self.now)
        for job_id, (updated, _event, from_reconcile) in held:
            # Forget these changes were seen, so that the next poll finds them again.
            if job_id in self.before:
                self.state.jobs[job_id] = self.before[job_id]
            else:
                self.state.jobs.pop(job_id, None)
            if from_reconcile:
                self.state.reconciled_at = None
            elif cursor is not None and updated <= cursor:
                cursor = updated - timedelta(seconds=1)
        self.state.cursor = None if cursor is None else format_timestamp(cursor)
        self._prune()
        return PollResult(events=[event for _, (_, event, _) in delivered], state=self.state, pending=len(held))

    def _prune(self) -> None:
        """Forget jobs anchored before now - retention; past ``max_tracked``, the oldest anchors go too."""
        horizon = max(self.horizon, self.now - self.settings.retention)
        jobs = {k: v for k, v in self.state.jobs.items() if v[1] >= _epoch(horizon)}
        if len(jobs) > self.settings.max_tracked:
            kept = sorted(jobs.items(), key=lambda item: item[1][1])[-self.settings.max_tracked :]
            jobs = dict(kept)
            horizon = max(horizon, _EPOCH + timedelta(seconds=kept[0][1][1]))
            log.warning(
                "Housecall Pro %s detector tracks more than max_tracked=%d jobs; "
                "jobs anchored up to %s are now treated as history",
                self.settings.kind,
                self.settings.max_tracked,
                format_timestamp(horizon),
            )
        self.state.jobs = jobs
        self.state.horizon = format_timestamp(horizon)
