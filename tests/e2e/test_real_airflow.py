"""End to end under a real Airflow: the completion DAG runs on a scheduler + DAG processor + triggerer + API server.

The four components run as subprocesses on loopback (LocalExecutor, SQLite, a private AIRFLOW_HOME; see
``airflow_stack.py``); the sandbox runs in this process. The DAG run is triggered through the REST API, the job
is completed in the sandbox while the sensor waits in the triggerer, and the test asserts that:

- the sensor task went through ``deferred``: its state is observed over the REST API, and the job is completed
  only then, inside one of the trigger's polls (a ``mutate`` fault on the next ``/jobs`` request: no worker is
  running the sensor at that point, so only the trigger can see the completion); its log shows the deferral, the
  trigger's poll and the resumption;
- the run succeeded, with the completed job as the sensor's event and every downstream task done;
- the API key never appears in clear: not in any task log (worker and triggerer parts), component output, log
  file or the metadata DB; and a probe task that prints the key and the connection URI gets ``***`` in its log,
  so wherever the key would show up in a task log, Airflow masks it.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_housecallpro.sandbox import SandboxAdmin, SandboxServer
from tests.conftest import API_KEY, CONN_ID, TEST_DAGS, conn_json
from tests.e2e.airflow_stack import AirflowStack

pytestmark = pytest.mark.e2e


Json = dict[str, Any]


@dataclass(frozen=True)
class CompletionDag:
    """A DAG whose ``sensor_task`` is a deferrable JobCompletedSensor, and what its run must have produced."""

    dag_id: str
    folder: Path  # its DAG bundle
    sensor_task: str
    conf: Callable[[Json], Json]  # customer -> the run's conf
    # DAG-specific outcome checks, given the stack, the run id, the completed job and its customer
    outcome: Callable[[AirflowStack, str, Json, Json], None]
    # extra environment for the components (e.g. connections of message sinks), given the sandbox
    env: Callable[[SandboxServer], dict[str, str]] = field(default=lambda sandbox: {})


def _thanked(airflow: AirflowStack, run_id: str, job: Json, customer: Json) -> None:
    thanks = airflow.xcom("hcp_test_job_completed", run_id, "thank", map_index=0)
    assert thanks == f"Thanks {customer['first_name']} {customer['last_name']} for job {job['id']}"


DAG_UNDER_TEST = CompletionDag(
    dag_id="hcp_test_job_completed",
    folder=TEST_DAGS,
    sensor_task="job_completed",
    conf=lambda customer: {"customer_ids": [customer["id"]]},
    outcome=_thanked,
)

PROBE_DAG_ID = "hcp_e2e_mask_probe"
PROBE_DAG = f'''
"""Masking probe: prints the Housecall Pro API key the ways a careless DAG author might."""

import logging

import pendulum
from airflow.sdk import DAG, task

with DAG("{PROBE_DAG_ID}", schedule=None, start_date=pendulum.datetime(2026, 1, 1), catchup=False):

    @task
    def print_the_key() -> str:
        from airflow_provider_housecallpro.hooks.housecallpro import HousecallProHook

        hook = HousecallProHook("{CONN_ID}")
        company = hook.get_company()  # the key is real: the sandbox accepts it
        conn = hook.get_connection("{CONN_ID}")
        print(f"probe print: api key = {{conn.password}}")
        logging.getLogger("hcp.probe").info("probe log: connection uri = %s", conn.get_uri())
        return company.name

    print_the_key()
'''


@pytest.fixture
def airflow(sandbox: SandboxServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[AirflowStack]:
    root = tmp_path_factory.mktemp("e2e")
    probe_dags = root / "probe_dags"
    probe_dags.mkdir()
    (probe_dags / f"{PROBE_DAG_ID}.py").write_text(PROBE_DAG)
    env = {f"AIRFLOW_CONN_{CONN_ID.upper()}": conn_json(sandbox.url, timeout=10), **DAG_UNDER_TEST.env(sandbox)}
    bundles = {"hcp_e2e_under_test": DAG_UNDER_TEST.folder, "hcp_e2e_probe": probe_dags}
    with AirflowStack(root / "airflow-home", bundles, env=env, startup_timeout=180) as stack:
        yield stack


def slot(days: int) -> dict[str, str]:
    start = time.gmtime(time.time() + days * 86400)
    day = time.strftime("%Y-%m-%d", start)
    return {"scheduled_start": f"{day}T15:00:00Z", "scheduled_end": f"{day}T17:00:00Z"}


def test_completion_dag_defers_succeeds_and_shows_the_key_only_masked(
    airflow: AirflowStack, admin: SandboxAdmin
) -> None:
    dag = DAG_UNDER_TEST
    customer = admin.create_customer(
        first_name="Erin", last_name="Endtoend", email="erin.endtoend@example.com", mobile_number="5125550199"
    )
    job = admin.book_job(customer_id=customer["id"], **slot(1))
    admin.start(job["id"])
    airflow.wait_for_dag(dag.dag_id, timeout=90)
    airflow.wait_for_dag(PROBE_DAG_ID, timeout=90)
    admin.clear_requests()

    run_id = f"e2e__{uuid.uuid4().hex[:12]}"
    airflow.trigger(dag.dag_id, run_id, dag.conf(customer))
    probe_run_id = f"e2e_probe__{uuid.uuid4().hex[:12]}"
    airflow.trigger(PROBE_DAG_ID, probe_run_id)

    # -- the sensor defers, and the job is completed while it waits in the triggerer ----------------
    seen: list[str | None] = []  # the sensor's successive states, as observed over the REST API

    def sensor_state() -> str | None:
        (ti,) = [t for t in airflow.task_instances(dag.dag_id, run_id) if t["task_id"] == dag.sensor_task]
        state: str | None = ti["state"]
        if not seen or seen[-1] != state:
            seen.append(state)
        return state

    airflow.wait_for("the sensor to defer", lambda: sensor_state() == "deferred", timeout=90)
    polls_at_deferral = len(admin.requests(path="/jobs"))
    assert polls_at_deferral >= 1  # the worker's own check found nothing, so it deferred
    # The job completes inside the next /jobs request. Until it does the sensor cannot leave `deferred`
    # (nothing else completes the job, and its timeout is 120 s), and a deferred sensor has no worker: that
    # request can only be one of the trigger's polls.
    admin.fault("mutate", path="/jobs", after=0, op="complete", job_id=job["id"], paid=True)

    def finished() -> dict[str, Any] | None:
        sensor_state()
        run = airflow.dag_run(dag.dag_id, run_id)
        return run if run["state"] in ("success", "failed") else None

    run = airflow.wait_for(f"run {run_id} to finish", finished, 120)
    tis = airflow.task_instances(dag.dag_id, run_id)
    assert run["state"] == "success", f"run ended {run['state']}; tasks: {json.dumps(tis, indent=1)}\n" + (
        airflow.diagnostics()
    )
    assert all(t["state"] == "success" for t in tis), json.dumps(tis, indent=1)
    assert "deferred" in seen and seen[-1] == "success", seen
    assert admin.faults() == []  # the completion fault fired ...
    assert len(admin.requests(path="/jobs")) > polls_at_deferral  # ... on a request made after the deferral
    assert {r["auth"] for r in admin.requests()} == {"ok"}  # worker and triggerer both sent the key

    events = airflow.xcom(dag.dag_id, run_id, dag.sensor_task)
    assert [e["job"]["id"] for e in events] == [job["id"]]
    assert events[0]["is_paid"] is True and events[0]["customer_email"] == customer["email"]
    dag.outcome(airflow, run_id, job, customer)

    sensor_log = airflow.task_log(dag.dag_id, run_id, dag.sensor_task)
    assert "Pausing task as DEFERRED" in sensor_log, sensor_log  # the worker deferred ...
    assert "job.completed event(s) after" in sensor_log, sensor_log  # ... the trigger found the completion ...
    assert f"1 job.completed event(s): {job['id']}" in sensor_log, sensor_log  # ... and the sensor resumed

    # -- the key: only ever shown as *** ---------------------------------------------------------
    probe = airflow.wait_for_run(PROBE_DAG_ID, probe_run_id, timeout=60)
    assert probe["state"] == "success", airflow.diagnostics()
    probe_log = airflow.task_log(PROBE_DAG_ID, probe_run_id, "print_the_key")
    assert "probe print: api key = ***" in probe_log, probe_log
    assert ":***@127.0.0.1" in probe_log, probe_log

    logs = {
        (d, t["task_id"], t["map_index"], attempt): airflow.task_log(d, r, t["task_id"], attempt, t["map_index"])
        for d, r in ((dag.dag_id, run_id), (PROBE_DAG_ID, probe_run_id))
        for t in airflow.task_instances(d, r)
        for attempt in range(1, t["try_number"] + 1)
    }
    assert len(logs) >= 3
    assert [k for k, text in logs.items() if API_KEY in text] == []
    airflow.stop()  # let the components flush their output, then search every file they wrote
    clear = airflow.lines_containing(API_KEY)
    # The LocalExecutor of Airflow 3.3 also echoes task log lines to the scheduler's stdout, unmasked: the
    # probe's deliberate prints show there in clear. Nothing else may contain the key.
    echoed = clear.pop("component-output/scheduler.log", [])
    assert clear == {}, clear
    assert all("probe " in line for line in echoed), echoed
    assert airflow.stragglers() == []
