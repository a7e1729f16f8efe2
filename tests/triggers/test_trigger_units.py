"""The triggers' pieces that need no API: what they serialize for the triggerer, what they refuse when the DAG is
parsed, and the event triggers' write rule (state + unconfirmed events, no write for a merely trailing horizon).
The polling itself is tested against the sandbox (test_event_triggers.py, test_shared_poller.py)."""

from __future__ import annotations

import asyncio
import importlib
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from airflow_provider_housecallpro.events.detector import COMPLETED, SCHEDULED, DetectorState
from airflow_provider_housecallpro.events.state import Record, epoch
from airflow_provider_housecallpro.triggers import events as event_triggers
from airflow_provider_housecallpro.triggers.events import (
    CONFIRM_SECONDS,
    HORIZON_SLACK,
    JobCompletedEventTrigger,
    JobScheduledEventTrigger,
)
from airflow_provider_housecallpro.triggers.jobs import JobCompletedTrigger, JobScheduledTrigger
from airflow_provider_housecallpro.triggers.watcher_state import Saved
from tests.conftest import API_KEY

T0 = datetime(2026, 3, 1, 12, tzinfo=UTC)
FILTERS = {"job_types": ["Plumbing Repair"], "tags_any": ["vip"], "customer_tags": ["maintenance plan"]}


def state(kind: str = SCHEDULED, horizon: datetime = T0, cursor: datetime = T0) -> DetectorState:
    return DetectorState(kind=kind, cursor=epoch(cursor), horizon=epoch(horizon), since=epoch(T0))  # type: ignore[arg-type]


def rebuilt(trigger: Any) -> Any:
    """What the triggerer does with a serialized trigger: import the classpath, call it with the kwargs."""
    classpath, kwargs = trigger.serialize()
    module, _, name = classpath.rpartition(".")
    json.dumps(kwargs)  # stored as JSON in the trigger table
    return getattr(importlib.import_module(module), name)(**kwargs)


@pytest.mark.parametrize("cls", [JobScheduledTrigger, JobCompletedTrigger])
def test_deferral_triggers_round_trip_through_their_kwargs_without_the_key(
    cls: type, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_HCP_UNIT", json.dumps({"conn_type": "housecallpro", "password": API_KEY}))
    trigger = cls(
        housecallpro_conn_id="hcp_unit",
        state=state(cls.kind).to_json(),
        filters=FILTERS,
        poll_interval=30,
        max_events=5,
        timeout_at=(T0 + timedelta(hours=1)).isoformat(),
        client_options={"timeout": 5.0},
    )
    again = rebuilt(trigger)
    assert type(again) is cls and again.serialize() == trigger.serialize()
    assert again.settings == trigger.settings
    assert API_KEY not in json.dumps(trigger.serialize()) and API_KEY not in repr(trigger)


@pytest.mark.parametrize("cls", [JobScheduledEventTrigger, JobCompletedEventTrigger])
def test_event_triggers_round_trip_through_their_kwargs(cls: type) -> None:
    trigger = cls(name="bookings.prod", filters=FILTERS, poll_interval=120, since=T0.isoformat(), max_events=10)
    again = rebuilt(trigger)
    assert type(again) is cls and again.serialize() == trigger.serialize()
    assert again.kind == (SCHEDULED if cls is JobScheduledEventTrigger else COMPLETED)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"filters": {"work_status": ["scheduled"]}}, "work_status"),
        ({"max_events": 0}, "max_events"),
        ({"poll_interval": -1}, "poke_interval"),
        ({"client_options": {"api_key": "x"}}, "client_options"),
        ({"detector_options": {"unknown": 1}}, "unknown"),
    ],
)
def test_deferral_triggers_refuse_bad_options_naming_them(kwargs: dict[str, Any], field: str) -> None:
    base: dict[str, Any] = {"housecallpro_conn_id": "hcp_unit", "state": state().to_json()}
    with pytest.raises(ValueError, match=field):
        JobScheduledTrigger(**{**base, **kwargs})


class ListStore:
    """A state store that records every write (the real ones are an asset's state or a Variable)."""

    asset = None

    def __init__(self) -> None:
        self.writes: list[dict[str, Any]] = []

    async def load(self) -> dict[str, Any] | None:
        return self.writes[-1] if self.writes else None

    async def save(self, value: dict[str, Any]) -> None:
        self.writes.append(json.loads(json.dumps(value)))


class FakeMonotonic:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_the_writer_stores_events_with_their_state_until_confirmed(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = FakeMonotonic()
    monkeypatch.setattr(event_triggers.time, "monotonic", clock)
    store = ListStore()
    writer = event_triggers._Writer(store, Saved(detector=state(), since=None, pending=[]))
    booked = [{"id": "job_1/s/1-1.ab", "type": "job.scheduled"}]

    async def scenario() -> None:
        await writer.polled(state(cursor=T0 + timedelta(minutes=1)), booked)  # state and events in one write
        writer.sent(booked)
        assert store.writes[-1]["pending"] == booked and len(store.writes) == 1
        await writer.polled(state(cursor=T0 + timedelta(minutes=1)), [])  # same state, event still pending
        assert len(store.writes) == 1
        clock.now += CONFIRM_SECONDS - 1
        await writer.confirm()
        assert len(store.writes) == 1 and writer.wait() == pytest.approx(1.0)
        clock.now += 1
        await writer.confirm()  # confirmed: the stored value drops it
        assert store.writes[-1]["pending"] == [] and len(store.writes) == 2 and writer.wait() is None

    asyncio.run(scenario())
    assert store.writes[-1]["detector"] == state(cursor=T0 + timedelta(minutes=1)).to_json()


@given(
    minutes=st.integers(min_value=0, max_value=int(3 * HORIZON_SLACK / 60)), what=st.sampled_from(["horizon", "cursor"])
)
def test_a_trailing_horizon_or_cursor_alone_is_written_only_once_it_lags_an_hour(minutes: int, what: str) -> None:
    written = {"detector": state().to_json(), "pending": []}
    later = {"detector": state(**{what: T0 + timedelta(minutes=minutes)}).to_json(), "pending": []}
    assert event_triggers._same(later, written) == (minutes * 60 < HORIZON_SLACK)
    # anything else that changes is always written
    assert not event_triggers._same({**written, "pending": [{"id": "x"}]}, written)
    recorded = state(**{what: T0 + timedelta(minutes=minutes)})
    recorded.records = {1: Record(1, 2, 3, 1, 4)}
    assert not event_triggers._same({"detector": recorded.to_json(), "pending": []}, written)
    assert not event_triggers._same(written, None)
