"""Webhook deliveries become job events through the watchers' own state: the sandbox sends signed deliveries to the
real receiver over loopback, the receiver writes the connection's inbox (here in the fake supervisor's Variables, as
the API-server plugin writes the metadata DB), and the job watchers (run as the triggerer runs them) judge the
delivered jobs. The oracle is the list of changes each test made."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from typing import Any

import pytest

from airflow_provider_housecallpro.hooks.housecallpro import HousecallProHook
from airflow_provider_housecallpro.sandbox import SandboxAdmin
from airflow_provider_housecallpro.triggers import events as event_triggers
from airflow_provider_housecallpro.triggers import webhook_inbox
from airflow_provider_housecallpro.triggers.events import JobCompletedEventTrigger, JobScheduledEventTrigger
from airflow_provider_housecallpro.triggers.shared_poller import active_pollers
from airflow_provider_housecallpro.webhooks import inbox
from tests.support.fake_supervisor import DictAssetStore, FakeSupervisor, channel
from tests.support.jobs import a_customer, iso, slot
from tests.support.running import Running, until
from tests.support.webhooks import SECRET, InboxRecorder
from tests.triggers.test_event_triggers import made_by_triggerer

Json = dict[str, Any]


@pytest.fixture(autouse=True)
def quick(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(event_triggers, "CONFIRM_SECONDS", 0.3)
    monkeypatch.setattr(webhook_inbox, "CHECK_SECONDS", 0.05)
    monkeypatch.setattr(webhook_inbox, "ABSENT_SECONDS", 0.05)


@pytest.fixture
def webhooks_off(admin: SandboxAdmin) -> Iterator[None]:
    yield
    admin.disable_webhooks()


def summary(events: list[Json]) -> list[tuple[str, bool]]:
    return [(e["job"]["id"], e["event"]["is_reschedule"]) for e in events]


async def wired(monkeypatch: pytest.MonkeyPatch) -> FakeSupervisor:
    """The triggerer's comms (Variables: the inbox, the watchers' state on 3.0); the connection is the env var."""
    _, supervisor = await channel(monkeypatch)
    return supervisor


def serve_receiver(sink: InboxRecorder) -> Any:
    from airflow_provider_housecallpro.webhooks.receiver import create_receiver_app
    from tests.support.webhooks import serve

    return serve(create_receiver_app(sink))


def test_webhook_alone_books_reschedules_and_completes_once_with_the_right_labels(
    hook: HousecallProHook,
    admin: SandboxAdmin,
    connection: str,
    monkeypatch: pytest.MonkeyPatch,
    webhooks_off: None,
) -> None:
    customer = a_customer(hook)
    store = DictAssetStore()
    # Polls every hour: after the go-live poll, only the webhook path can deliver within the test.
    scheduled = made_by_triggerer(JobScheduledEventTrigger(name="b", webhooks=True, poll_interval=3600), store)
    # (Another interval: a watcher joining its peers' cadence would first poll an hour later.)
    completed = made_by_triggerer(JobCompletedEventTrigger(name="c", webhooks=True, poll_interval=3599), store)
    # On the same connection (so the same poller) without webhooks: pushed deliveries are not for it.
    plain = made_by_triggerer(JobScheduledEventTrigger(name="plain", poll_interval=3598), DictAssetStore())

    async def scenario() -> tuple[list[Json], list[Json], Json, Json, list[str]]:
        supervisor = await wired(monkeypatch)
        sink = InboxRecorder(supervisor, connection)
        with serve_receiver(sink) as url:
            admin.set_webhooks(f"{url}/{connection}", SECRET)
            s, c, quiet = Running(scheduled), Running(completed), Running(plain)
            await until(lambda: sum(len(p.subscribers) for p in active_pollers()) == 3, "all three live")
            await until(lambda: all(sub.state is not None for p in active_pollers() for sub in p.subscribers), "state")
            # Each change a second apart (after go-live): which copy of a job is older is then unambiguous.
            now = time.time() + 1
            booked = admin.book_job(customer_id=customer, **slot(3), updated_at=iso_at(now))
            await until(lambda: len(s.events) == 1, "the booking")
            admin.reschedule(booked["id"], **slot(4), updated_at=iso_at(now + 1))  # job.appointment.rescheduled
            await until(lambda: len(s.events) == 2, "the reschedule")
            admin.start(booked["id"], updated_at=iso_at(now + 2))
            admin.complete(booked["id"], updated_at=iso_at(now + 3))
            await until(lambda: len(c.events) == 1, "the completion")
            # Duplicated and out of order: a second job booked then moved, delivered newest first, twice each.
            admin.set_webhooks(f"{url}/{connection}", SECRET, duplicates=True, hold=True)
            other = admin.book_job(customer_id=customer, **slot(5), updated_at=iso_at(now + 4))
            admin.reschedule(other["id"], **slot(6), updated_at=iso_at(now + 5))
            admin.release_webhooks("reverse")
            await until(lambda: len(sink.accepted) == 8, "every delivery accepted")
            await until(lambda: inbox.variable_key(connection) in supervisor.variables, "inbox written")
            await until(lambda: len(s.events) == 3, "the other job's booking")
            await until(lambda: reader_caught_up(supervisor, connection), "the inbox read to its end")
            (reader,) = webhook_inbox._READERS.values()
            reads = reader.reads
            await until(lambda: reader.reads >= reads + 3, "three more reads of the inbox")  # nothing more comes
            events_s, events_c = list(s.events), list(c.events)
            assert quiet.events == []
            await s.kill()
            await c.kill()
            await quiet.kill()
            return events_s, events_c, booked, other, sink.accepted

    bookings, completions, booked, other, accepted = asyncio.run(scenario())
    assert accepted[:4] == ["job.scheduled", "job.appointment.rescheduled", "job.started", "job.completed"]
    assert summary(bookings) == [(booked["id"], False), (booked["id"], True), (other["id"], False)]
    assert bookings[0]["job"]["schedule"]["scheduled_start"] == slot(3)["scheduled_start"]
    assert bookings[1]["event"]["previous_schedule"]["scheduled_start"] == slot(3)["scheduled_start"]
    assert bookings[1]["job"]["schedule"]["scheduled_start"] == slot(4)["scheduled_start"]
    # The other job: its move arrived first (read back as the job now is), the older booking copy fired nothing.
    assert bookings[2]["job"]["schedule"]["scheduled_start"] == slot(6)["scheduled_start"]
    assert summary(completions) == [(booked["id"], False)]
    assert len({e["event"]["id"] for e in bookings + completions}) == 4
    assert SECRET not in json.dumps([bookings, completions, scheduled.serialize(), completed.serialize()])


def reader_caught_up(supervisor: FakeSupervisor, conn_id: str) -> bool:
    value = json.loads(supervisor.variables[inbox.variable_key(conn_id)])
    readers = list(webhook_inbox._READERS.values())
    return bool(readers) and all(r.last == value["next"] - 1 for r in readers)


def iso_at(epoch: float) -> str:
    from datetime import UTC, datetime

    return iso(datetime.fromtimestamp(int(epoch), UTC))


def test_both_paths_racing_fire_each_change_once_and_polling_covers_a_receiver_outage(
    hook: HousecallProHook,
    admin: SandboxAdmin,
    connection: str,
    monkeypatch: pytest.MonkeyPatch,
    webhooks_off: None,
) -> None:
    customer = a_customer(hook)
    store = DictAssetStore()
    scheduled = made_by_triggerer(JobScheduledEventTrigger(name="b2", webhooks=True, poll_interval=0.2), store)

    async def scenario() -> tuple[list[Json], list[Json], int]:
        supervisor = await wired(monkeypatch)
        sink = InboxRecorder(supervisor, connection)
        with serve_receiver(sink) as url:
            admin.set_webhooks(f"{url}/{connection}", SECRET, duplicates=True)
            s = Running(scheduled)
            await until(lambda: any(sub.state is not None for p in active_pollers() for sub in p.subscribers), "live")
            now = time.time() + 1
            jobs = [
                admin.book_job(customer_id=customer, **slot(d), updated_at=iso_at(now + i))
                for i, d in enumerate((2, 3, 4))
            ]
            await until(lambda: len(s.events) >= 3, "three bookings")  # (a move made sooner would coalesce)
            admin.reschedule(jobs[0]["id"], **slot(8), updated_at=iso_at(now + 3))
            await until(lambda: len(s.events) >= 4, "the reschedule")
        # The receiver is gone: the sandbox's deliveries fail; the poll delivers the change.
        admin.set_webhooks(url + "/gone", SECRET, validate=False, max_attempts=1, retry_delay=0)
        admin.reschedule(jobs[1]["id"], **slot(9), updated_at=iso_at(now + 4))
        await until(lambda: len(s.events) >= 5, "the reschedule, polled")
        (poller,) = active_pollers()
        polls = poller.subscribers[0].polls
        await until(lambda: poller.subscribers[0].polls >= polls + 3, "three more polls")
        events = list(s.events)
        await s.kill()
        return events, jobs, poller.pushes

    events, jobs, pushes = asyncio.run(scenario())
    assert pushes >= 1  # the webhook path judged deliveries
    assert sorted(summary(events)) == sorted(
        [(j["id"], False) for j in jobs] + [(jobs[0]["id"], True), (jobs[1]["id"], True)]
    )
    moved = [e for e in events if e["event"]["is_reschedule"]]
    assert {e["job"]["id"]: e["event"]["previous_schedule"]["scheduled_start"] for e in moved} == {
        jobs[0]["id"]: slot(2)["scheduled_start"],
        jobs[1]["id"]: slot(3)["scheduled_start"],
    }
    assert len({e["event"]["id"] for e in events}) == 5
