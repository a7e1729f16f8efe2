"""Drive the job sensors through their real code paths, one detection at a time.

``FakeTI`` stands in for Airflow's TaskInstance: it only stores XComs per DAG run, the way the metadata DB
does (``include_prior_dates`` returns the newest earlier value; a retry clears the current run's). All of
our code — sensor, trigger, hook, detector — runs for real against the sandbox over HTTP.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

from airflow.providers.common.compat.sdk import AirflowSensorTimeout

from airflow_provider_housecallpro.sensors.jobs import JobCompletedSensor, JobEventSensor, JobScheduledSensor
from airflow_provider_housecallpro.triggers.jobs import JobEventsTrigger
from tests.conftest import FAST

try:
    from airflow.sdk.exceptions import TaskDeferred
except ImportError:  # pragma: no cover
    from airflow.exceptions import TaskDeferred  # type: ignore[no-redef]


_NOT_SET: Any = object()


class FakeTI:
    def __init__(self) -> None:
        self.run = 1
        self.store: list[tuple[int, str, str, Any]] = []
        self.run_started: dict[int, datetime] = {}

    def context(self) -> dict[str, Any]:
        """What the sensor reads of its context: the TI and its DAG run's start (fixed across retries)."""
        start = self.run_started.setdefault(self.run, datetime.now(UTC))
        return {"ti": self, "dag_run": SimpleNamespace(start_date=start)}

    map_index = -1

    def xcom_push(self, key: str, value: Any) -> None:
        """One value per (run, key): a later push in the same run replaces the earlier one."""
        self.store = [row for row in self.store if not (row[0] == self.run and row[2] == key)]
        self.store.append((self.run, "sensor", key, value))

    def xcom_pull(self, task_ids: str, key: str, include_prior_dates: bool = False, map_indexes: Any = _NOT_SET) -> Any:
        """As Airflow 3.0-3.3 answer: without ``map_indexes``, every matching run's value (a list once there
        are two); with it, ``XCom.get_one``: the value of the newest run."""
        rows = sorted(
            (run, v)
            for run, _t, k, v in self.store
            if k == key and (run == self.run or (include_prior_dates and run < self.run))
        )
        if map_indexes is _NOT_SET:
            values = [v for _run, v in rows]
            return None if not values else values[0] if len(values) == 1 else values
        return rows[-1][1] if rows else None

    def next_run(self) -> None:
        self.run += 1

    def retry(self) -> None:
        """A new try of the same run: Airflow clears the XComs the failed try pushed."""
        self.store = [row for row in self.store if row[0] != self.run]


async def run_trigger_once(trigger: JobEventsTrigger) -> dict[str, Any]:
    """Run a trigger until its first event and close it (with timeout_at 'now', that is after one poll)."""
    gen = trigger.run()
    try:
        event = await gen.__anext__()
    finally:
        await gen.aclose()
    return event.payload  # type: ignore[no-any-return]


class SensorHarness:
    """One detection per call of :meth:`detect`, through the poke path or the deferred path."""

    def __init__(self, kind: str, mode: str, conn_id: str, ti: FakeTI | None = None, **sensor_kwargs: Any) -> None:
        assert mode in ("poke", "deferred")
        self.cls: type[JobEventSensor] = JobScheduledSensor if kind == "scheduled" else JobCompletedSensor
        self.mode = mode
        self.conn_id = conn_id
        self.ti = ti or FakeTI()
        self.kwargs = {"detector_options": {"page_size": 10}, "client_options": FAST, **sensor_kwargs}
        self.trigger: JobEventsTrigger | None = None
        self.delivered: list[dict[str, Any]] = []

    def sensor(self, **extra: Any) -> JobEventSensor:
        return self.cls(
            task_id="sensor",
            housecallpro_conn_id=self.conn_id,
            deferrable=self.mode == "deferred",
            timeout=0,
            poke_interval=0.01,
            **{**self.kwargs, **extra},
        )

    def baseline(self) -> list[dict[str, Any]]:
        """The first run: takes a baseline (or starts at ``since``); returns what it delivered."""
        if self.mode == "deferred":
            return self.start()
        events = self.detect()
        return events

    def start(self) -> list[dict[str, Any]]:
        """A run's beginning: poke mode does nothing yet; deferred mode checks once and defers."""
        if self.mode == "poke":
            return []
        try:
            events = self.sensor().execute(self.ti.context())
        except TaskDeferred as deferred:
            self.trigger = deferred.trigger
            return []
        return self._got(events)

    def detect(self, change: Callable[[], Any] | None = None) -> list[dict[str, Any]]:
        """Apply ``change`` in the sandbox, then one poll through this harness's path. Starts the next run."""
        if self.mode == "deferred" and self.trigger is None:
            early = self.start()
            if early:  # found by the check on the worker before deferring
                self.ti.next_run()
                return early + self.detect(change)
        if change is not None:
            change()
        if self.mode == "poke":
            try:
                events = self.sensor().execute(self.ti.context())
            except AirflowSensorTimeout:
                events = []
        else:
            assert self.trigger is not None
            payload = asyncio.run(run_trigger_once(self.trigger))
            self.trigger = None
            try:
                events = self.sensor().execute_complete(self.ti.context(), payload)
            except AirflowSensorTimeout:
                events = []
        self.ti.next_run()
        return self._got(events)

    def _got(self, events: list[dict[str, Any]]) -> list[dict[str, Any]]:
        self.delivered += events
        return events
