"""The pure detector and JobFilter, without any I/O."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from airflow_provider_housecallpro.api.errors import HousecallProInputError
from airflow_provider_housecallpro.api.models import Page, format_timestamp
from airflow_provider_housecallpro.events.detector import COMPLETED, SCHEDULED, DetectorSettings
from airflow_provider_housecallpro.events.filters import JobFilter
from airflow_provider_housecallpro.events.poll import drive, poll_plan
from airflow_provider_housecallpro.sensors.jobs import JobScheduledSensor

T0 = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def job(i: int, *, updated: int, start: int | None = 24, status: str = "scheduled", **extra: Any) -> dict[str, Any]:
    """A job updated ``updated`` minutes after T0, starting ``start`` hours after T0."""
    return {
        "id": f"job_{i}",
        "work_status": status,
        "updated_at": format_timestamp(T0 + timedelta(minutes=updated)),
        "schedule": None
        if start is None
        else {
            "scheduled_start": format_timestamp(T0 + timedelta(hours=start)),
            "scheduled_end": format_timestamp(T0 + timedelta(hours=start + 2)),
            "arrival_window": 30,
        },
        "customer": {"id": f"cus_{i}", "first_name": "C", "last_name": str(i)},
        **extra,
    }


class FakeAPI:
    """Answers the plan's queries from a list of jobs, newest-first by updated_at, like GET /jobs."""

    def __init__(self, jobs: list[dict[str, Any]]) -> None:
        self.jobs = jobs
        self.queries: list[Any] = []

    def __call__(self, query: Any) -> Page[dict[str, Any]]:
        self.queries.append(query)
        rows = list(self.jobs)
        if query.scheduled_start_min is not None:
            rows = [
                j
                for j in rows
                if j["schedule"] and j["schedule"]["scheduled_start"] >= format_timestamp(query.scheduled_start_min)
            ]
            rows = [j for j in rows if j["work_status"] in ("scheduled", "in progress")]
            rows.sort(key=lambda j: j["id"])
        else:
            rows.sort(key=lambda j: (j["updated_at"], j["id"]), reverse=True)
        size = query.page_size
        chunk = rows[(query.page - 1) * size : query.page * size]
        pages = max(1, -(-len(rows) // size))
        return Page[dict[str, Any]](
            page=query.page, page_size=size, total_pages=pages, total_items=len(rows), items=chunk
        )


def poll(
    api: FakeAPI, state: Any, *, kind: str = SCHEDULED, now_min: int = 60, since: datetime | None = None, **kw: Any
):  # type: ignore[no-untyped-def]
    settings = DetectorSettings(kind=kind, page_size=kw.pop("page_size", 2), **kw)  # type: ignore[arg-type]
    return drive(poll_plan(settings, state, T0 + timedelta(minutes=now_min), since=since), api)


def test_first_poll_needs_since_and_fires_only_after_it() -> None:
    api = FakeAPI([job(1, updated=-10), job(2, updated=5)])
    first = poll(api, None, since=T0)
    assert [e["job"]["id"] for e in first.events] == ["job_2"]
    assert set(first.state.jobs) == {"job_1", "job_2"}  # history is remembered, not fired
    api.jobs[0] = job(1, updated=20, start=48)  # a reschedule of the history job fires as a reschedule
    second = poll(api, first.state, now_min=61)
    (moved,) = second.events
    assert moved["event"]["is_reschedule"] and moved["event"]["previous_schedule"][
        "scheduled_start"
    ] == format_timestamp(T0 + timedelta(hours=24))


def test_events_oldest_first_and_max_events_holds_the_rest_back() -> None:
    api = FakeAPI([job(i, updated=i) for i in range(1, 6)])
    settings = DetectorSettings(kind=SCHEDULED, page_size=2)
    first = drive(poll_plan(settings, None, T0 + timedelta(hours=1), since=T0, max_events=2), api)
    assert [e["job"]["id"] for e in first.events] == ["job_1", "job_2"] and first.pending == 3
    second = drive(poll_plan(settings, first.state, T0 + timedelta(hours=1), max_events=2), api)
    third = drive(poll_plan(settings, second.state, T0 + timedelta(hours=1), max_events=2), api)
    assert [e["job"]["id"] for e in second.events + third.events] == ["job_3", "job_4", "job_5"]
    assert drive(poll_plan(settings, third.state, T0 + timedelta(hours=1)), api).events == []


def test_incremental_read_stops_at_the_cursor() -> None:
    api = FakeAPI([job(i, updated=-i) for i in range(1, 21)])  # 20 old jobs, 10 pages of 2
    state = poll(api, None, since=T0).state
    api.queries.clear()
    poll(api, state, reconcile_interval=timedelta(days=1), overlap=timedelta(0))
    assert [q.page for q in api.queries] == [1]
    api.queries.clear()
    poll(api, state, reconcile_interval=timedelta(days=1), overlap=timedelta(minutes=3))
    assert [q.page for q in api.queries] == [1, 2]  # the overlap re-reads a little further back


def test_reconcile_catches_a_reschedule_that_did_not_bump_updated_at() -> None:
    api = FakeAPI([job(1, updated=-50), job(2, updated=-1), job(3, updated=-2)])
    state = poll(api, None, since=T0).state
    api.jobs[0] = job(1, updated=-50, start=72)  # same updated_at, new schedule: not on page 1
    opts = {"reconcile_interval": timedelta(hours=1), "overlap": timedelta(0)}
    assert poll(api, state, now_min=61, **opts).events == []  # reconcile not due yet
    (event,) = poll(api, state, now_min=120, **opts).events
    assert event["event"]["is_reschedule"]


def test_completed_fires_once_and_never_for_history() -> None:
    done = {"work_timestamps": {"completed_at": format_timestamp(T0 + timedelta(minutes=3))}}
    api = FakeAPI([job(1, updated=-10, status="complete rated"), job(2, updated=3, status="complete unrated", **done)])
    first = poll(api, None, kind=COMPLETED, since=T0)
    assert [e["job"]["id"] for e in first.events] == ["job_2"]
    api.jobs[1] = job(2, updated=9, status="complete unrated", **done)
    assert poll(api, first.state, kind=COMPLETED).events == []


def test_state_is_pruned_by_retention_and_capped() -> None:
    api = FakeAPI([job(i, updated=i, start=-24 * 40 if i % 2 else 24 + i) for i in range(1, 101)])
    result = poll(api, None, since=T0 - timedelta(days=60), retention=timedelta(days=30), max_tracked=20, page_size=50)
    assert len(result.state.jobs) == 20  # the 50 jobs 40 days past are gone; 50 upcoming capped to 20
    assert all(int(fp.split("|")[0]) > (T0 - timedelta(days=30)).timestamp() for fp, _ in result.state.jobs.values())


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
