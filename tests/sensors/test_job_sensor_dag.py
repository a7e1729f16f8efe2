"""A real DAG run (dag.test) whose sensor defers to the trigger and resumes when the job completes."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from airflow_provider_housecallpro.hooks.housecallpro import HousecallProHook
from airflow_provider_housecallpro.sandbox import SandboxAdmin, SandboxServer
from airflow_provider_housecallpro.sensors.jobs import STATE_XCOM_KEY
from tests.conftest import API_KEY, TEST_DAGS, conn_json, run_dag, xcom
from tests.support.jobs import a_customer, iso, slot


def load(name: str):  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location(name, TEST_DAGS / f"{name}.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_dag_defers_resumes_and_remembers_state_across_runs(
    airflow_db: None, hook: HousecallProHook, admin: SandboxAdmin, connection: str
) -> None:
    dag = load("job_sensor_dags").dag
    customer = a_customer(hook)
    job = admin.book_job(customer_id=customer, **slot(0))
    admin.start(job["id"])
    # The sensor's check on the worker is /jobs request #1; the job completes just before request #2,
    # which only the trigger makes, so the event can only arrive through deferral.
    admin.clear_requests()
    admin.fault("mutate", path="/jobs", after=1, op="complete", job_id=job["id"], paid=True)
    run1 = run_dag(dag, run_conf={"customer_ids": [customer]})
    assert run1.state == "success"
    assert (
        xcom(run1, "thank", map_index=0)
        == f"Thanks {job['customer']['first_name']} {job['customer']['last_name']} for job {job['id']}"
    )
    events = xcom(run1, "job_completed")
    assert [e["job"]["id"] for e in events] == [job["id"]] and events[0]["is_paid"] is True
    # Request 1 was the worker's check (nothing yet, so it deferred); request 2 could only come from the
    # trigger, and it is the one that saw the completion.
    assert len(admin.requests(path="/jobs")) == 2
    assert xcom(run1, "job_completed", key=STATE_XCOM_KEY)["count"] >= 1

    # Run 2 starts from run 1's state: the same completion is not delivered again; a new one is.
    second = admin.book_job(customer_id=customer, **slot(1))
    admin.clear_faults()
    admin.fault("mutate", path="/jobs", after=1, op="complete", job_id=second["id"])
    run2 = run_dag(dag, run_conf={"customer_ids": [customer]})
    assert run2.state == "success"
    assert [e["job"]["id"] for e in xcom(run2, "job_completed")] == [second["id"]]
    assert API_KEY not in json.dumps(xcom(run2, "job_completed"))


def _handled(run: Any) -> list[dict[str, Any]]:
    """What the mapped downstream task recorded for each event of a run."""
    out, index = [], 0
    while (value := xcom(run, "handle", map_index=index)) is not None:
        out.append(value)
        index += 1
    return out


def test_six_consecutive_runs_deliver_each_change_once_with_the_right_label(
    airflow_db: None, hook: HousecallProHook, admin: SandboxAdmin, connection: str
) -> None:
    """The sensor DAG pattern run after run: changes between runs and while a poll pages, each delivered
    once, in one run, with the right label; state is carried from run to run (the third run and later
    read exactly the previous run's state)."""
    dag = load("job_sensor_dags").scheduled_dag
    customer = a_customer(hook, 3)
    conf = {"customer_ids": [customer]}
    earlier = iso(datetime.now(UTC) - timedelta(minutes=5))  # booked before go-live: history
    j1 = admin.book_job(customer_id=customer, updated_at=earlier, **slot(2))
    j2 = admin.book_job(customer_id=customer, updated_at=earlier, **slot(3))
    start = {j1["id"]: j1["schedule"]["scheduled_start"], j2["id"]: j2["schedule"]["scheduled_start"]}
    got: list[list[dict[str, Any]]] = []

    def run(keep_faults: bool = False) -> None:
        result = run_dag(dag, run_conf=conf)
        assert result.state == "success"
        got.append(_handled(result))
        if not keep_faults:
            admin.clear_faults()

    # Run 1 (go-live): an edit of a job booked before go-live is no booking; a job booked while the
    # trigger pages is.
    admin.edit(j1["id"], notes="gate code 1234")
    admin.fault("mutate", path="/jobs", after=1, op="book", customer_id=customer, **slot(4))
    run()
    assert len(got[-1]) == 1, got[-1]
    (j3_booked,) = got[-1]
    j3 = j3_booked["job"]
    start[j3] = j3_booked["start"]
    # Run 2: a reschedule of a pre-go-live job, made between runs; an edit while the poll pages.
    moved = admin.reschedule(j1["id"], **slot(5))
    admin.fault("mutate", path="/jobs", after=1, op="edit", job_id=j2["id"], notes="call first")
    run()
    # Run 3: a cancel (nothing) and a new booking, between runs.
    admin.cancel(j2["id"])
    j4 = admin.book_job(customer_id=customer, **slot(6))
    run()
    # Run 4: A -> B for j3 between runs.
    b = slot(7)
    admin.reschedule(j3, **b)
    run()
    # Run 5: B -> A for j3 (a real reschedule, with its own event id).
    admin.reschedule(j3, scheduled_start=start[j3])
    run()
    # Run 6: j1 again, and j4 while the poll pages (delivered by this run or the next).
    admin.reschedule(j1["id"], **slot(8))
    admin.fault("mutate", path="/jobs", after=1, op="reschedule", job_id=j4["id"], **slot(9))
    run(keep_faults=True)
    if not any(e["job"] == j4["id"] for e in got[-1]):
        run()  # the poll that saw j1 ended before the change: the next run delivers it

    flat = [e for one_run in got for e in one_run]
    assert len({e["id"] for e in flat}) == len(flat), "an event id repeats"
    summary = [(e["job"], e["is_reschedule"], e["previous_start"]) for e in flat]
    assert summary[:5] == [
        (j3, False, None),
        (j1["id"], True, start[j1["id"]]),
        (j4["id"], False, None),
        (j3, True, start[j3]),
        (j3, True, b["scheduled_start"]),
    ]
    last = [(j1["id"], True, moved["schedule"]["scheduled_start"]), (j4["id"], True, j4["schedule"]["scheduled_start"])]
    assert sorted(summary[5:]) == sorted(last)
    assert [len(r) for r in got[:5]] == [1, 1, 1, 1, 1]


def test_find_records_prints_exactly_what_the_sensor_returns(
    sandbox: SandboxServer, hook: HousecallProHook, admin: SandboxAdmin, connection: str
) -> None:
    from tests.support.sensor_harness import SensorHarness

    customer = a_customer(hook, 2)
    job = admin.book_job(customer_id=customer, **slot(4))
    since = "2000-01-01T00:00:00Z"
    sensed = SensorHarness("scheduled", "poke", connection, since=since, filters={"customer_ids": [customer]}).detect()
    env = {**os.environ, "AIRFLOW_CONN_HCP_FIND": conn_json(sandbox.url)}
    cli = str(Path(sys.executable).parent / "housecallpro")
    out = subprocess.run(
        [
            cli,
            "find-records",
            "--conn-id",
            "hcp_find",
            "--event",
            "scheduled",
            "--limit",
            str(len(sensed)),
            "--filter",
            json.dumps({"customer_ids": [customer]}),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    printed = json.loads(out.stdout)
    assert job["id"] in [e["job"]["id"] for e in printed]

    def canonical(events: list[dict]) -> str:
        # detected_at depends on when it ran; the id on the sensor's go-live (find-records has none)
        return json.dumps(
            [{**e, "event": {**e["event"], "detected_at": None, "id": None}} for e in events], sort_keys=True
        )

    assert canonical(printed) == canonical(sensed)
    assert API_KEY not in out.stdout + out.stderr
