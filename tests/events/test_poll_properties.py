"""Property: whatever the interleaving of changes, page boundaries, tie orders, lost polls, event caps and late
commits, the poll plan delivers exactly the oracle's events (tests/support/oracle.py), each once, with unique ids.

A *late* change is stamped up to the look-back before it becomes visible (a save whose transaction commits later):
made between polls it lands below the cursor; made while a poll pages, it lands below the cursor on a page that
may already have been read. Either way it must be judged, once."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from airflow_provider_housecallpro.events.detector import COMPLETED, SCHEDULED, DetectorSettings
from airflow_provider_housecallpro.events.filters import JobFilter
from airflow_provider_housecallpro.events.poll import drive, poll_plan
from tests.support.fake_world import T0, FakeWorld
from tests.support.oracle import Tally, expected_events, snapshot

SCHEDULE_OPS = ("book", "book_unscheduled", "reschedule", "reschedule_back", "edit", "start", "cancel", "rebook")
DONE_OPS = ("complete", "reopen", "delete")


def _apply(world: FakeWorld, op: str, job_id: str | None, hours: int, silent: bool) -> str | None:
    """Apply one op if it makes sense for the job now; returns the job id it touched (or None)."""
    if op == "book":
        return world.book(hours, customer=hours % 3)
    if op == "book_unscheduled":
        return world.book(None, customer=hours % 3)
    if job_id is None or job_id not in world.jobs:
        return None
    job = world.jobs[job_id]
    status = job["work_status"]
    open_ = status in ("scheduled", "in progress", "needs scheduling")
    if op in ("reschedule", "reschedule_back") and open_:
        world.reschedule(job_id, 24 + (hours if op == "reschedule" else 0), bump=not silent)
    elif op == "edit":
        world.edit(job_id)
    elif op == "start" and status == "scheduled":
        world.start(job_id)
    elif op == "cancel" and open_:
        world.cancel(job_id)
    elif op == "rebook" and status == "user canceled":
        world.reschedule(job_id, 24 + hours)
    elif op == "complete" and status in ("scheduled", "in progress"):
        world.complete(job_id)
    elif op == "reopen" and status.startswith("complete"):
        world.reopen(job_id)
    elif op == "delete":
        world.delete(job_id)
    else:
        return None
    return job_id


ops = st.tuples(st.sampled_from(SCHEDULE_OPS + DONE_OPS), st.integers(0, 30), st.integers(1, 6), st.booleans())
LOOKBACK = 60
late_by = st.sampled_from([0, 0, 0, 1, 20, LOOKBACK])  # seconds a change is stamped before it commits


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    kind=st.sampled_from([SCHEDULED, COMPLETED]),
    seed=st.integers(0, 2**32),
    initial=st.lists(st.tuples(st.integers(1, 6), st.booleans()), max_size=8),
    page_size=st.integers(1, 4),
    first_page_size=st.integers(1, 3),
    max_events=st.one_of(st.none(), st.integers(1, 3)),
    filtered=st.booleans(),
    silent=st.booleans(),
    steps=st.lists(
        st.tuples(
            st.sampled_from([0, 1, 2, 30, 200]),  # seconds before the step's changes (0: same second as the last poll)
            st.lists(st.tuples(ops, late_by), max_size=6),  # between polls
            st.lists(st.tuples(ops, late_by), max_size=4),  # while the next poll pages
            st.lists(st.booleans(), max_size=3),  # which of the step's polls are lost (failed try / restart)
        ),
        min_size=1,
        max_size=8,
    ),
)
def test_any_interleaving_delivers_exactly_the_oracles_events(
    kind: str,
    seed: int,
    initial: list[tuple[int, bool]],
    page_size: int,
    first_page_size: int,
    max_events: int | None,
    filtered: bool,
    silent: bool,
    steps: list[tuple[int, list[Any], list[Any], list[bool]]],
) -> None:
    world = FakeWorld(seed=seed)
    for hours, done in initial:
        job_id = world.book(hours, customer=hours % 3)
        if done:
            world.complete(job_id)
    world.tick(1)
    job_filter = JobFilter(customer_ids=["cus_0", "cus_1"]) if filtered else JobFilter()
    config = DetectorSettings(
        kind=kind,  # type: ignore[arg-type]
        filter=job_filter,
        page_size=page_size,
        first_page_size=first_page_size,
        reconcile_interval=timedelta(0) if silent else timedelta(days=1),
        lookback=timedelta(seconds=LOOKBACK),
    )

    hint: list[int | None] = [None]  # as the triggerer's poller: the next first page from this pass's `recent`

    def poll(state: Any, since: Any = None) -> Any:
        plan = poll_plan(
            config, state, T0 + timedelta(seconds=world.now), since=since, max_events=max_events, first_page=hint[0]
        )
        result = drive(plan, world)
        hint[0] = None if result.recent is None else result.recent + 1
        return result

    go_live = T0 + timedelta(seconds=world.now)
    world.not_before = world.now  # a change stamped before go-live is history, whenever it commits
    first = poll(None, since=go_live)
    assert first.events == []
    state = first.state
    before = snapshot(list(world.jobs.values()))
    tally = Tally()
    ids: set[str] = set()
    lost_ids: dict[tuple[str, str], str] = {}

    def matches(job: dict[str, Any]) -> bool:
        return not filtered or job["customer"]["id"] in ("cus_0", "cus_1")

    for pause, between, during, lost in steps:
        world.tick(pause)
        touched: set[str] = set()
        for (op, pick, hours, quiet), late in between:
            ids_now = sorted(world.jobs)
            target = ids_now[pick % len(ids_now)] if ids_now else None
            world.late = late
            done = _apply(world, op, target, hours, silent and quiet)
            world.late = 0
            tally.changes += done is not None
            if done:
                touched.add(done)
        # Changes while the next poll reads pages: each job at most once, none already changed this step.
        planned: set[str] = set()
        for (op, pick, hours, quiet), late in during:
            candidates = sorted(set(world.jobs) - touched - planned)
            target = candidates[pick % len(candidates)] if candidates else None
            if target is None and op not in ("book", "book_unscheduled"):
                continue
            if target is not None:
                planned.add(target)

            def change(
                op: str = op, target: str | None = target, hours: int = hours, quiet: bool = quiet, late: int = late
            ) -> None:
                world.tick(hours % 2)
                world.late = late
                tally.changes += _apply(world, op, target, hours, silent and quiet) is not None
                world.late = 0

            world.between_pages.append(change)
            world.between_pages.append(lambda: None)
        delivered: list[dict[str, Any]] = []
        for attempt in range(60):
            midscan = bool(world.between_pages)
            result = poll(state)
            if attempt < len(lost) and lost[attempt]:
                tally.failed_tries += 1  # the try fails after the poll: events and state vanish together
                for e in result.events:
                    lost_ids[
                        (e["job"]["id"], repr(e["job"].get("schedule")) + repr(e["job"].get("work_timestamps")))
                    ] = e["event"]["id"]
                continue
            state = result.state
            for e in result.events:
                assert e["event"]["id"] not in ids, f"event id repeated: {e['event']['id']}"
                ids.add(e["event"]["id"])
                again = lost_ids.pop(
                    (e["job"]["id"], repr(e["job"].get("schedule")) + repr(e["job"].get("work_timestamps"))), None
                )
                assert again in (None, e["event"]["id"]), "a change found again after a failed try got a new id"
            delivered += result.events
            if not midscan and not world.between_pages and result.pending == 0 and result.consistent:
                break
        else:
            raise AssertionError("polls never settled")
        after = snapshot(list(world.jobs.values()))
        problems = tally.compare(kind, expected_events(kind, before, after, matches), delivered)
        assert not problems, problems
        before = after
