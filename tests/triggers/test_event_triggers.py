"""The event triggers (AssetWatcher) against the sandbox: one event per booking, reschedule and completion;
a trigger re-created mid-stream (a triggerer restart, a pause/unpause) loses nothing, and what it repeats the
consumer's ledger absorbs.

The triggers run as the triggerer runs them: made from ``serialize()``, ``run()`` iterated in one event loop,
with an ``asset_state_store`` accessor injected as Airflow 3.3's triggerer injects it (here backed by a dict,
JSON round-tripped like the real table). The oracle is the list of changes the test made.
"""

from __future__ import annotations

import asyncio
import importlib
import json
from typing import Any

import pytest

from airflow_provider_housecallpro.assets import select
from airflow_provider_housecallpro.events.detector import COMPLETED, SCHEDULED
from airflow_provider_housecallpro.events.ledger import Ledger
from airflow_provider_housecallpro.hooks.housecallpro import HousecallProHook
from airflow_provider_housecallpro.sandbox import SandboxAdmin
from airflow_provider_housecallpro.triggers import events as event_triggers
from airflow_provider_housecallpro.triggers.events import (
    JobCompletedEventTrigger,
    JobEventsEventTrigger,
    JobScheduledEventTrigger,
)
from airflow_provider_housecallpro.triggers.shared_poller import active_pollers
from airflow_provider_housecallpro.triggers.state_store import asset_store_key
from tests.conftest import API_KEY
from tests.support.fake_supervisor import DictAssetStore
from tests.support.jobs import a_customer, slot
from tests.support.running import Running, until

Json = dict[str, Any]


def made_by_triggerer(trigger: JobEventsEventTrigger, store: DictAssetStore) -> JobEventsEventTrigger:
    classpath, kwargs = trigger.serialize()
    module, _, name = classpath.rpartition(".")
    made: JobEventsEventTrigger = getattr(importlib.import_module(module), name)(**json.loads(json.dumps(kwargs)))
    made.asset_state_store = store  # type: ignore[attr-defined]
    return made


async def more_polls(n: int) -> None:
    """Until every subscriber of the account's poller has polled ``n`` more times."""
    (poller,) = active_pollers()
    before = {id(s): s.polls for s in poller.subscribers}
    await until(lambda: all(s.polls >= before.get(id(s), 0) + n for s in poller.subscribers), f"{n} more polls")


def stored(store: DictAssetStore) -> Json:
    """The one watcher's value in an asset's store."""
    (value,) = store.values.values()
    loaded: Json = json.loads(value)
    return loaded


@pytest.fixture(autouse=True)
def quick_confirm(monkeypatch: pytest.MonkeyPatch) -> None:
    """States are written 0.3 s after their events instead of 10 s (the triggerer's sync is not in the loop)."""
    monkeypatch.setattr(event_triggers, "CONFIRM_SECONDS", 0.3)


def summary(events: list[Json]) -> list[tuple[str, bool]]:
    return [(e["job"]["id"], e["event"]["is_reschedule"]) for e in events]


def test_each_booking_reschedule_and_completion_is_one_event(
    hook: HousecallProHook, admin: SandboxAdmin, connection: str
) -> None:
    customer = a_customer(hook)
    store = DictAssetStore()  # one asset, both watchers
    scheduled = made_by_triggerer(JobScheduledEventTrigger(name="bookings", poll_interval=0.1), store)
    completed = made_by_triggerer(JobCompletedEventTrigger(name="completions", poll_interval=0.1), store)
    keys = {asset_store_key(SCHEDULED, "bookings"), asset_store_key(COMPLETED, "completions")}

    async def scenario() -> tuple[list[Json], list[Json], list[Json]]:
        s, c = Running(scheduled), Running(completed)
        await until(lambda: set(store.values) == keys, "go-live")
        burst = [admin.book_job(customer_id=customer, **slot(day)) for day in range(1, 6)]
        await until(lambda: len(s.events) >= 5, "five bookings")
        admin.reschedule(burst[0]["id"], **slot(9))
        await until(lambda: len(s.events) >= 6, "the reschedule")
        admin.start(burst[1]["id"])
        admin.complete(burst[1]["id"], paid=True)
        await until(lambda: len(c.events) >= 1, "the completion")
        quiet = len(s.events), len(c.events)
        await more_polls(3)  # nothing more may come
        assert (len(s.events), len(c.events)) == quiet
        # Both confirmed their events (dropped them from the stored value): a restart sends nothing again.
        await until(lambda: not any(json.loads(v).get("pending") for v in store.values.values()), "confirmation")
        await s.kill()
        await c.kill()
        # Restarted (a triggerer restart): each reads its own key, and nothing is sent again.
        s2, c2 = Running(made_by_triggerer(scheduled, store)), Running(made_by_triggerer(completed, store))
        await until(lambda: sum(len(p.subscribers) for p in active_pollers()) == 2, "both restarted")
        await more_polls(3)
        assert (s2.events, c2.events) == ([], [])
        await s2.kill()
        await c2.kill()
        return burst, s.events, c.events

    burst, bookings, completions = asyncio.run(scenario())
    # The burst (made within a second: same updated_at, so in id order), then the reschedule.
    assert sorted(summary(bookings[:5])) == sorted((j["id"], False) for j in burst)
    assert summary(bookings[5:]) == [(burst[0]["id"], True)]
    assert bookings[-1]["event"]["previous_schedule"]["scheduled_start"] == slot(1)["scheduled_start"]
    assert summary(completions) == [(burst[1]["id"], False)]
    assert completions[0]["is_paid"] is True
    assert len({e["event"]["id"] for e in bookings}) == 6
    assert set(store.values) == keys
    assert API_KEY not in json.dumps([scheduled.serialize(), bookings, completions, store.values])


def test_a_restart_mid_stream_loses_nothing_and_the_ledger_absorbs_repeats(
    hook: HousecallProHook, admin: SandboxAdmin, connection: str
) -> None:
    customer = a_customer(hook)
    store = DictAssetStore()
    watcher = JobScheduledEventTrigger(name="restarts", poll_interval=0.1)

    async def scenario() -> tuple[list[Json], list[Json], list[Json]]:
        first = Running(made_by_triggerer(watcher, store))
        await until(lambda: bool(store.values), "go-live")
        a = admin.book_job(customer_id=customer, **slot(1))
        await until(lambda: len(first.events) >= 1, "booking a")
        # Killed right after yielding (its state for a is not written yet): the next start repeats a.
        await first.kill()
        b = admin.book_job(customer_id=customer, **slot(2))  # while no trigger runs
        admin.reschedule(a["id"], **slot(3))
        second = Running(made_by_triggerer(watcher, store))  # restart: the same kwargs, the stored state
        await until(lambda: len(second.events) >= 3, "a (again), b, and a's reschedule")
        await until(lambda: stored(store)["pending"] == [], "its events confirmed")
        await second.kill()
        c = admin.book_job(customer_id=customer, **slot(4))  # while paused
        third = Running(made_by_triggerer(watcher, store))  # unpaused: re-created from the DAG file
        await until(lambda: len(third.events) >= 1, "c")
        await more_polls(3)
        await third.kill()
        return [a, b, c], first.events + second.events, third.events

    (a, b, c), before, after = asyncio.run(scenario())
    delivered = before + after
    # Raw: a's booking came twice (before and after the restart), with the same event.id.
    ids = [e["event"]["id"] for e in delivered]
    assert len(ids) == 5 and len(set(ids)) == 4, summary(delivered)
    # Processed: the consumer's ledger lets each change through once.
    ledger, processed = Ledger(), []
    for n, events in enumerate([e] for e in delivered):
        chosen, claims = select([(e, 1_000 + n) for e in events], ledger, f"run_{n}")
        ledger.claim(f"run_{n}", claims)
        processed += chosen
    assert sorted(summary(processed)) == sorted([(a["id"], False), (b["id"], False), (a["id"], True), (c["id"], False)])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"name": ""}, "name must be"),
        ({"name": "has space"}, "name must be"),
        ({"name": "ok", "since": "yesterday"}, "since must be an ISO-8601"),
        ({"name": "ok", "poll_interval": 0}, "poke_interval must be between"),
        ({"name": "ok", "client_options": {"verify": False}}, "unknown client_options"),
        ({"name": "ok", "detector_options": {"page_size": 0}}, "detector_options\\['page_size'\\]"),
        ({"name": "ok", "filters": {"colour": "red"}}, "colour"),
    ],
)
def test_bad_options_fail_when_the_dag_is_parsed(kwargs: Json, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        JobScheduledEventTrigger(**kwargs)
