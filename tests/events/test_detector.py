"""The pure detector and JobFilter, without any I/O."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest

from airflow_provider_housecallpro.api.errors import HousecallProInputError
from airflow_provider_housecallpro.api.models import format_timestamp
from airflow_provider_housecallpro.events.detector import COMPLETED, SCHEDULED, DetectorSettings, PollResult
from airflow_provider_housecallpro.events.filters import JobFilter
from airflow_provider_housecallpro.events.poll import drive, poll_plan
from airflow_provider_housecallpro.events.state import DetectorState, StateError
from airflow_provider_housecallpro.sensors.jobs import JobScheduledSensor
from tests.support.fake_world import T0, FakeWorld


def run(world: FakeWorld, state: Any, kind: str = SCHEDULED, since: Any = None, **kw: Any) -> PollResult:
    max_events = kw.pop("max_events", None)
    settings = DetectorSettings(kind=kind, page_size=kw.pop("page_size", 3), first_page_size=2, **kw)  # type: ignore[arg-type]
    plan = poll_plan(settings, state, T0 + timedelta(seconds=world.now), since=since, max_events=max_events)
    return drive(plan, world)


def live(world: FakeWorld, kind: str = SCHEDULED, **kw: Any) -> PollResult:
    """Go-live now; returns the first poll (which must fire nothing)."""
    world.tick(1)
    first = run(world, None, kind, since=T0 + timedelta(seconds=world.now), **kw)
    assert first.events == []
    return first


def ids(result: PollResult) -> list[str]:
    return [e["job"]["id"] for e in result.events]


def test_go_live_history_never_fires_not_even_when_edited_later() -> None:
    world = FakeWorld(random_ties=False)
    old = [world.book(24 + i) for i in range(5)]
    state = live(world).state
    world.tick()
    world.edit(old[0])  # notes on a job booked before go-live: not a booking
    new = world.book(30)
    second = run(world, state)
    assert ids(second) == [new] and not second.events[0]["event"]["is_reschedule"]
    world.tick()
    world.reschedule(old[1], 50)  # a reschedule of a job booked before go-live: a reschedule
    (moved,) = run(world, second.state).events
    assert moved["event"]["is_reschedule"]
    assert moved["event"]["previous_schedule"]["scheduled_start"] == format_timestamp(T0 + timedelta(hours=25))


def test_since_in_the_past_fires_jobs_created_after_it_only() -> None:
    world = FakeWorld(random_ties=False)
    before = world.book(24)
    world.tick(100)
    after = world.book(26)
    world.tick(5)
    world.edit(before)
    first = run(world, None, since=T0 + timedelta(seconds=50))
    assert ids(first) == [after]


def test_a_job_read_twice_in_one_poll_is_judged_once_from_its_newest_version() -> None:
    world = FakeWorld(random_ties=False)
    state = live(world, reconcile_interval=timedelta(0)).state
    world.tick()
    job = world.book(24)
    # The changes pass reads the booking; before the window pass reads it, it moves without a bump.
    world.between_pages = [lambda: None, lambda: world.reschedule(job, 40, bump=False)]
    (event,) = run(world, state, reconcile_interval=timedelta(0)).events
    assert event["event"]["is_reschedule"] is False and event["event"]["previous_schedule"] is None
    assert event["job"]["schedule"]["scheduled_start"] == format_timestamp(T0 + timedelta(hours=40))


def test_cancel_then_rebook_seen_by_a_poll_is_a_booking_unseen_is_a_reschedule() -> None:
    world = FakeWorld(random_ties=False)
    a, b = world.book(24), world.book(25)
    state = live(world).state
    world.tick()
    world.cancel(a)
    world.cancel(b)
    state = run(world, state).state  # sees both canceled: nothing fires
    world.tick()
    world.reschedule(a, 24)
    (rebooked,) = run(world, state).events
    assert rebooked["event"]["is_reschedule"] is False
    world = FakeWorld(random_ties=False)
    c = world.book(24)
    state = live(world).state
    world.tick()
    world.cancel(c)
    world.tick()
    world.reschedule(c, 24)  # canceled and rebooked at the same time between two polls: nothing
    assert run(world, state).events == []
    world.tick()
    world.cancel(c)
    world.tick()
    world.reschedule(c, 28)  # ... at another time: a reschedule
    (moved,) = run(world, state).events
    assert moved["event"]["is_reschedule"]


def test_a_b_a_between_polls_fires_nothing_and_each_delivered_change_has_its_own_id() -> None:
    world = FakeWorld(random_ties=False)
    job = world.book(24)
    state = live(world).state
    world.tick()
    world.reschedule(job, 30)
    world.tick()
    world.reschedule(job, 24)
    state = run(world, state).state
    got: list[str] = []
    for hours in (30, 24, 30, 24):  # A->B->A->B->A, each seen
        world.tick()
        world.reschedule(job, hours)
        result = run(world, state)
        state = result.state
        got += [e["event"]["id"] for e in result.events]
    assert len(got) == 4 and len(set(got)) == 4


def test_completion_then_reopen_fires_again_deleted_jobs_fire_nothing() -> None:
    world = FakeWorld(random_ties=False)
    job, gone = world.book(24), world.book(25)
    state = live(world, COMPLETED).state
    world.tick()
    world.complete(job)
    world.complete(gone)
    first = run(world, state, COMPLETED)
    assert sorted(ids(first)) == sorted([job, gone])
    world.tick()
    world.edit(job)  # edits after completion: nothing
    world.delete(gone)
    state = run(world, first.state, COMPLETED).state
    world.tick()
    world.reopen(job)
    state = run(world, state, COMPLETED).state
    world.tick()
    world.complete(job)
    (again,) = run(world, state, COMPLETED).events
    assert again["event"]["id"] != first.events[0]["event"]["id"]


def test_events_oldest_first_and_max_events_holds_the_rest_back() -> None:
    world = FakeWorld(random_ties=False)
    state = live(world).state
    booked = []
    for i in range(5):
        world.tick()
        booked.append(world.book(24 + i))
    got: list[str] = []
    for _ in range(3):
        result = run(world, state, max_events=2)
        state = result.state
        got += ids(result)
    assert got == booked and result.pending == 0
    assert run(world, state).events == []


def test_an_idle_poll_is_one_small_request() -> None:
    world = FakeWorld(random_ties=False)
    for i in range(20):
        world.book(24 + i)
    state = live(world).state
    world.tick(301)  # quiet for longer than the look-back
    state = run(world, state, reconcile_interval=timedelta(days=1)).state
    world.requests = 0
    run(world, state, reconcile_interval=timedelta(days=1))
    assert world.requests == 1


def _cover(world: FakeWorld, count: int = 3) -> None:
    """Edit ``count`` other jobs now: a page of newer stamps between an older job and the next look-back floor, so the
    changes pass stops before it (it judges every job on the pages it reads, even below the floor)."""
    for job_id in sorted(world.jobs)[-count:]:
        world.edit(job_id)


def test_reconcile_catches_a_reschedule_that_did_not_bump_updated_at() -> None:
    world = FakeWorld(random_ties=False)
    job = world.book(24)
    for i in range(3):
        world.book(25 + i)
    hourly = {"reconcile_interval": timedelta(hours=1)}
    state = live(world, **hourly).state
    world.tick(200)
    _cover(world)
    world.tick(400)  # the cover is older than the look-back floor of the next polls, the job older still
    state = run(world, state, **hourly).state
    world.reschedule(job, 72, bump=False)
    world.tick(60)
    assert run(world, state, **hourly).events == []  # not due yet
    world.tick(3600)
    (event,) = run(world, state, **hourly).events
    assert event["event"]["is_reschedule"]


def test_pruning_never_makes_a_future_booking_history_and_state_is_compact() -> None:
    world = FakeWorld(random_ties=False)
    for i in range(10_000):
        world.book(24 + i % 2000)
    state = live(world, page_size=200, max_tracked=5_000).state
    assert len(state.records) == 10_000  # all upcoming: none dropped, although above max_tracked
    world.tick(2 * 86_400)
    tomorrow = world.book(world.now // 3600 + 24)
    result = run(world, state, page_size=200, max_tracked=5_000)
    assert ids(result) == [tomorrow]
    size = len(json.dumps(result.state.to_json()))
    print(f"state: {len(result.state.records)} jobs, {size} bytes, {size / len(result.state.records):.1f} B/job")
    assert size / len(result.state.records) <= 24


def test_state_round_trips_and_bad_state_is_named() -> None:
    world = FakeWorld(random_ties=False)
    world.book(24)
    state = live(world).state
    again = DetectorState.from_json(json.loads(json.dumps(state.to_json())), SCHEDULED)
    assert again == state
    with pytest.raises(StateError, match=r"not job\.completed"):
        DetectorState.from_json(state.to_json(), COMPLETED)
    with pytest.raises(StateError, match="unknown state version"):
        DetectorState.from_json({"v": 9}, SCHEDULED)
    with pytest.raises(StateError, match="unreadable"):
        DetectorState.from_json({**state.to_json(), "jobs": "H2garbage"}, SCHEDULED)


def test_job_filter_validates_keys_types_and_statuses() -> None:
    with pytest.raises(HousecallProInputError, match="job_typ: is not a known field"):
        JobFilter.parse({"job_typ": ["x"]})
    with pytest.raises(HousecallProInputError, match="tags_any"):
        JobFilter.parse({"tags_any": 5})
    with pytest.raises(HousecallProInputError, match="is not a job work_status"):
        JobFilter.parse({"work_statuses": ["completed"]})
    assert JobFilter.parse({"tags_any": "vip"}).to_dict() == {"tags_any": ["vip"]}


def test_sensor_rejects_bad_filters_and_options_at_parse_time() -> None:
    with pytest.raises(HousecallProInputError, match="employee"):
        JobScheduledSensor(task_id="s", filters={"employee": ["x"]})
    with pytest.raises(ValueError, match="unknown detector_options"):
        JobScheduledSensor(task_id="s", detector_options={"pagesize": 5})
    with pytest.raises(ValueError, match="max_events"):
        JobScheduledSensor(task_id="s", max_events=0)
    sensor = JobScheduledSensor(task_id="s", filters={"customer_ids": "{{ dag_run.conf['ids'] }}"})
    assert sensor.filters == {"customer_ids": "{{ dag_run.conf['ids'] }}"}  # checked once rendered


@pytest.mark.parametrize(
    ("event", "message"),
    [
        (None, "unexpected trigger event"),
        ({"status": "weird"}, "unexpected trigger event"),
        ({"status": "success", "events": [], "state": {}}, "no valid job events"),
        ({"status": "success", "events": [{"job": {}}], "state": {}}, "no valid job events"),
        (
            {
                "status": "success",
                "events": [
                    {
                        "event": {"type": "job.completed"},
                        "job": {},
                        "is_paid": None,
                        "customer_name": None,
                        "customer_phone": None,
                        "customer_email": None,
                    }
                ],
                "state": {},
            },
            "no valid job events",  # a completed event handed to a scheduled sensor
        ),
        ({"status": "error", "message": "HousecallProServerError: boom"}, "sensor failed: HousecallProServerError"),
    ],
)
def test_execute_complete_rejects_missing_or_unknown_events(event: Any, message: str) -> None:
    from airflow.providers.common.compat.sdk import AirflowException

    sensor = JobScheduledSensor(task_id="s")
    with pytest.raises(AirflowException, match=message):
        sensor.execute_complete({"ti": None}, event)


def test_execute_complete_timeout_honours_soft_fail() -> None:
    from airflow.providers.common.compat.sdk import AirflowSensorTimeout, AirflowSkipException

    with pytest.raises(AirflowSensorTimeout):
        JobScheduledSensor(task_id="s").execute_complete({"ti": None}, {"status": "timeout", "message": "x"})
    with pytest.raises(AirflowSkipException):
        JobScheduledSensor(task_id="s", soft_fail=True).execute_complete({"ti": None}, {"status": "timeout"})


# -- late commits and stale copies ------------------------------------------------------------------
def _copy(world: FakeWorld, job_id: str) -> dict[str, Any]:
    return json.loads(json.dumps(world.jobs[job_id]))


def test_a_stale_copy_of_a_job_fires_nothing_first_writer_wins() -> None:
    """A lagging replica (or a late webhook) shows a job's older version after a newer one was judged."""
    world = FakeWorld(random_ties=False)
    job = world.book(24)
    state = live(world).state
    world.tick(10)
    world.reschedule(job, 30)
    booked_at_30 = _copy(world, job)
    state = run(world, state).state
    world.tick(10)
    world.reschedule(job, 40)
    (moved,) = run(world, state).events  # 30 -> 40
    state = run(world, state).state
    world.tick(10)
    newest = world.jobs[job]
    world.jobs[job] = booked_at_30  # the replica serves the version of 20 s ago: not a reschedule back
    assert run(world, state).events == []
    state = run(world, state).state
    world.jobs[job] = newest
    assert run(world, state).events == []  # and the newest again is not a reschedule either
    assert moved["event"]["previous_schedule"]["scheduled_start"] == format_timestamp(T0 + timedelta(hours=30))


def test_a_stale_copy_never_reopens_a_completion() -> None:
    world = FakeWorld(random_ties=False)
    job = world.book(24)
    state = live(world, COMPLETED).state
    world.tick(10)
    world.start(job)
    started = _copy(world, job)
    world.tick(10)
    world.complete(job)
    (done,) = run(world, state, COMPLETED).events
    state = run(world, state, COMPLETED).state
    newest = world.jobs[job]
    world.jobs[job] = started  # older: "in progress"
    state = run(world, state, COMPLETED).state
    world.jobs[job] = newest
    assert run(world, state, COMPLETED).events == []  # not a second completion
    assert done["job"]["id"] == job


def test_a_late_change_below_the_cursor_is_judged_once() -> None:
    world = FakeWorld(random_ties=False)
    quiet = world.book(24)
    state = live(world).state
    world.tick(100)
    newer = [world.book(30 + i) for i in range(5)]  # newer stamps, visible at once
    state_after = run(world, state)
    assert ids(state_after) == newer
    world.tick(5)
    world.late = 90  # saved 90 s ago (before the cursor), committed now
    world.reschedule(quiet, 60)
    world.late = 0
    (late,) = run(world, state_after.state, lookback=timedelta(minutes=5)).events
    assert late["job"]["id"] == quiet and late["event"]["is_reschedule"]
    again = run(world, run(world, state_after.state).state)
    assert again.events == []  # re-read by the look-back, judged, nothing fires twice


def test_a_change_committed_later_than_the_look_back() -> None:
    """The documented outcome (README "When they fire"): a booking is still caught by the upcoming-window read; a
    completion is not."""
    world = FakeWorld(random_ties=False)
    booked, done = world.book(24), world.book(26)
    for i in range(3):
        world.book(30 + i)
    minute = {"lookback": timedelta(seconds=60), "reconcile_interval": timedelta(hours=1)}
    bookings, completions = live(world, **minute).state, live(world, COMPLETED, **minute).state
    saved_at = world.now
    world.tick(20)
    _cover(world)  # changes saved after the two below, visible at once
    world.tick(80)
    bookings, completions = run(world, bookings, **minute).state, run(world, completions, COMPLETED, **minute).state
    world.tick(200)
    world.late = world.now - saved_at  # saved 300 s ago, committed now: beyond a one-minute look-back
    world.reschedule(booked, 48)
    world.complete(done)
    world.late = 0
    world.tick(1)
    assert run(world, bookings, **minute).events == []
    assert run(world, completions, COMPLETED, **minute).events == []  # lost for good
    world.tick(3600)
    (moved,) = run(world, bookings, **minute).events  # the upcoming-window read finds it
    assert moved["job"]["id"] == booked and moved["event"]["is_reschedule"]
    assert run(world, completions, COMPLETED, **minute).events == []
