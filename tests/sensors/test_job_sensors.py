"""Job scheduled / Job completed against the live sandbox, through poke mode and deferred mode alike."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from airflow_provider_housecallpro.hooks.housecallpro import HousecallProHook
from airflow_provider_housecallpro.sandbox import SandboxAdmin
from tests.support.jobs import a_customer, ids, iso, slot
from tests.support.sensor_harness import SensorHarness

MODES = ["poke", "deferred"]


@pytest.mark.parametrize("mode", MODES)
def test_scheduled_lifecycle(mode: str, hook: HousecallProHook, admin: SandboxAdmin, connection: str) -> None:
    h = SensorHarness("scheduled", mode, connection)
    assert h.baseline() == []  # history fires nothing
    customer = a_customer(hook)
    job: dict[str, Any] = {}

    def book() -> None:
        job.update(admin.book_job(customer_id=customer, arrival_window=60, **slot(3)))

    (booked,) = h.detect(book)
    assert booked["event"]["type"] == "job.scheduled"
    assert booked["event"]["is_reschedule"] is False and booked["event"]["previous_schedule"] is None
    assert booked["job"]["id"] == job["id"] and booked["job"]["customer"]["id"] == customer
    first = booked["job"]["schedule"]

    new_slot = slot(5, hour=13)
    (moved,) = h.detect(lambda: admin.reschedule(job["id"], **new_slot))
    assert moved["event"]["is_reschedule"] is True
    assert moved["event"]["previous_schedule"] == {
        "scheduled_start": first["scheduled_start"],
        "scheduled_end": first["scheduled_end"],
        "arrival_window": 60,
    }
    assert moved["job"]["schedule"]["scheduled_start"] == new_slot["scheduled_start"]

    def twice() -> None:
        admin.reschedule(job["id"], **slot(6))
        admin.reschedule(job["id"], **slot(7, hour=15))

    (latest,) = h.detect(twice)  # two reschedules between polls: one event, newest schedule
    assert latest["job"]["schedule"]["scheduled_start"] == slot(7, hour=15)["scheduled_start"]
    assert latest["event"]["previous_schedule"]["scheduled_start"] == new_slot["scheduled_start"]

    assert h.detect(lambda: admin.edit(job["id"], notes="gate code 1234", tags=["vip"])) == []
    assert h.detect(lambda: admin.cancel(job["id"], by="user")) == []
    assert h.detect() == []
    assert len(h.delivered) == 3


@pytest.mark.parametrize("mode", MODES)
def test_completed_fires_once(mode: str, hook: HousecallProHook, admin: SandboxAdmin, connection: str) -> None:
    h = SensorHarness("completed", mode, connection)
    assert h.baseline() == []
    job = admin.book_job(customer_id=a_customer(hook), **slot(1))
    assert h.detect(lambda: admin.start(job["id"])) == []
    (done,) = h.detect(lambda: admin.complete(job["id"], paid=False))
    assert done["event"]["type"] == "job.completed" and done["job"]["id"] == job["id"]
    assert done["is_paid"] is False and done["job"]["work_status"] == "complete unrated"
    assert done["customer_name"] and done["job"]["customer"]["id"] == job["customer"]["id"]
    assert h.detect(lambda: admin.edit(job["id"], notes="left a review card")) == []
    assert h.detect(lambda: admin.touch(job["id"])) == []
    assert len(h.delivered) == 1


@pytest.mark.parametrize("mode", MODES)
def test_since_fires_for_what_happened_after_it(
    mode: str, hook: HousecallProHook, admin: SandboxAdmin, connection: str
) -> None:
    before = admin.book_job(customer_id=a_customer(hook), **slot(2))
    since = iso(datetime.now(UTC) + timedelta(seconds=1))
    admin.clock(freeze=True, set=iso(datetime.now(UTC) + timedelta(seconds=30)))
    after = admin.book_job(customer_id=a_customer(hook, 1), **slot(4))
    h = SensorHarness("scheduled", mode, connection, since=since)
    events = h.baseline() + h.detect()
    assert ids(events) == [after["id"]]
    assert before["id"] not in ids(h.delivered)


def test_first_run_without_since_fires_nothing_for_history(
    hook: HousecallProHook, admin: SandboxAdmin, connection: str
) -> None:
    for kind in ("scheduled", "completed"):
        h = SensorHarness(kind, "poke", connection)
        assert h.baseline() == [] and h.detect() == []
