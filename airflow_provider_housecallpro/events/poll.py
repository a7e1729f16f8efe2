"""One poll as a plan of page reads (sans I/O), shared by poke mode, the triggers and find-records.

:func:`poll_plan` is a generator: it yields the :class:`JobsQuery` of each page it wants, is sent the
page (raw jobs), and returns a :class:`PollResult`. A sync or async driver does the reading, so which
pages are read, and when a read counts as complete, is decided in one place.

**Changes pass** — ``GET /jobs?sort_by=updated_at&sort_direction=desc``, down to the cursor less the
**look-back** (``lookback``, default 5 minutes). The cursor is when the server answered the last complete pass
(its ``Date`` header; without one, the newest ``updated_at`` read). A change is stamped when it is saved but
visible only when its transaction commits (or a lagging replica catches up), so it can appear *after* newer
ones, below a cursor that moved on: reading back catches every change visible within the look-back of its
stamp. Every job read is judged against its record, whatever page it was on — a re-read fires nothing (same
fingerprint), a stale copy fires nothing (older than the record's ``updated_at``), a late change fires once.
On a quiet account (nothing changed within the look-back) the pass is still one request. The API pages by
offset, so the list can move while it is read:

- an update or a new job moves a job to the top: later pages repeat a job (harmless, a job is judged
  once per poll from its newest version) and the moved job is read by the next poll (its ``updated_at``
  is at or after this poll's cursor);
- a job leaving the list (a hard delete) moves every later job up one place: the job at a page boundary
  is skipped. It shows as a change of ``total_items`` between pages; the pass is read again;
- jobs sharing an ``updated_at`` may come back in a different order on each request: where such a tie
  spans a page boundary, one more request reads the whole tie inside one page (with a different page
  size), so its members cannot fall between two pages.

When nothing changed, the pass is one request for a small first page (``first_page_size``): the page
shows the cursor's border, so it is complete on its own.

**Upcoming-window pass** (*scheduled* only; at go-live and every ``reconcile_interval``) — every booked
job starting after the horizon, in case a reschedule did not bump ``updated_at``, and as the go-live
baseline. The window is cut into ``scheduled_start`` ranges small enough for one page each, so every
range is read in one response and no job can slip between pages; a job that moves between ranges while
they are read has a new ``updated_at`` and is seen by the changes pass.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Generator, Mapping
from datetime import UTC, datetime
from typing import Any

from airflow_provider_housecallpro.api.models import Page, RawJob, parse_timestamp
from airflow_provider_housecallpro.api.query import JobsQuery
from airflow_provider_housecallpro.events.detector import (
    Detector,
    DetectorSettings,
    DetectorState,
    PollResult,
    stamp_epoch,
)
from airflow_provider_housecallpro.events.state import epoch, from_epoch

log = logging.getLogger(__name__)

PollPlan = Generator[JobsQuery, Page[RawJob], PollResult]
Reads = Generator[JobsQuery, Page[RawJob], Any]

MAX_PAGE_SIZE = 200
ATTEMPTS = 4  # reads of a pass before it gives up on a list that keeps moving (the next poll re-reads)
_PROBE_SIZE = 25


def poll_plan(
    settings: DetectorSettings,
    state: DetectorState | Mapping[str, Any] | None,
    now: datetime,
    *,
    since: datetime | None = None,
    max_events: int | None = None,
    first_page: int | None = None,
) -> PollPlan:
    """``first_page``: the size of the changes pass's first page when smaller than ``settings.first_page_size``
    (a poller that knows how many jobs its last pass saw within the look-back asks for just enough)."""
    detector = Detector(settings, state, now, since)
    cursor, consistent, recent = yield from read_changes(detector, settings, first_page)
    reconciled = False
    if detector.reconcile_due():
        reconciled = yield from read_window(detector, settings)
    result = detector.finish(cursor=cursor, reconciled=reconciled, max_events=max_events)
    result.consistent = consistent
    result.recent = recent
    return result


# -- changes pass ---------------------------------------------------------------------------------
def updated_epoch(raw: Mapping[str, Any]) -> int | None:
    value = raw.get("updated_at")
    if value.__class__ is not str or not value:
        return None
    try:
        return stamp_epoch(value)
    except ValueError:
        return None


def _changes(page: int, size: int) -> JobsQuery:
    return JobsQuery(sort_by="updated_at", sort_direction="desc", page=page, page_size=size)


def _reaches(page: Page[RawJob], floor: int) -> bool:
    """Does this page end the pass: the list ends, or it shows a job older than the floor?"""
    if page.next_page is None:
        return True
    return any(u is not None and u < floor for u in map(updated_epoch, page.items))


def _observe(detector: Detector, items: list[RawJob]) -> None:
    """Every job read is judged, even one below the floor (a late change on a page read anyway)."""
    for raw in items:
        detector.observe(raw, changes=True)


def _next_cursor(first: Page[RawJob], items: list[RawJob]) -> int | None:
    """When the server answered the pass's first request: every change stamped before it minus the look-back
    is visible by the next poll's read, whatever this one saw. Without a ``Date`` header: the newest stamp read."""
    if first.served_at is not None:
        return epoch(first.served_at)
    stamps = [u for u in map(updated_epoch, items) if u is not None]
    return max(stamps) if stamps else None


def _recent(items: list[RawJob], floor: int) -> int:
    """How many of the jobs read are at or above the floor: what the next pass's first page must hold, plus one."""
    return sum(1 for u in map(updated_epoch, items) if u is None or u >= floor)


def read_changes(detector: Detector, settings: DetectorSettings, first_page: int | None = None) -> Reads:
    """Read every job updated at or after the floor (cursor less look-back); returns (new cursor or None,
    consistent, how many jobs read were at or above the floor)."""
    floor = detector.cursor
    size = min(settings.first_page_size, settings.page_size, first_page or settings.first_page_size)
    for attempt in range(1, ATTEMPTS + 1):
        first = yield _changes(1, max(size, 1))
        if _reaches(first, floor):
            _observe(detector, first.items)
            return _next_cursor(first, first.items), True, _recent(first.items, floor)
        pages: list[Page[RawJob]] = []
        while True:
            page = yield _changes(len(pages) + 1, settings.page_size)
            pages.append(page)
            if _reaches(page, floor):
                break
        for page in pages:
            _observe(detector, page.items)
        if (yield from _verify(detector, pages, floor, settings.page_size)):
            # The first request's clock (or the first page's newest stamp): whatever was stamped after it is at
            # least that new, and read by the next poll.
            return _next_cursor(first, pages[0].items), True, _recent([raw for p in pages for raw in p.items], floor)
        log.info("Housecall Pro: the job list moved while it was read (attempt %d); reading it again", attempt)
    log.warning(
        "Housecall Pro: the job list kept moving over %d reads; the cursor stays put so the next poll reads "
        "the same range again",
        ATTEMPTS,
    )
    return None, False, None


def _verify(detector: Detector, pages: list[Page[RawJob]], floor: int, size: int) -> Reads:
    """Did the pages show one consistent list? Reads each tie spanning a page boundary in one page."""
    totals = {page.total_items for page in pages}
    if len(totals) != 1:
        return False  # a job left the list (or came back) while it was read: positions moved
    (total,) = totals
    listed = [(raw, updated_epoch(raw)) for page in pages for raw in page.items]
    unchecked: set[int] = set()
    for boundary in range(size, len(listed), size):
        u = listed[boundary][1]
        if u is None or u < floor or listed[boundary - 1][1] != u:
            continue
        start = boundary - 1
        while start > 0 and listed[start - 1][1] == u:
            start -= 1
        end = boundary
        while end + 1 < len(listed) and listed[end + 1][1] == u:
            end += 1
        lo, hi = max(start - 1, 0), min(end + 1, total - 1)
        fit = _page_covering(lo, hi)
        if fit is None:
            if u not in unchecked:
                unchecked.add(u)
                log.warning(
                    "Housecall Pro: %d or more jobs share updated_at %s, more than one page holds; the order "
                    "among them cannot be checked",
                    end - start + 1,
                    from_epoch(u).isoformat(),
                )
            continue
        page_no, page_size = fit
        page = yield _changes(page_no, page_size)
        if page.total_items != total or not _tie_bordered(page, u, (page_no - 1) * page_size, total):
            return False
        _observe(detector, page.items)
    return True


def _page_covering(lo: int, hi: int) -> tuple[int, int] | None:
    """A (page, page_size) whose one page holds list positions lo..hi (0-based), if any."""
    for size in range(hi - lo + 1, MAX_PAGE_SIZE + 1):
        if lo // size == hi // size:
            return lo // size + 1, size
    return None


def _tie_bordered(page: Page[RawJob], u: int, offset: int, total: int) -> bool:
    """In this one response (list positions from ``offset``), is the run of jobs updated at ``u`` closed
    on both sides, by a newer and an older job or by the list's ends?"""
    stamps = [updated_epoch(raw) for raw in page.items]
    where = [i for i, s in enumerate(stamps) if s == u]
    if not where or where != list(range(where[0], where[-1] + 1)):
        return False
    first, last = where[0], where[-1]
    before = stamps[first - 1] if first > 0 else None
    after = stamps[last + 1] if last + 1 < len(stamps) else None
    before_ok = offset + first == 0 or (before is not None and before > u)
    after_ok = offset + last == total - 1 or (after is not None and after < u)
    return before_ok and after_ok


# -- upcoming-window pass -------------------------------------------------------------------------
def _window(lo: int, hi: int | None, page: int, size: int) -> JobsQuery:
    return JobsQuery(
        scheduled_start_min=from_epoch(lo),
        scheduled_start_max=None if hi is None else from_epoch(hi),
        work_status=["scheduled", "in_progress"],
        sort_by="id",
        sort_direction="asc",
        page=page,
        page_size=size,
    )


def _start_epoch(raw: Mapping[str, Any]) -> int | None:
    schedule = raw.get("schedule")
    if not isinstance(schedule, Mapping):
        return None
    try:
        value = parse_timestamp(schedule.get("scheduled_start"))
    except ValueError:
        return None
    return None if value is None else epoch(value)


def read_window(detector: Detector, settings: DetectorSettings) -> Reads:
    """Every booked job starting at or after the horizon, each range in one response. True when done."""
    ranges: list[tuple[int, int | None, int | None]] = [(detector.window_start, None, None)]
    while ranges:
        lo, hi, expected = ranges.pop()
        size = MAX_PAGE_SIZE if expected is None or expected <= MAX_PAGE_SIZE else _PROBE_SIZE
        page = yield _window(lo, hi, 1, size)
        if page.next_page is None:
            for raw in page.items:
                detector.observe(raw)
            continue
        starts = sorted(s for s in map(_start_epoch, page.items) if s is not None)
        mid = starts[len(starts) // 2] if starts else lo + 86_400
        mid = max(mid, lo + 1)
        if hi is not None:
            mid = min(mid, hi - 1)
        if hi is not None and hi - lo < 2:
            if not (yield from _page_through(detector, lo, hi)):
                return False
            continue
        half = page.total_items // 2 + 1
        ranges.append((mid, hi, half))
        ranges.append((lo, mid, half))
    return True


def _page_through(detector: Detector, lo: int, hi: int) -> Reads:
    """More than a page of jobs starting within one second: page, and accept only a steady total."""
    for _attempt in range(ATTEMPTS):
        pages: list[Page[RawJob]] = []
        page_no: int | None = 1
        while page_no is not None:
            page = yield _window(lo, hi, page_no, MAX_PAGE_SIZE)
            pages.append(page)
            page_no = page.next_page
        for page in pages:
            for raw in page.items:
                detector.observe(raw)
        if len({p.total_items for p in pages}) == 1:
            return True
    return False


# -- find-records ---------------------------------------------------------------------------------
FIND_SINCE = datetime(1970, 1, 1, tzinfo=UTC)


def find_plan(settings: DetectorSettings, now: datetime, *, limit: int = 5, max_pages: int = 10) -> PollPlan:
    """The product's "Find new records": the most recent matching jobs, as the events a sensor would push.

    Reads newest-first and treats every job as never seen (go-live at the epoch), so each matching booked
    job yields a new-booking event and each completed job a completion event.
    """
    detector = Detector(settings, None, now, since=FIND_SINCE)
    for page_no in range(1, max_pages + 1):
        page = yield _changes(page_no, settings.page_size)
        for raw in page.items:
            detector.observe(raw)
        if detector.candidates() >= limit or page.next_page is None:
            break
    result = detector.finish()
    result.events = result.events[-limit:]
    return result


# -- drivers --------------------------------------------------------------------------------------
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


__all__ = [
    "FIND_SINCE",
    "PollPlan",
    "adrive",
    "drive",
    "find_plan",
    "poll_plan",
    "read_changes",
    "read_window",
]
