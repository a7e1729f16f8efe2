"""A real DAG run (dag.test) whose sensor defers to the trigger and resumes when the job completes."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

from airflow_provider_housecallpro.hooks.housecallpro import HousecallProHook
from airflow_provider_housecallpro.sandbox import SandboxAdmin, SandboxServer
from airflow_provider_housecallpro.sensors.jobs import STATE_XCOM_KEY
from tests.conftest import API_KEY, TEST_DAGS, conn_json, run_dag, xcom
from tests.integration.test_job_sensors import a_customer, slot


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
    assert xcom(run1, "job_completed", key=STATE_XCOM_KEY)["jobs"][job["id"]]

    # Run 2 starts from run 1's state: the same completion is not delivered again; a new one is.
    second = admin.book_job(customer_id=customer, **slot(1))
    admin.clear_faults()
    admin.fault("mutate", path="/jobs", after=1, op="complete", job_id=second["id"])
    run2 = run_dag(dag, run_conf={"customer_ids": [customer]})
    assert run2.state == "success"
    assert [e["job"]["id"] for e in xcom(run2, "job_completed")] == [second["id"]]
    assert API_KEY not in json.dumps(xcom(run2, "job_completed"))


def test_find_records_prints_exactly_what_the_sensor_returns(
    sandbox: SandboxServer, hook: HousecallProHook, admin: SandboxAdmin, connection: str
) -> None:
    from tests.integration.sensor_harness import SensorHarness

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

    def canonical(events: list[dict]) -> str:  # detected_at is the only field that depends on when it ran
        return json.dumps([{**e, "event": {**e["event"], "detected_at": None}} for e in events], sort_keys=True)

    assert canonical(printed) == canonical(sensed)
    assert API_KEY not in out.stdout + out.stderr
