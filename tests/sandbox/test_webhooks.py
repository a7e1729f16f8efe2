"""The sandbox sends webhooks like Housecall Pro, checked through the real receiver over loopback."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from airflow_provider_housecallpro.sandbox.admin import SandboxAdmin, SandboxAdminError
from tests.support.jobs import slot
from tests.support.webhooks import SECRET, RecordingSink, receiver


@pytest.fixture
def customer(admin: SandboxAdmin) -> str:
    return str(admin.all_jobs()[0]["customer"]["id"])


@pytest.fixture
def sink() -> RecordingSink:
    return RecordingSink()


@pytest.fixture
def url(sink: RecordingSink, admin: SandboxAdmin) -> Iterator[str]:
    with receiver(sink) as address:
        yield address
    admin.disable_webhooks()


def summary(deliveries: list[Any]) -> list[tuple[str, str | None]]:
    out = []
    for d in deliveries:
        record = d.record or {}
        out.append((d.event, record.get("job_id") or record.get("id")))
    return out


def test_the_url_check_then_one_signed_delivery_per_change(
    admin: SandboxAdmin, sink: RecordingSink, url: str, customer: str
) -> None:
    admin.set_webhooks(url, SECRET)
    assert sink.delivered == []  # the unsigned check was answered and recorded nothing
    booked = admin.book_job(customer_id=customer, **slot(3))
    moved = admin.reschedule(booked["id"], **slot(4))
    done = admin.complete(booked["id"])
    delivered = sink.wait_for(3)
    assert summary(delivered) == [
        ("job.scheduled", booked["id"]),
        ("job.appointment.rescheduled", booked["id"]),
        ("job.completed", booked["id"]),
    ]
    assert delivered[0].record == booked and delivered[2].record == done
    assert delivered[1].record is not None
    assert delivered[1].record["start_time"] == moved["schedule"]["scheduled_start"]
    assert len({d.company_id for d in delivered}) == 1 and delivered[0].company_id
    shown = admin.webhooks(wait=30)  # the sender logs an attempt after the receiver answered it
    assert SECRET not in repr(shown)
    assert [a["status"] for a in shown["attempts"]] == [200, 200, 200]


def test_a_url_that_fails_the_check_is_refused(admin: SandboxAdmin) -> None:
    failing = RecordingSink()
    failing.secrets.clear()
    with receiver(failing) as address, pytest.raises(SandboxAdminError) as refused:
        admin.set_webhooks(address.replace("/housecallpro", "/bad/path"), SECRET)
    assert refused.value.status_code == 422 and "not 2xx" in str(refused.value)


def test_a_failed_delivery_is_retried_until_accepted(admin: SandboxAdmin, customer: str) -> None:
    sink = RecordingSink(fail_next=2)
    with receiver(sink) as address:
        admin.set_webhooks(address, SECRET, retry_delay=0)
        booked = admin.book_job(customer_id=customer, **slot(5))
        shown = admin.webhooks(wait=30)
        admin.disable_webhooks()
    assert [(a["attempt"], a["status"]) for a in shown["attempts"]] == [(1, 503), (2, 503), (3, 200)]
    assert summary([d for _, d in sink.delivered]) == [("job.scheduled", booked["id"])]


def test_retries_end_when_exhausted(admin: SandboxAdmin, customer: str) -> None:
    with receiver(RecordingSink()) as address:
        down = address  # the receiver stops below: its port then refuses connections
    admin.set_webhooks(down, SECRET, validate=False, max_attempts=2, retry_delay=0)
    admin.book_job(customer_id=customer, **slot(5))
    shown = admin.webhooks(wait=30)
    admin.disable_webhooks()
    assert [(a["attempt"], a["status"]) for a in shown["attempts"]] == [(1, "error"), (2, "error")]


def test_duplicates_and_held_deliveries_released_in_reverse(
    admin: SandboxAdmin, sink: RecordingSink, url: str, customer: str
) -> None:
    admin.set_webhooks(url, SECRET, duplicates=True, hold=True)
    booked = admin.book_job(customer_id=customer, **slot(6))
    admin.reschedule(booked["id"], **slot(7))
    assert admin.webhooks()["held"] == 2 and sink.delivered == []
    assert admin.release_webhooks("reverse") == 2
    delivered = sink.wait_for(4)
    assert [d.event for d in delivered] == [
        "job.appointment.rescheduled",
        "job.appointment.rescheduled",
        "job.scheduled",
        "job.scheduled",
    ]
    assert delivered[0].id == delivered[1].id  # the same body: the same delivery id


def test_a_new_customer_is_a_customer_created_delivery(admin: SandboxAdmin, sink: RecordingSink, url: str) -> None:
    admin.set_webhooks(url, SECRET)
    created = admin.create_customer(first_name="Grace", last_name="Hopper", email="grace@example.com")
    (delivery,) = sink.wait_for(1)
    assert delivery.event == "customer.created" and delivery.record == created
    assert delivery.raw_payload()["customer"] == created
