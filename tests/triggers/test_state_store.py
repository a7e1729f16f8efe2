"""Each watcher its own state, on every Airflow version; an unusable state stops the watcher loudly, once.

Airflow >= 3.3: the asset state store accessor the triggerer injects (a dict-backed fake: Airflow's object).
Airflow 3.0-3.2 and the upgrade path: Variables through the real trigger comms (``tests.support.fake_supervisor``).
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import pytest

from airflow_provider_housecallpro.events.detector import COMPLETED, SCHEDULED, DetectorState, EventType
from airflow_provider_housecallpro.triggers import events as event_triggers
from airflow_provider_housecallpro.triggers.events import (
    JobCompletedEventTrigger,
    JobEventsEventTrigger,
    JobScheduledEventTrigger,
)
from airflow_provider_housecallpro.triggers.state_store import (
    LEGACY_ASSET_STORE_KEY,
    AssetStore,
    VariableStore,
    asset_store_key,
    state_store,
    variable_key,
)
from airflow_provider_housecallpro.triggers.watcher_state import read, state_value
from tests.support.fake_supervisor import DictAssetStore, channel
from tests.support.running import Running, until

Json = dict[str, Any]
T0 = 1_780_000_000


def a_state(kind: EventType, *, legacy: bool = False) -> Json:
    """A stored value of a ``kind`` watcher that has polled (``legacy``: as written before values named their kind)."""
    value = state_value(DetectorState(kind=kind, cursor=T0, horizon=T0, since=T0 - 3600), [])
    if legacy:
        del value["kind"]
    return value


def test_on_airflow_3_3_the_key_names_the_kind_and_the_watcher() -> None:
    accessor = DictAssetStore()
    trigger = JobScheduledEventTrigger(name="hcp")
    trigger.asset_state_store = accessor  # type: ignore[attr-defined]
    scheduled = state_store(trigger, SCHEDULED, "hcp")
    assert isinstance(scheduled, AssetStore)
    assert scheduled.key == "housecallpro.detector.scheduled.hcp"
    assert asset_store_key(COMPLETED, "hcp") == "housecallpro.detector.completed.hcp"
    assert "housecallpro.detector.completed.hcp" in AssetStore(accessor, COMPLETED, "hcp").where


def test_without_an_asset_store_it_is_the_variable_of_the_name() -> None:
    store = state_store(object(), COMPLETED, "hcp")
    assert isinstance(store, VariableStore)
    assert store.key == variable_key("hcp") == "housecallpro_watcher__hcp"
    assert store.asset is None


def test_two_watchers_on_one_asset_keep_two_states() -> None:
    accessor = DictAssetStore()
    bookings, completions = AssetStore(accessor, SCHEDULED, "b"), AssetStore(accessor, COMPLETED, "c")

    async def scenario() -> tuple[Any, Any]:
        await bookings.save(a_state(SCHEDULED))
        await completions.save(a_state(COMPLETED))
        return await bookings.load(), await completions.load()

    got_b, got_c = asyncio.run(scenario())
    assert read(got_b, SCHEDULED).detector.kind == SCHEDULED  # type: ignore[union-attr]
    assert read(got_c, COMPLETED).detector.kind == COMPLETED  # type: ignore[union-attr]
    assert set(accessor.values) == {asset_store_key(SCHEDULED, "b"), asset_store_key(COMPLETED, "c")}


def test_the_legacy_key_is_read_by_the_watcher_of_its_kind_only() -> None:
    accessor = DictAssetStore()
    accessor.values[LEGACY_ASSET_STORE_KEY] = json.dumps(a_state(SCHEDULED, legacy=True))

    async def scenario() -> tuple[Any, Any]:
        return await AssetStore(accessor, SCHEDULED, "b").load(), await AssetStore(accessor, COMPLETED, "c").load()

    got_b, got_c = asyncio.run(scenario())
    assert got_b == a_state(SCHEDULED, legacy=True)
    assert got_c is None  # not an error: the other watcher's, so this one goes live


def test_the_own_key_wins_over_the_legacy_key() -> None:
    accessor = DictAssetStore()
    accessor.values[LEGACY_ASSET_STORE_KEY] = json.dumps({"go_live": "2020-01-01T00:00:00+00:00"})
    accessor.values[asset_store_key(SCHEDULED, "b")] = json.dumps(a_state(SCHEDULED))
    assert asyncio.run(AssetStore(accessor, SCHEDULED, "b").load()) == a_state(SCHEDULED)


def test_upgraded_from_3_0_the_variable_of_the_kind_carries_over(monkeypatch: pytest.MonkeyPatch) -> None:
    async def scenario() -> tuple[Any, Any, list[Json]]:
        _, supervisor = await channel(monkeypatch)
        supervisor.variables[variable_key("b")] = json.dumps(a_state(SCHEDULED, legacy=True))
        accessor = DictAssetStore()
        return (
            await AssetStore(accessor, SCHEDULED, "b").load(),
            await AssetStore(accessor, COMPLETED, "b").load(),  # the same name, the other kind: not its state
            supervisor.requests,
        )

    upgraded, other, requests = asyncio.run(scenario())
    assert upgraded == a_state(SCHEDULED, legacy=True)
    assert other is None
    assert {"type": "GetVariable", "key": "housecallpro_watcher__b"} in requests


class ErrorLog:
    """The error lines a trigger logged: through stdlib logging (Airflow 3.0) or structlog's stdout (Airflow 3.3)."""

    def __init__(self, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]) -> None:
        self.caplog, self.capsys, self.printed = caplog, capsys, ""

    def lines(self) -> list[str]:
        self.printed += self.capsys.readouterr().out
        logged = [r.getMessage() for r in self.caplog.records if r.levelno >= logging.ERROR]
        printed = [line for line in self.printed.splitlines() if "[error" in line]
        return logged or printed


@pytest.fixture
def errors_logged(
    caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> ErrorLog:
    monkeypatch.setattr(event_triggers, "ERROR_REPEAT_SECONDS", 0.01)
    caplog.set_level(logging.ERROR)
    return ErrorLog(caplog, capsys)


def stuck(
    trigger: JobEventsEventTrigger, errors: ErrorLog, accessor: DictAssetStore
) -> tuple[list[Json], bool, list[str]]:
    """Run ``trigger`` until it has logged its error three times; then reset its state (as the CLI does) and run it
    until it has gone live."""

    async def scenario() -> tuple[list[Json], bool]:
        running = Running(trigger)
        await until(lambda: running.task.done() or len(errors.lines()) >= 3, "the error, three times")
        alive = not running.task.done()
        assert accessor.writes == 0  # it never overwrote what it could not read
        accessor.values.clear()
        await until(lambda: accessor.writes == 1, "the go-live after the reset")
        running.task.cancel()
        await asyncio.gather(running.task, return_exceptions=True)
        return running.events, alive

    events, alive = asyncio.run(scenario())
    return events, alive, errors.lines()


def test_an_unreadable_state_yields_one_error_event_the_watcher_waits_without_polling_until_reset(
    errors_logged: ErrorLog,
) -> None:
    accessor = DictAssetStore()
    key = asset_store_key(SCHEDULED, "broken")
    accessor.values[key] = json.dumps({"detector": {"v": 2, "kind": "job.scheduled", "jobs": "not base64!"}})
    trigger = JobScheduledEventTrigger(name="broken", housecallpro_conn_id="no_such_connection")
    trigger.asset_state_store = accessor  # type: ignore[attr-defined]

    events, alive, logged = stuck(trigger, errors_logged, accessor)

    assert alive, "the watcher exited (the triggerer would re-create it every few seconds)"
    assert len(events) == 1 and set(events[0]) == {"error"}
    error = events[0]["error"]
    assert (error["watcher"], error["kind"]) == ("broken", "job.scheduled")
    assert error["store"] == f"asset state store key {key!r}"
    assert "holds an unreadable state" in error["message"]
    assert "housecallpro watcher-state reset broken --kind scheduled --asset ASSET_NAME" in error["fix"]
    assert error["id"].startswith("error:job.scheduled:broken:")
    assert len(logged) >= 3 and all("housecallpro watcher-state reset broken" in line for line in logged)
    assert set(json.loads(accessor.values[key])) == {"kind", "go_live"}  # live again after the reset


def test_on_airflow_3_0_a_variable_of_the_other_kind_means_two_watchers_share_a_name(
    monkeypatch: pytest.MonkeyPatch, errors_logged: ErrorLog
) -> None:
    async def scenario() -> tuple[list[Json], bool, dict[str, str]]:
        _, supervisor = await channel(monkeypatch)
        supervisor.variables[variable_key("shared")] = json.dumps(a_state(SCHEDULED))
        running = Running(JobCompletedEventTrigger(name="shared", housecallpro_conn_id="no_such_connection"))
        await until(lambda: running.task.done() or len(errors_logged.lines()) >= 2, "the error, twice")
        alive = not running.task.done()
        running.task.cancel()
        await asyncio.gather(running.task, return_exceptions=True)
        return running.events, alive, supervisor.variables

    events, alive, variables = asyncio.run(scenario())
    assert alive
    (event,) = events
    assert event["error"]["store"] == "Variable 'housecallpro_watcher__shared'"
    assert "holds a job.scheduled watcher's state: two watchers share the name 'shared'" in event["error"]["message"]
    assert "give each watcher its own `name`" in event["error"]["fix"]
    assert json.loads(variables[variable_key("shared")]) == a_state(SCHEDULED)  # the other watcher's, untouched
