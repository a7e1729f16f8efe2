"""Oracle soak: a seeded stream of job changes against the sandbox, with faults, restarts and failed tries,
checked against tests/support/oracle.py (expected events from the world's own history, not the detector's logic).

Both sensors (scheduled, completed) watch the same world, in deferred mode (real ``execute`` →
``TaskDeferred`` → trigger ``run()`` → ``execute_complete``) or poke mode, with state carried in the
sensor's XCom from run to run (``FakeTI`` answers like Airflow's metadata DB). Each step:

1. changes between runs (bookings, reschedules incl. back to an earlier slot, edits, starts, completions,
   cancels, hard deletes — several per second);
2. a chaotic run: faults on the API (429 with and without Retry-After, 503, dropped connections, timeouts,
   more failures than the retry budget), jobs changed or deleted while pages are read, ties in a new order
   on every request; in deferred mode the trigger may be re-created from ``serialize()`` after a poll (a
   triggerer restart), and a try may fail after the sensor returned (its events and state vanish);
3. clean runs until one finds nothing; then the delivered events must equal the oracle's for the step.

Time passes between steps (the sandbox's clock moves 30-200 s; with late commits also 0-20 s between changes),
so the changes pass's look-back re-reads what a real poller would. With ``late`` on, a share of writes commits
late (``POST /_sandbox/late``): visible 5-240 s after its ``updated_at`` (within the default 5-minute look-back),
so a poll reads newer changes while older ones are still invisible; the clock then moves on in two hops (a clean
run in between) until every write is visible. Each job is then changed at most once per step (a late write makes
every version of a job visible, so the oracle's "one visible change per step" needs one write).

Printed: changes, late writes, faults, restarts, failed tries, and 0 lost / 0 duplicated / 0 mislabelled.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import os
import random
from datetime import datetime, timedelta
from typing import Any

import pytest
from airflow.providers.common.compat.sdk import AirflowException, AirflowSensorTimeout

from airflow_provider_housecallpro.api.errors import HousecallProError
from airflow_provider_housecallpro.sandbox import SandboxAdmin
from airflow_provider_housecallpro.sensors.jobs import JobCompletedSensor, JobEventSensor, JobScheduledSensor
from tests.support.jobs import iso
from tests.support.oracle import Tally, expected_events, snapshot
from tests.support.sensor_harness import FakeTI, run_trigger_once

try:
    from airflow.sdk.exceptions import TaskDeferred
except ImportError:  # pragma: no cover
    from airflow.exceptions import TaskDeferred  # type: ignore[no-redef]

CHANGES = int(os.environ.get("HCP_SOAK_CHANGES", "200"))  # per seed; several seeds beat one long run
LATE = {"share": 0.05, "min_seconds": 5, "max_seconds": 240}
SEEDS = [int(s) for s in os.environ.get("HCP_SOAK_SEEDS", "7,11,23").split(",")]
OPS = ("book", "book", "reschedule", "reschedule", "edit", "edit", "start", "complete", "cancel", "delete")
RULE_KEYS = {"id", "kind", "method", "path", "times", "after", "page", "fired", "skipped", "last_error", "op", "job_id"}
CLIENT = {"backoff_base": 0.001, "backoff_max": 0.01, "timeout": 0.4, "connect_timeout": 0.4, "max_retries": 4}
DETECTOR = {"page_size": 5, "first_page_size": 3}


class Driver:
    """One sensor task, run after run (each run one try unless it fails)."""

    def __init__(self, kind: str, mode: str, conn_id: str, rng: random.Random, tally: Tally, customers: list[str]):
        self.kind = "job.scheduled" if kind == "scheduled" else "job.completed"
        self.cls: type[JobEventSensor] = JobScheduledSensor if kind == "scheduled" else JobCompletedSensor
        self.mode, self.conn_id, self.rng, self.tally = mode, conn_id, rng, tally
        self.customers = customers
        self.ti = FakeTI()
        self.ids: set[str] = set()
        self.vanished: dict[str, str] = {}  # event id of a failed try -> job: must come back with the same id

    def matches(self, job: dict[str, Any]) -> bool:
        return (job.get("customer") or {}).get("id") in self.customers

    def sensor(self) -> JobEventSensor:
        return self.cls(
            task_id="sensor",
            housecallpro_conn_id=self.conn_id,
            deferrable=self.mode == "deferred",
            timeout=0,
            poke_interval=0.01,
            max_events=7,
            filters={"customer_ids": self.customers},
            detector_options=DETECTOR,
            client_options=CLIENT,
        )

    def run(self, chaos: bool) -> list[dict[str, Any]] | None:
        """One try of one DAG run. Returns the committed events, or None when the try failed."""
        context = self.ti.context()
        try:
            if self.mode == "poke":
                try:
                    events = self.sensor().execute(context)
                except AirflowSensorTimeout:
                    events = []
            else:
                try:
                    events = self.sensor().execute(context)
                except TaskDeferred as deferred:
                    trigger = deferred.trigger
                    if chaos and self.rng.random() < 0.3:
                        asyncio.run(run_trigger_once(trigger))  # polled, then the triggerer died
                        classpath, kwargs = trigger.serialize()
                        module, _, name = classpath.rpartition(".")
                        trigger = getattr(importlib.import_module(module), name)(**kwargs)
                        self.tally.restarts += 1
                    payload = asyncio.run(run_trigger_once(trigger))
                    try:
                        events = self.sensor().execute_complete(context, payload)
                    except AirflowSensorTimeout:
                        events = []
        except (AirflowException, HousecallProError):
            self.ti.retry()  # the API kept failing past the retry budget: this try fails
            self.tally.failed_tries += 1
            return None
        if chaos and events and self.rng.random() < 0.25:
            for e in events:  # the worker dies after the sensor returned: nothing of this try is kept
                self.vanished[e["event"]["id"]] = e["job"]["id"]
            self.ti.retry()
            self.tally.failed_tries += 1
            return None
        for e in events:
            assert e["event"]["id"] not in self.ids, f"event id delivered twice: {e['event']['id']}"
            self.ids.add(e["event"]["id"])
            self.vanished.pop(e["event"]["id"], None)
        self.ti.next_run()
        return events


def _faults(admin: SandboxAdmin, rng: random.Random) -> int:
    """Error faults for the next run; returns how many rules were added."""
    kinds = [
        {"kind": "status", "status": 429, "retry_after": "0"},
        {"kind": "status", "status": 429},
        {"kind": "status", "status": 503},
        {"kind": "status", "status": 500, "body": "<html>oops</html>", "content_type": "text/html"},
        {"kind": "drop"},
        {"kind": "drop", "when": "after"},
        {"kind": "delay", "seconds": 0.6},  # longer than the client's timeout
    ]
    added = 0
    for _ in range(rng.randint(3, 7)):
        spec = dict(rng.choice(kinds))
        if spec["kind"] == "delay" and rng.random() < 0.7:
            continue  # timeouts are slow; fewer of them
        times = 6 if rng.random() < 0.08 else 1  # past the retry budget: the try fails
        admin.fault(path="/jobs", after=rng.randint(0, 3), times=times, **spec)
        added += 1
    return added


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("late", [False, True], ids=["in-order", "late-commits"])
@pytest.mark.parametrize("mode", ["deferred", "poke"])
def test_oracle_soak(mode: str, late: bool, seed: int, admin: SandboxAdmin, connection: str) -> None:
    rng = random.Random(f"{mode}-{late}-{seed}")
    admin.reset(seed=seed, tie_order="random")
    if late:
        admin.late(**LATE, seed=seed)
    customers = sorted({j["customer"]["id"] for j in admin.all_jobs()})
    watched = customers[: len(customers) * 2 // 3]
    tallies = {"scheduled": Tally(), "completed": Tally()}
    drivers = [Driver(k, mode, connection, rng, tallies[k], watched) for k in ("scheduled", "completed")]
    for d in drivers:
        assert d.run(chaos=False) == []  # go-live
    before = snapshot(admin.all_jobs())
    changes = faults = requests = 0
    start = datetime.fromisoformat(admin.clock().replace("Z", "+00:00"))
    slots = [iso(start.replace(minute=0, second=0) + timedelta(days=3, hours=h)) for h in range(12)]

    def change(job_ids: list[str], mid_scan: bool) -> str | None:
        """Make one change; returns the job it touched ("" for a new booking), None if nothing changed."""
        op = rng.choice(OPS)
        if op == "book":
            body = {"customer_id": rng.choice(customers)}
            if rng.random() < 0.8:
                body["scheduled_start"] = rng.choice(slots)
            if mid_scan:
                admin.fault("mutate", path="/jobs", after=rng.randint(0, 4), op="book", **body)
            else:
                admin.book_job(**body)
            return ""
        if not job_ids:
            return None
        job_id = rng.choice(job_ids)
        body: dict[str, Any] = {}
        if op == "reschedule":
            body = {"scheduled_start": rng.choice(slots[:4])}  # few slots: A -> B -> A happens
        elif op == "edit":
            body = {"notes": f"note {rng.random():.6f}"}
        if mid_scan:
            admin.fault("mutate", path="/jobs", after=rng.randint(0, 4), op=op, job_id=job_id, **body)
            return job_id
        try:
            getattr(admin, op)(job_id, **body) if op != "delete" else admin.delete(job_id)
        except Exception:  # e.g. 409: cannot reschedule a completed job — not a change
            return None
        return job_id

    while changes < CHANGES:
        jobs = admin.all_jobs()
        open_ids = [j["id"] for j in jobs if not j["work_status"].startswith(("complete", "user", "pro"))]
        all_ids = [j["id"] for j in jobs]
        touched: set[str] = set()
        for _ in range(rng.randint(1, 10)):
            pool = open_ids if rng.random() < 0.85 else all_ids
            if late:
                pool = [j for j in pool if j not in touched]
                admin.clock(advance_seconds=rng.randint(0, 20))  # later changes bury a late one under newer stamps
            done = change(pool, mid_scan=False)
            if done is not None:
                changes += 1
                touched.add(done)
        untouched = [j for j in open_ids if j not in touched]
        # Mid-scan: changes while the chaotic run pages — each on its own job, none changed before this step.
        for _ in range(rng.randint(0, 3)):
            if untouched and rng.random() < 0.5:
                job_id = untouched.pop(rng.randrange(len(untouched)))
                op = rng.choice(["reschedule", "edit", "complete", "cancel", "delete", "touch"])
                body = {"scheduled_start": rng.choice(slots)} if op == "reschedule" else {}
                admin.fault("mutate", path="/jobs", after=rng.randint(0, 4), op=op, job_id=job_id, **body)
            else:
                change([], mid_scan=True)  # a booking while pages are read
            changes += 1
        faults += _faults(admin, rng)
        admin.clear_requests()
        delivered: dict[str, list[dict[str, Any]]] = {d.kind: [] for d in drivers}
        for d in drivers:
            delivered[d.kind] += d.run(chaos=True) or []
        requests += len(admin.requests(path="/jobs"))
        # Changes the chaotic run did not reach happen now, still before the step's checkpoint.
        left = admin.faults()
        faults -= sum(1 for f in left if f["kind"] != "mutate")
        admin.clear_faults()
        for f in left:
            if f["kind"] == "mutate" and f["fired"] == 0:
                body = {k: v for k, v in f.items() if k not in RULE_KEYS}
                with contextlib.suppress(Exception):  # e.g. the job was deleted meanwhile
                    admin.book_job(**body) if f["op"] == "book" else admin._op(f["job_id"], f["op"], body)
        if late:  # part of the late writes become visible, a clean run, then the rest
            admin.clock(advance_seconds=rng.uniform(0, LATE["max_seconds"]))
            for d in drivers:
                got = d.run(chaos=False)
                assert got is not None
                delivered[d.kind] += got
            visible_by = admin.state()["late"]["visible_by"]
            if visible_by:
                admin.clock(set=visible_by)
            assert admin.state()["late"]["pending"] == 0  # the checkpoint sees every write
        for d in drivers:
            for _ in range(40):
                got = d.run(chaos=False)
                assert got is not None
                delivered[d.kind] += got
                if not got:
                    break
            else:
                raise AssertionError("clean runs kept finding events")
        after = snapshot(admin.all_jobs())
        for d in drivers:
            problems = d.tally.compare(d.kind, expected_events(d.kind, before, after, d.matches), delivered[d.kind])
            assert not problems, problems
            assert not d.vanished, f"changes of failed tries came back with other ids: {d.vanished}"
        before = after
        admin.clock(advance_seconds=rng.randint(30, 200))
    late_writes = admin.state()["late"]["late_writes"]
    for name, t in tallies.items():
        t.changes, t.faults = changes, faults
        print(
            f"\nsoak {mode} late={late} seed={seed} {name}: {t.line()} late_writes={late_writes} requests={requests} "
            f"faults/requests={faults / requests:.0%}"
        )
        assert t.lost == t.duplicated == t.mislabelled == t.unexpected == 0
    # The chaos really happened (one seed of 1,000 changes saw 24-36 %; a run of 200 varies more: 16-35 % seen).
    assert faults / requests >= 0.1
    assert sum(t.delivered for t in tallies.values()) > CHANGES // 5
    if late:
        assert late_writes >= CHANGES // 50  # the late path was exercised
