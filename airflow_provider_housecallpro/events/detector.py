"""Change detection for the Job scheduled / Job completed triggers (pure: no I/O, no Airflow).

A :class:`Detector` is one poll: it is shown jobs (raw dicts, as the API returned them) by the poll plan
(:mod:`.poll`), keeps the **newest version of each job seen during the poll** — whichever pass read it —
and, in :meth:`Detector.finish`, compares each with what the state remembered before the poll. So a job
read twice in one poll gives one event, judged from its state before the poll and its newest version.

Rules (README "When they fire"):

- *scheduled*: a job is **booked** when its status is scheduled / in progress and it has a start. A booked
  job fires a **booking** when the detector knows no booked schedule for it (never seen, or last seen
  canceled / unscheduled / done), and a **reschedule** when its start, end or arrival window differs from
  the last one recorded. Notes, tags and other edits fire nothing.
- *completed*: fires when a job is complete and the detector has not fired for this completion
  (``completed_at``) yet; a job seen reopened and completed again fires again.
- **Go-live**: a first poll (no state) records every booked upcoming job as history. A job that changed
  after ``since`` fires only if it was also *created* after ``since`` (its earlier state is unknown
  otherwise); completions fire when ``completed_at`` is after ``since``.
- A job never seen whose anchor (scheduled start / completion) is before the **horizon** is history.
  The horizon trails ``now - retention`` and never passes ``now``, so pruning never turns a future
  booking into history.

Each event's ``event.id`` is ``<job id>/<s|c>/<go-live>-<n>.<change>``: ``n`` counts the events this state has
delivered for the job, so it is unique per delivered change (A→B→A→B gives three ids) and the same when
a failed try's change is detected again (its state is rolled back with it); ``<change>`` hashes the change
itself, so a different change found from a state that was lost after delivery gets a different id.
"""

from __future__ import annotations

import functools
import hashlib
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import ValidationError

from airflow_provider_housecallpro.api.models import (
    Job,
    first_problem,
    format_timestamp,
    record_label,
    tolerant_validate,
)
from airflow_provider_housecallpro.events.filters import JobFilter
from airflow_provider_housecallpro.events.payload import build_event
from airflow_provider_housecallpro.events.state import (
    COMPLETED,
    NO_WINDOW,
    SCHEDULED,
    DetectorState,
    EventType,
    Record,
    epoch,
    iso,
    job_key,
)

__all__ = [
    "COMPLETED",
    "SCHEDULED",
    "Detector",
    "DetectorSettings",
    "DetectorState",
    "EventType",
    "PollResult",
]

log = logging.getLogger(__name__)

_BOOKED = {"scheduled", "in progress"}
_COMPLETE = {"complete rated", "complete unrated"}
_KNOWN_STATUSES = {"needs scheduling", "user canceled", "pro canceled", *_BOOKED, *_COMPLETE}
_PRUNE_EVERY = 3600  # seconds the horizon may lag behind now - retention before records are pruned


@dataclass(frozen=True)
class DetectorSettings:
    kind: EventType
    filter: JobFilter = field(default_factory=JobFilter)
    page_size: int = 100
    first_page_size: int = 10
    # How far below its cursor the changes pass reads: a change stamped when saved but visible only when its
    # transaction commits (or a lagging replica catches up) appears below a cursor that moved on.
    lookback: timedelta = timedelta(minutes=5)
    overlap: timedelta = timedelta(0)  # the first release's name for the look-back (the larger one counts)
    settle: timedelta = timedelta(seconds=60)  # no longer used: the look-back re-reads the newest seconds
    retention: timedelta = timedelta(days=30)
    max_tracked: int = 50_000
    reconcile_interval: timedelta = timedelta(minutes=15)


@dataclass
class PollResult:
    events: list[dict[str, Any]]
    state: DetectorState
    pending: int = 0  # events found but held back by max_events (the next poll finds them again)
    skipped: list[str] = field(default_factory=list)  # ids of jobs that could not be read
    consistent: bool = True  # False: the list kept shifting; the cursor stayed put for a full re-read
    recent: int | None = None  # jobs the changes pass read at or above its floor (None: unknown)


@dataclass(slots=True)
class Facts:
    """The few fields detection needs, read straight from the raw job (no model validation)."""

    id: str
    updated: int  # -1 when absent
    created: int | None
    status: str
    start: int | None
    end: int | None
    window: int | None
    completed: int | None


@functools.lru_cache(maxsize=4096)
def stamp_epoch(value: str) -> int:
    parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    return epoch(parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC))


def _time(value: Any, name: str) -> int | None:
    if value.__class__ is str:
        if not value:
            return None
        try:
            return stamp_epoch(value)
        except ValueError:
            raise ValueError(f"{name}: not a timestamp: {value[:40]!r}") from None
    if value is None:
        return None
    raise ValueError(f"{name}: not a timestamp: {value!r}")


_NOTHING: dict[str, Any] = {}


def _object(value: Any, name: str) -> Mapping[str, Any]:
    if value is None:
        return _NOTHING
    if value.__class__ is not dict and not isinstance(value, Mapping):
        raise ValueError(f"{name}: not an object")
    return value  # type: ignore[no-any-return]


def read_facts(raw: Any) -> Facts:
    """The detection fields of a raw job; ``ValueError`` names the first one that cannot be read.

    On the hot path (every job of every page): plain dict access, cached timestamp parsing, no models.
    """
    if raw.__class__ is not dict:
        raw = _object(raw, "job")
    get = raw.get
    job_id = get("id")
    if job_id.__class__ is not str or not job_id:
        raise ValueError("id: missing or not a string")
    status = get("work_status")
    if status is not None and status.__class__ is not str:
        raise ValueError("work_status: not a string")
    schedule = get("schedule")
    if schedule.__class__ is not dict:
        schedule = _object(schedule, "schedule")
    window = schedule.get("arrival_window")
    if window is not None and window.__class__ is not int:
        raise ValueError("schedule.arrival_window: not a whole number")
    done = get("work_timestamps")
    if done.__class__ is not dict:
        done = _object(done, "work_timestamps")
    updated = _time(get("updated_at"), "updated_at")
    return Facts(
        job_id,
        -1 if updated is None else updated,
        _time(get("created_at"), "created_at"),
        status.lower() if status else "",
        _time(schedule.get("scheduled_start"), "schedule.scheduled_start"),
        _time(schedule.get("scheduled_end"), "schedule.scheduled_end"),
        window,
        _time(done.get("completed_at"), "work_timestamps.completed_at"),
    )


def _booked_schedule(facts: Facts) -> tuple[int, int, int] | None:
    """(start, end or 0, arrival window or NO_WINDOW) while the job is booked, else None."""
    if facts.start is None or facts.status not in _BOOKED:
        return None
    return facts.start, facts.end or 0, NO_WINDOW if facts.window is None else facts.window & 0xFFFF


def _is_complete(facts: Facts) -> bool:
    if facts.status in _KNOWN_STATUSES:
        return facts.status in _COMPLETE
    return facts.completed is not None  # an unknown status: trust the completion time


def _sort_key(item: tuple[int, str, Any]) -> tuple[int, str]:
    return item[0], item[1]


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
        self.now = epoch(now)
        self.first = state is None
        if state is None:
            if since is None:
                raise ValueError("a first poll (no state) needs `since`")
            go_live = epoch(since)
            retention = int(settings.retention.total_seconds())
            horizon = go_live if settings.kind == COMPLETED else go_live - retention
            state = DetectorState(kind=settings.kind, cursor=go_live, horizon=min(horizon, self.now), since=go_live)
        elif not isinstance(state, DetectorState):
            state = DetectorState.from_json(state, settings.kind)
        if state.kind != settings.kind:
            raise ValueError(f"state is for {state.kind} events, not {settings.kind}")
        self.state = state
        self._seen: dict[str, tuple[int, int, Facts, Mapping[str, Any] | None]] = {}
        self._reads = 0
        self._changed: set[str] = set()  # jobs read by the changes pass (any page, any stamp)
        self._jobs: dict[int, Job | None] = {}
        self.skipped: list[str] = []

    # -- what to read ---------------------------------------------------------------------------
    @property
    def cursor(self) -> int:
        """Read newest-first down to (and including) this second: the look-back below the cursor."""
        return self.state.cursor - self.lookback

    @property
    def lookback(self) -> int:
        return int(max(self.settings.lookback, self.settings.overlap).total_seconds())

    def reconcile_due(self) -> bool:
        if self.settings.kind != SCHEDULED:
            return False
        last = self.state.reconciled_at
        return self.first or last is None or self.now - last >= self.settings.reconcile_interval.total_seconds()

    @property
    def window_start(self) -> int:
        return self.state.horizon

    @property
    def found(self) -> int:
        return len(self._seen)

    def candidates(self) -> int:
        """How many jobs seen so far would fire for a first sight (find-records stops at its limit)."""
        count = 0
        for _u, _o, facts, raw in self._seen.values():
            if raw is None:
                continue
            if self.settings.kind == SCHEDULED:
                hit = facts.status in _BOOKED and facts.start is not None
            else:
                hit = facts.status in _COMPLETE
            count += hit and self._matches(raw)
        return count

    # -- observing ------------------------------------------------------------------------------
    def observe(self, raw: Mapping[str, Any], *, changes: bool = False) -> None:
        """Remember this version of a job if it is the newest seen in this poll (ties: the later read).
        ``changes``: read by the changes pass (a held-back event there is found again by moving the cursor)."""
        try:
            facts = read_facts(raw)
        except ValueError as exc:
            self.skipped.append(record_label(raw))
            log.warning("Housecall Pro: skipping job %s, which cannot be read (%s)", record_label(raw), exc)
            return
        self._reads += 1
        if changes:
            self._changed.add(facts.id)
        known = self._seen.get(facts.id)
        if known is None or facts.updated >= known[0]:
            # A job that matches its record needs no payload: drop the raw dict now (a window read of 10,000
            # unchanged jobs then keeps nothing alive until the poll ends).
            self._seen[facts.id] = (facts.updated, self._reads, facts, None if self._unchanged(facts) else raw)

    def _unchanged(self, facts: Facts) -> bool:
        old = self.state.records.get(job_key(facts.id))
        if old is None:
            return False
        if self.settings.kind == SCHEDULED:
            booked = _booked_schedule(facts)
            return booked is not None and old.a != 0 and (old.a, old.b, old.c) == booked
        return _is_complete(facts) and old.c == 1 and (facts.completed or 0) in (old.a, 0)

    def _job(self, raw: Mapping[str, Any]) -> Job | None:
        """The full job, for filters and payloads: only read for jobs whose fingerprint changed."""
        try:
            job, dropped = tolerant_validate(Job, raw)
        except ValidationError as exc:
            self.skipped.append(record_label(raw))
            log.warning(
                "Housecall Pro: skipping job %s, which cannot be read (%s)", record_label(raw), first_problem(exc)
            )
            return None
        if dropped:
            log.info("Housecall Pro: job %s read without unreadable field(s) %s", job.id, ", ".join(dropped))
        return job

    # -- result ---------------------------------------------------------------------------------
    def finish(
        self,
        *,
        cursor: int | None = None,
        reconciled: bool = False,
        max_events: int | None = None,
    ) -> PollResult:
        """Events oldest first (at most ``max_events``; the rest stay pending) and the new state.

        ``cursor``: the newest ``updated_at`` the poll read completely (None: keep the old cursor).
        """
        before = self.state.records
        changes: dict[int, Record] = {}
        found: list[tuple[int, str, tuple[int, Record, dict[str, Any]]]] = []
        detected_at = format_timestamp(datetime.fromtimestamp(self.now, UTC))
        for job_id, (updated, _order, facts, kept) in self._seen.items():
            if kept is None:
                continue  # matches its record: nothing to judge
            raw = kept
            key = job_key(job_id)
            old = before.get(key)
            if self.settings.kind == SCHEDULED:
                new, event = self._judge_schedule(facts, raw, old)
            else:
                new, event = self._judge_completion(facts, raw, old)
            if new is None or new == old:
                continue
            job = self._job(raw) if event is not None else None
            if event is not None and job is None:
                continue
            if event is None:
                changes[key] = new
                continue
            is_reschedule, previous = event
            assert job is not None
            payload = build_event(
                raw,
                job,
                event_type=self.settings.kind,
                event_id=self._event_id(job_id, new),
                is_reschedule=is_reschedule,
                previous_schedule=previous,
                detected_at=detected_at,
            )
            found.append((updated, job_id, (key, new, payload)))
        found.sort(key=_sort_key)
        cut = len(found) if max_events is None else max(0, max_events)
        delivered, held = found[:cut], found[cut:]
        for _u, _id, (key, new, _payload) in delivered:
            changes[key] = new
        state = self.state
        new_cursor = state.cursor if cursor is None else max(state.cursor, cursor)
        reconciled_at = self.now if reconciled else state.reconciled_at
        for updated, job_id, _rest in held:
            # Not delivered: the record keeps its old value, and the next poll must read the job again.
            if job_id in self._changed and updated >= 0:
                new_cursor = min(new_cursor, updated + self.lookback)
            else:  # found by the upcoming-window read only
                reconciled_at = None
        records = {**before, **changes} if changes else before
        result_state = DetectorState(
            kind=state.kind,
            cursor=new_cursor,
            horizon=state.horizon,
            reconciled_at=reconciled_at,
            since=state.since,
            records=records,
        )
        self._prune(result_state)
        return PollResult(
            events=[payload for _u, _id, (_k, _n, payload) in delivered],
            state=result_state,
            pending=len(held),
            skipped=list(self.skipped),
        )

    # -- rules ----------------------------------------------------------------------------------
    def _matches(self, raw: Mapping[str, Any]) -> bool:
        if self.settings.filter.is_empty:
            return True
        job = self._job(raw)
        return job is not None and self.settings.filter.matches(job)

    def _judge_schedule(
        self, facts: Facts, raw: Mapping[str, Any], old: Record | None
    ) -> tuple[Record | None, tuple[bool, dict[str, Any] | None] | None]:
        if _stale(facts, old):
            return old, None
        u = _newer(facts, old)
        fingerprint = _booked_schedule(facts)
        if fingerprint is None:
            if old is not None and old.a != 0:  # canceled / unscheduled / done: a later booking is new
                return Record(0, self.now, NO_WINDOW, old.seq, u), None
            return old, None
        if old is not None and old.a != 0 and (old.a, old.b, old.c) == fingerprint:
            return old, None
        if old is None:
            if fingerprint[0] < self.state.horizon:
                return None, None  # history: never seen, starts before the horizon
            if self.first and not self._new_since_go_live(facts):
                return Record(*fingerprint, 0, u), None  # existed at go-live: history
        seq = old.seq if old is not None else 0
        if not self._matches(raw):
            return Record(*fingerprint, seq, u), None
        previous = None if old is None or old.a == 0 else _schedule_of(old)
        return Record(*fingerprint, seq + 1, u), (previous is not None, previous)

    def _judge_completion(
        self, facts: Facts, raw: Mapping[str, Any], old: Record | None
    ) -> tuple[Record | None, tuple[bool, dict[str, Any] | None] | None]:
        if _stale(facts, old):
            return old, None
        u = _newer(facts, old)
        if not _is_complete(facts):
            if old is not None and old.c == 1:
                return Record(old.a, old.b, 0, old.seq, u), None  # reopened: a later completion fires again
            return old, None
        done = facts.completed or 0
        if old is not None and old.c == 1 and (done == old.a or done == 0):
            return old, None
        anchor = done or (facts.updated if facts.updated > 0 else self.now)
        if old is None and anchor < self.state.horizon:
            return None, None  # completed before the horizon (or before go-live): history
        seq = old.seq if old is not None else 0
        if not self._matches(raw):
            return Record(done, anchor, 1, seq, u), None
        return Record(done, anchor, 1, seq + 1, u), (False, None)

    def _new_since_go_live(self, facts: Facts) -> bool:
        go_live = self.state.since
        return facts.updated >= go_live and facts.created is not None and facts.created >= go_live

    def _event_id(self, job_id: str, record: Record) -> str:
        """``<job>/<s|c>/<go-live>-<n>.<what>``: ``n`` counts the changes delivered for the job, ``what`` is a short
        hash of the change itself (the schedule, or the completion time). A change found again after a lost
        state gets the same id; a *different* change found after a lost state (the job moved on meanwhile) gets
        another one, so an idempotency ledger never mistakes it for the one already delivered."""
        tag = "s" if self.settings.kind == SCHEDULED else "c"
        what = (record.a, record.b, record.c) if self.settings.kind == SCHEDULED else (record.a,)
        digest = int.from_bytes(hashlib.blake2b(repr(what).encode(), digest_size=4).digest(), "little")
        return f"{job_id}/{tag}/{_base36(self.state.since)}-{record.seq}.{_base36(digest)}"

    # -- bounded state --------------------------------------------------------------------------
    def _prune(self, state: DetectorState) -> None:
        """Forget records anchored before now - retention; past ``max_tracked``, the oldest past anchors.

        The horizon only ever moves up to ``now``: a job starting in the future is never history.
        """
        target = min(self.now, self.now - int(self.settings.retention.total_seconds()))
        too_many = len(state.records) > self.settings.max_tracked
        if target - state.horizon < _PRUNE_EVERY and not too_many:
            return
        kind = state.kind
        horizon = max(state.horizon, target)
        kept = {k: r for k, r in state.records.items() if _anchor(kind, r) >= horizon}
        if len(kept) > self.settings.max_tracked:
            anchors = {k: _anchor(kind, r) for k, r in kept.items()}
            past = sorted((k for k, a in anchors.items() if a < self.now), key=anchors.__getitem__)
            drop = past[: len(kept) - self.settings.max_tracked]
            if drop:
                horizon = max(horizon, min(self.now, anchors[drop[-1]] + 1))
                for k in drop:
                    del kept[k]
                log.warning(
                    "Housecall Pro %s detector tracks more than max_tracked=%d jobs; jobs anchored before %s are "
                    "now history (jobs starting later are always kept)",
                    self.settings.kind,
                    self.settings.max_tracked,
                    iso(horizon),
                )
        state.records = kept if len(kept) != len(state.records) else state.records
        state.horizon = horizon


def _stale(facts: Facts, old: Record | None) -> bool:
    """An older version of a job than the one its record was set from (a late or lagging copy): first writer wins."""
    return old is not None and 0 <= facts.updated < old.u


def _newer(facts: Facts, old: Record | None) -> int:
    return max(facts.updated, 0 if old is None else old.u, 0)


def _anchor(kind: EventType, record: Record) -> int:
    """Scheduled: the start while booked, else when it was seen unbooked. Completed: the completion."""
    if kind == SCHEDULED and record.a != 0:
        return record.a
    return record.b


def _schedule_of(record: Record) -> dict[str, Any]:
    return {
        "scheduled_start": iso(record.a),
        "scheduled_end": iso(record.b) if record.b else None,
        "arrival_window": None if record.c == NO_WINDOW else record.c,
    }


def _base36(value: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    value = abs(value)
    out = ""
    while True:
        value, rest = divmod(value, 36)
        out = digits[rest] + out
        if value == 0:
            return out
