"""The expected job events, written from the world's history alone (never from the detector's logic).

The world is observed at *checkpoints*: moments after which a poll has read it with nothing changing any
more. Between two checkpoints each job changes its schedule (or completion) at most once in a way a poll
could see half-way, so the events a sensor must deliver over that stretch follow from the two snapshots:

- *job.scheduled*: a job booked (scheduled / in progress, with a start) now
  - that was booked with the same start, end and arrival window before: nothing;
  - that was booked with another schedule before: a reschedule, ``previous_schedule`` = the old one;
  - that was not booked before (new, unscheduled, canceled, done): a booking.
- *job.completed*: a job complete now that was not complete before, or complete with another
  ``completed_at``: a completion.

Only jobs matching the filter (judged on the job as it is now) are expected. The first checkpoint is
go-live: nothing is expected for it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

BOOKED = {"scheduled", "in progress"}
COMPLETE = {"complete rated", "complete unrated"}


@dataclass(frozen=True)
class Seen:
    booked: tuple[str, str | None, int | None] | None  # (start, end, window) while booked
    completed: str | None  # completed_at while complete ("" when complete without a time)
    job: Mapping[str, Any]


def snapshot(jobs: list[Mapping[str, Any]]) -> dict[str, Seen]:
    out: dict[str, Seen] = {}
    for job in jobs:
        schedule = job.get("schedule") or {}
        start = schedule.get("scheduled_start")
        booked = None
        if job.get("work_status") in BOOKED and start:
            booked = (start, schedule.get("scheduled_end"), schedule.get("arrival_window"))
        completed = None
        if job.get("work_status") in COMPLETE:
            completed = ((job.get("work_timestamps") or {}).get("completed_at")) or ""
        out[job["id"]] = Seen(booked, completed, job)
    return out


@dataclass(frozen=True)
class Expected:
    job_id: str
    is_reschedule: bool
    previous: tuple[str, str | None, int | None] | None
    now: tuple[str, str | None, int | None] | str | None


def expected_events(
    kind: str,
    before: Mapping[str, Seen],
    after: Mapping[str, Seen],
    matches: Callable[[Mapping[str, Any]], bool] = lambda job: True,
) -> list[Expected]:
    out: list[Expected] = []
    for job_id, now in after.items():
        if not matches(now.job):
            continue
        was = before.get(job_id)
        if kind == "job.scheduled":
            if now.booked is None:
                continue
            if was is not None and was.booked is not None:
                if was.booked != now.booked:
                    out.append(Expected(job_id, True, was.booked, now.booked))
            else:
                out.append(Expected(job_id, False, None, now.booked))
        elif now.completed is not None and (was is None or was.completed != now.completed):
            out.append(Expected(job_id, False, None, now.completed))
    return sorted(out, key=lambda e: e.job_id)


def delivered_as_expected(kind: str, event: Mapping[str, Any]) -> Expected:
    """The same shape, read from a delivered event payload (for comparison)."""
    job = event["job"]
    if kind == "job.scheduled":
        s = job["schedule"]
        prev = event["event"]["previous_schedule"]
        return Expected(
            job["id"],
            bool(event["event"]["is_reschedule"]),
            None if prev is None else (prev["scheduled_start"], prev["scheduled_end"], prev["arrival_window"]),
            (s["scheduled_start"], s["scheduled_end"], s["arrival_window"]),
        )
    return Expected(job["id"], False, None, (job.get("work_timestamps") or {}).get("completed_at") or "")


@dataclass
class Tally:
    changes: int = 0
    faults: int = 0
    restarts: int = 0
    failed_tries: int = 0
    delivered: int = 0
    lost: int = 0
    duplicated: int = 0
    mislabelled: int = 0
    unexpected: int = 0

    def compare(self, kind: str, expected: list[Expected], delivered: list[Mapping[str, Any]]) -> list[str]:
        """Count and describe every difference between what was expected and what was delivered."""
        problems: list[str] = []
        got = [delivered_as_expected(kind, e) for e in delivered]
        self.delivered += len(got)
        by_job: dict[str, list[Expected]] = {}
        for g in got:
            by_job.setdefault(g.job_id, []).append(g)
        for want in expected:
            have = by_job.pop(want.job_id, [])
            if not have:
                self.lost += 1
                problems.append(f"lost: {want}")
                continue
            if len(have) > 1:
                self.duplicated += len(have) - 1
                problems.append(f"duplicated: {have}")
            if have[0] != want:
                self.mislabelled += 1
                problems.append(f"mislabelled: expected {want}, got {have[0]}")
        for job_id, extra in by_job.items():
            self.unexpected += len(extra)
            problems.append(f"unexpected for {job_id}: {extra}")
        return problems

    def line(self) -> str:
        return (
            f"changes={self.changes} faults={self.faults} restarts={self.restarts} failed_tries={self.failed_tries} "
            f"delivered={self.delivered} lost={self.lost} duplicated={self.duplicated} "
            f"mislabelled={self.mislabelled} unexpected={self.unexpected}"
        )
