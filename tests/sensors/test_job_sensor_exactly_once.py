"""Exactly once, and nothing lost: overlapping polls, shared updated_at, updates landing mid-scan,
triggerer restarts, sensor retries and consecutive runs. Plus the cost of an idle poll and bounded state."""

from __future__ import annotations

import asyncio
import json
import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from airflow.providers.common.compat.sdk import BaseHook

from airflow_provider_housecallpro.hooks.housecallpro import HousecallProHook
from airflow_provider_housecallpro.sandbox import SandboxAdmin
from airflow_provider_housecallpro.sensors.jobs import STATE_XCOM_KEY
from tests.conftest import API_KEY, FAST
from tests.support.jobs import a_customer, ids, iso, slot
from tests.support.sensor_harness import SensorHarness, run_trigger_once

MODES = ["poke", "deferred"]


def event_ids(events: list[dict[str, Any]]) -> list[str]:
    return [e["event"]["id"] for e in events]


@pytest.mark.parametrize("mode", MODES)
def test_overlapping_polls_and_consecutive_runs(
    mode: str, hook: HousecallProHook, admin: SandboxAdmin, connection: str
) -> None:
    h = SensorHarness("scheduled", mode, connection)
    h.baseline()
    a = admin.book_job(customer_id=a_customer(hook), **slot(2))
    assert ids(h.detect()) == [a["id"]]
    assert h.detect() == [] and h.detect() == []  # the overlap re-reads a, nothing fires again
    b = admin.book_job(customer_id=a_customer(hook, 1), **slot(3))
    assert ids(h.detect()) == [b["id"]]
    assert len(set(event_ids(h.delivered))) == len(h.delivered) == 2


@pytest.mark.parametrize("mode", MODES)
def test_jobs_sharing_one_updated_at(mode: str, hook: HousecallProHook, admin: SandboxAdmin, connection: str) -> None:
    h = SensorHarness("scheduled", mode, connection, detector_options={"page_size": 2})
    h.baseline()
    same = iso(datetime.now(UTC) + timedelta(seconds=5))
    first = [admin.book_job(customer_id=a_customer(hook, i), updated_at=same, **slot(2 + i)) for i in range(3)]
    assert sorted(ids(h.detect())) == sorted(j["id"] for j in first)  # straddles a page boundary
    late = admin.book_job(customer_id=a_customer(hook, 4), updated_at=same, **slot(9))  # same second, after the poll
    assert ids(h.detect()) == [late["id"]]
    assert h.detect() == []


@pytest.mark.parametrize("mode", MODES)
def test_job_updated_while_the_poll_is_paging(
    mode: str, hook: HousecallProHook, admin: SandboxAdmin, connection: str
) -> None:
    h = SensorHarness("scheduled", mode, connection, detector_options={"page_size": 2})
    h.baseline()
    known = next(j for j in hook.iter_jobs(work_status="scheduled") if j.schedule and j.schedule.scheduled_start)
    new_slot = slot(20, hour=14)

    def book_three_and_move_known_mid_scan() -> None:
        for i in range(3):
            admin.clock(freeze=True, set=iso(datetime.now(UTC) + timedelta(seconds=10 + i)))
            admin.book_job(customer_id=a_customer(hook, i), **slot(2 + i))
        admin.clock(freeze=True, set=iso(datetime.now(UTC) + timedelta(seconds=20)))
        # when the poll asks for page 2, `known` is rescheduled and jumps to page 1
        admin.fault("mutate", path="/jobs", page=2, op="reschedule", job_id=known.id, **new_slot)

    got = h.detect(book_three_and_move_known_mid_scan)
    got += h.detect()
    got += h.detect()
    assert len(got) == 4 and len(set(event_ids(got))) == 4
    (moved,) = [e for e in got if e["job"]["id"] == known.id]
    assert (
        moved["event"]["is_reschedule"] and moved["job"]["schedule"]["scheduled_start"] == new_slot["scheduled_start"]
    )


def test_trigger_recreated_from_serialize_mid_stream_delivers_once(
    hook: HousecallProHook, admin: SandboxAdmin, connection: str
) -> None:
    h = SensorHarness("completed", "deferred", connection)
    h.baseline()
    assert h.trigger is not None
    job = admin.book_job(customer_id=a_customer(hook), **slot(0))
    admin.complete(job["id"])
    # The triggerer fires, then dies before Airflow stores the event: the event is lost in flight.
    lost = asyncio.run(run_trigger_once(h.trigger))
    assert lost["status"] == "success"
    # A new triggerer re-creates the trigger from its serialized kwargs and polls again.
    classpath, kwargs = h.trigger.serialize()
    assert classpath == "airflow_provider_housecallpro.triggers.jobs.JobCompletedTrigger"
    h.trigger = type(h.trigger)(**json.loads(json.dumps(kwargs)))
    (delivered,) = h.detect()
    assert delivered["event"]["id"] == lost["events"][0]["event"]["id"]
    assert h.detect() == [] and len(h.delivered) == 1


@pytest.mark.parametrize("mode", MODES)
def test_sensor_retry_redelivers_what_the_failed_try_had_and_nothing_more(
    mode: str, hook: HousecallProHook, admin: SandboxAdmin, connection: str
) -> None:
    h = SensorHarness("scheduled", mode, connection)
    h.baseline()
    job = admin.book_job(customer_id=a_customer(hook), **slot(2))
    (first_try,) = h.detect()
    # That try failed after the sensor returned (e.g. the worker died): Airflow retries the same run,
    # clearing what the failed try pushed. The retry must deliver the same event again, exactly once.
    h.ti.run -= 1
    h.ti.retry()
    (second_try,) = h.detect()
    assert second_try["event"]["id"] == first_try["event"]["id"] and second_try["job"]["id"] == job["id"]
    assert h.detect() == []


def test_api_outage_fails_the_try_and_the_retry_loses_nothing(
    hook: HousecallProHook, admin: SandboxAdmin, connection: str
) -> None:
    h = SensorHarness("scheduled", "poke", connection, client_options={**FAST, "max_retries": 1})
    h.baseline()
    job = admin.book_job(customer_id=a_customer(hook), **slot(2))
    admin.fault("status", status=503, path="/jobs", times=2)
    with pytest.raises(Exception, match="503"):
        h.detect()
    h.ti.run -= 1
    h.ti.retry()
    assert ids(h.detect()) == [job["id"]]


def test_deferred_api_outage_ends_in_a_clear_error(
    hook: HousecallProHook, admin: SandboxAdmin, connection: str
) -> None:
    h = SensorHarness("scheduled", "deferred", connection, client_options={**FAST, "max_retries": 1})
    h.baseline()
    admin.fault("status", status=502, path="/jobs", times=2)
    with pytest.raises(
        Exception, match=r"job.scheduled sensor failed: HousecallProServerError: .*GET /jobs answered 502"
    ):
        h.detect()


def test_idle_poll_costs_one_request(hook: HousecallProHook, admin: SandboxAdmin, connection: str) -> None:
    for kind in ("scheduled", "completed"):
        h = SensorHarness(kind, "poke", connection, detector_options={"page_size": 100})
        h.baseline()
        admin.clear_requests()
        assert h.detect() == []
        assert [(r["method"], r["path"]) for r in admin.requests()] == [("GET", "/jobs")]


def test_ten_thousand_job_account_a_booking_for_tomorrow_fires_and_state_is_compact(
    hook: HousecallProHook, admin: SandboxAdmin, connection: str
) -> None:
    earlier = iso(datetime.now(UTC) - timedelta(minutes=5))
    assert admin.bulk_jobs(10_000, updated_at=earlier) == 10_000  # booked before go-live: history
    h = SensorHarness("scheduled", "poke", connection, detector_options={"page_size": 200, "max_tracked": 2000})
    assert h.baseline() == []
    customer = a_customer(hook)
    tomorrow = admin.book_job(customer_id=customer, **slot(1))
    events = h.detect()
    assert [e["job"]["id"] for e in events] == [tomorrow["id"]]
    state = h.ti.xcom_pull(task_ids="sensor", key=STATE_XCOM_KEY, include_prior_dates=True, map_indexes=-1)
    per_job = len(json.dumps(state)) / state["count"]
    print(f"10,000-job account: {state['count']} jobs tracked, {len(json.dumps(state))} bytes, {per_job:.1f} B/job")
    assert state["count"] >= 10_000 and per_job <= 24
    assert h.detect() == []


def test_a_burst_is_delivered_in_capped_runs_none_lost_none_twice(
    hook: HousecallProHook, admin: SandboxAdmin, connection: str
) -> None:
    h = SensorHarness("scheduled", "poke", connection, detector_options={"page_size": 200})
    h.baseline()
    assert admin.bulk_jobs(1_000) == 1_000
    delivered: list[dict[str, Any]] = []
    for _ in range(10):
        run = h.detect()
        assert len(run) == 100  # the default cap keeps each run's XCom small
        assert len(json.dumps(run)) < 1_000_000
        delivered += run
    assert h.detect() == []
    assert len({e["job"]["id"] for e in delivered}) == 1_000 == len({e["event"]["id"] for e in delivered})


def test_trigger_kwargs_hold_no_api_key_and_no_sync_lookup_on_the_event_loop(
    hook: HousecallProHook, admin: SandboxAdmin, connection: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    h = SensorHarness("completed", "deferred", connection)
    h.baseline()
    assert h.trigger is not None
    assert API_KEY not in json.dumps(h.trigger.serialize())
    assert API_KEY not in repr(h.trigger)

    on_loop: list[str] = []
    original = BaseHook.get_connection.__func__  # type: ignore[attr-defined]

    def watched(cls: type, conn_id: str) -> Any:
        try:
            asyncio.get_running_loop()
            on_loop.append(threading.current_thread().name)
        except RuntimeError:
            pass  # a worker thread (e.g. sync_to_async on Airflow < 3.1): the loop is not blocked
        return original(cls, conn_id)

    monkeypatch.setattr(BaseHook, "get_connection", classmethod(watched))
    job = admin.book_job(customer_id=a_customer(hook), **slot(0))
    admin.complete(job["id"])
    payload = asyncio.run(run_trigger_once(h.trigger))
    assert payload["status"] == "success" and ids(payload["events"]) == [job["id"]]
    assert on_loop == []
