"""One poll as a plan of page reads (sans I/O), shared by poke mode, the triggers and find-records.

:func:`poll_plan` is a generator: it yields the :class:`JobsQuery` of each page it wants, is sent the
page (raw jobs), and returns a :class:`PollResult`. A sync or async driver does the reading, so which
pages are read, and when to stop, is decided in one place.

A poll reads ``GET /jobs?sort_by=updated_at&sort_direction=desc`` page by page until it passes the
cursor (minus an overlap). For *scheduled*, on the first poll and every ``reconcile_interval`` it also
reads the upcoming window (``scheduled_start_min``) and compares schedules, in case a reschedule did
not bump ``updated_at``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Generator, Mapping
from datetime import UTC, datetime
from typing import Any

from airflow_provider_housecallpro.api.models import Page, RawJob, parse_timestamp
from airflow_provider_housecallpro.api.query import JobsQuery
from airflow_provider_housecallpro.events.detector import (
    SCHEDULED,
    Detector,
    DetectorSettings,
    DetectorState,
    PollResult,
)

PollPlan = Generator[JobsQuery, Page[RawJob], PollResult]


def poll_plan(
    settings: DetectorSettings,
    state: DetectorState | Mapping[str, Any] | None,
    now: datetime,
    *,
    since: datetime | None = None,
    max_events: int | None = None,
) -> PollPlan:
    detector = Detector(settings, state, now, since)
    page_no = 1
    while True:
        page = yield JobsQuery(sort_by="updated_at", sort_direction="desc", page=page_no, page_size=settings.page_size)
        for raw in page.items:
            detector.observe(raw)
        oldest = parse_timestamp(page.items[-1].get("updated_at")) if page.items else None
        if page.next_page is None or not detector.wants_older_than(oldest):
            break
        page_no += 1
    reconciled = False
    if settings.kind == SCHEDULED and detector.reconcile_due():
        yield from _read_window(detector, settings)
        reconciled = True
    return detector.finish(reconciled=reconciled, max_events=max_events)


def _read_window(detector: Detector, settings: DetectorSettings) -> Generator[JobsQuery, Page[RawJob], None]:
    """Every scheduled / in-progress job starting after the horizon, in a stable order."""
    page_no: int | None = 1
    while page_no is not None:
        page = yield JobsQuery(
            scheduled_start_min=detector.window_start(),
            work_status=["scheduled", "in_progress"],
            sort_by="created_at",
            sort_direction="asc",
            page=page_no,
            page_size=settings.page_size,
        )
        for raw in page.items:
            detector.observe(raw, reconcile=True)
        page_no = page.next_page


FIND_SINCE = datetime(1970, 1, 1, tzinfo=UTC)


def find_plan(settings: DetectorSettings, now: datetime, *, limit: int = 5, max_pages: int = 10) -> PollPlan:
    """The product's "Find new records": the most recent matching jobs, as the events a sensor would push.

    Reads newest-first and treats every job as never seen (``since`` = the epoch), so each matching
    scheduled job yields a new-booking event and each completed job a completion event.
    """
    detector = Detector(settings, None, now, since=FIND_SINCE)
    for page_no in range(1, max_pages + 1):
        page = yield JobsQuery(sort_by="updated_at", sort_direction="desc", page=page_no, page_size=settings.page_size)
        for raw in page.items:
            detector.observe(raw)
        if detector.found >= limit or page.next_page is None:
            break
    result = detector.finish(max_events=None)
    result.events = result.events[-limit:]
    return result


def drive(plan: PollPlan, fetch: Callable[[JobsQuery], Page[RawJob]]) -> PollResult:
    """Run a plan with a synchronous page reader."""
    try:
        query = next(plan)
        while True:
            query = plan.send(fetch(query))
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]


async def adrive(plan: PollPlan, fetch: Callable[[JobsQuery], Awaitable[Page[RawJob]]]) -> PollResult:
    """Run a plan with an asynchronous page reader."""
    try:
        query = next(plan)
        while True:
            query = plan.send(await fetch(query))
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]
