"""End to end under a real Airflow: the completion DAG on a scheduler + DAG processor + triggerer + API server.

The four components run as subprocesses on loopback (LocalExecutor, SQLite, a private AIRFLOW_HOME; see
``airflow_stack.py``); the sandbox, with its SMS and SMTP sinks, runs in this process. The example DAG
``hcp_job_completed_followup`` is unpaused over the REST API (it schedules itself: ``@continuous``), the job is
completed in the sandbox while the sensor waits in the triggerer, and the test asserts that:

- the sensor task went through ``deferred``. The sandbox holds the trigger's first ``/jobs`` poll open for a
  few seconds (a ``delay`` fault: the worker's own check is request 1, and anything after it comes from the
  trigger), so while it is held the test sees the task ``deferred`` over the REST API and only then completes
  the job, which the held poll's answer carries. The task log shows the deferral, the trigger's poll and the
  resumption. (Were the test too slow for the hold, the trigger's next poll finds the completion instead:
  slower, never wrong.)
- the run succeeded, with the completed job as the sensor's event, every task done (the unpaid branch
  skipped), the thank-you text and the receipt email in the sinks and the CRM contact moved on;
- the API key never appears in clear: not in any task log (worker and triggerer parts), nor, searched after the
  last scenario on this stack (``test_nothing_leaked.py``), in any log file, component output or the metadata
  DB; and a probe task that prints the key and the connection URI gets ``***`` in its
  task log, so wherever the key would show up in a task log, Airflow masks it.
"""

from __future__ import annotations

import json
import sqlite3
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hcp_messaging.sinks import SinkAdmin

from tests.conftest import API_KEY, CONN_ID
from tests.e2e.airflow_stack import AirflowStack
from tests.e2e.conftest import SharedAirflow

pytestmark = pytest.mark.e2e

Json = dict[str, Any]
HOLD_SECONDS = 5.0  # how long the sandbox holds the trigger's first poll open


@dataclass(frozen=True)
class Finished:
    """What a DAG-specific outcome check gets: the stack, the finished run and what the test arranged."""

    airflow: AirflowStack
    admin: SinkAdmin
    run_id: str
    job: Json
    customer: Json
    crm: Path  # the example DAGs' CRM database


@dataclass(frozen=True)
class CompletionDag:
    """A DAG whose ``sensor_task`` is a deferrable JobCompletedSensor, and what its run must produce."""

    dag_id: str
    sensor_task: str
    outcome: Callable[[Finished], None]  # DAG-specific checks of the finished run


def _followed_up(done: Finished) -> None:
    """A paid completion: a thank-you text with the review link, an emailed receipt, the CRM contact moved on."""
    job, customer = done.job, done.customer
    (text,) = done.admin.sms()
    assert text["to"].endswith(customer["mobile_number"]) and "review" in text["body"], text
    (receipt,) = done.admin.emails()
    assert receipt["to"] == [customer["email"]] and f"#{job['invoice_number']}" in receipt["subject"], receipt
    assert "paid in full" in receipt["subject"], receipt
    with sqlite3.connect(done.crm) as db:
        rows = db.execute("SELECT email, hcp_job_id, lifecycle_stage FROM crm_contacts").fetchall()
    assert rows == [(customer["email"], job["id"], "Customer \u2014 Completed Job")]


# The README's completion example: @continuous, texts and emails through the sandbox's sinks, a SQLite CRM.
EXAMPLE_DAG = CompletionDag(dag_id="hcp_job_completed_followup", sensor_task="job_completed", outcome=_followed_up)

DAG_UNDER_TEST = EXAMPLE_DAG

# tests/e2e/dags/hcp_e2e_mask_probe.py: prints the API key the ways a careless DAG author might.
PROBE_DAG_ID = "hcp_e2e_mask_probe"


def slot(days: int) -> dict[str, str]:
    day = time.strftime("%Y-%m-%d", time.gmtime(time.time() + days * 86400))
    return {"scheduled_start": f"{day}T15:00:00Z", "scheduled_end": f"{day}T17:00:00Z"}


def start_run(airflow: AirflowStack, dag: CompletionDag) -> str:
    """Unpause the DAG and wait for the scheduler to start its run (the DAG schedules itself: @continuous)."""
    airflow.unpause(dag.dag_id)
    runs = airflow.wait_for(f"the scheduler to start {dag.dag_id}", lambda: airflow.dag_runs(dag.dag_id), 60)
    assert len(runs) == 1, runs
    run_id: str = runs[0]["dag_run_id"]
    return run_id


def test_completion_dag_defers_succeeds_and_shows_the_key_only_masked(
    airflow: AirflowStack, admin: SinkAdmin, e2e: SharedAirflow
) -> None:
    dag = DAG_UNDER_TEST
    customer = admin.create_customer(
        first_name="Erin",
        last_name="Endtoend",
        email="erin.endtoend@example.com",
        mobile_number="5125550199",
        notifications_enabled=True,
    )
    job = admin.book_job(customer_id=customer["id"], **slot(1))
    admin.start(job["id"])
    airflow.wait_for_dag(dag.dag_id, timeout=90)
    airflow.wait_for_dag(PROBE_DAG_ID, timeout=90)
    admin.clear_requests()
    # /jobs request 1 is the worker's check; request 2, the trigger's first poll, is held open.
    admin.fault("delay", path="/jobs", after=1, seconds=HOLD_SECONDS)

    run_id = start_run(airflow, dag)
    airflow.unpause(PROBE_DAG_ID)
    probe_run_id = f"e2e_probe__{uuid.uuid4().hex[:12]}"
    airflow.trigger(PROBE_DAG_ID, probe_run_id)

    # -- the sensor defers, and the job is completed while the trigger's poll is in flight ------------
    seen: list[str | None] = []  # the sensor's successive states, as observed over the REST API

    def sensor_state() -> str | None:
        (ti,) = [t for t in airflow.task_instances(dag.dag_id, run_id) if t["task_id"] == dag.sensor_task]
        state: str | None = ti["state"]
        if not seen or seen[-1] != state:
            seen.append(state)
        return state

    def deferred_and_polled() -> bool:
        return sensor_state() == "deferred" and len(admin.requests(path="/jobs")) >= 2

    airflow.wait_for("the sensor to defer and its trigger to poll", deferred_and_polled, timeout=90)
    admin.complete(job["id"], paid=True)

    def finished() -> Json | None:
        sensor_state()
        run: Json = airflow.dag_run(dag.dag_id, run_id)
        return run if run["state"] in ("success", "failed") else None

    run = airflow.wait_for(f"run {run_id} to finish", finished, timeout=150)
    tis = airflow.task_instances(dag.dag_id, run_id)
    assert run["state"] == "success", f"run ended {run['state']}: {json.dumps(tis, indent=1)}\n{airflow.diagnostics()}"
    assert all(t["state"] in ("success", "skipped") for t in tis), json.dumps(tis, indent=1)
    assert "deferred" in seen and seen[-1] == "success", seen
    assert admin.faults() == []  # the hold was applied (to the trigger's first poll)
    assert {r["auth"] for r in admin.requests()} == {"ok"}  # worker and triggerer both sent the key

    events = airflow.xcom(dag.dag_id, run_id, dag.sensor_task)
    assert [e["job"]["id"] for e in events] == [job["id"]]
    assert events[0]["is_paid"] is True and events[0]["customer_email"] == customer["email"]
    dag.outcome(Finished(airflow, admin, run_id, job, customer, e2e.crm))

    sensor_log = airflow.task_log(dag.dag_id, run_id, dag.sensor_task)
    assert "Pausing task as DEFERRED" in sensor_log, sensor_log  # the worker deferred ...
    assert "job.completed event(s) after" in sensor_log, sensor_log  # ... the trigger found the completion ...
    assert f"1 job.completed event(s): {job['id']}" in sensor_log, sensor_log  # ... and the sensor resumed

    # -- the UI's Test button: POST /api/v2/connections/test, as the UI sends it ---------------------
    check_the_test_button(airflow, admin)

    # -- the key: only ever shown as *** ---------------------------------------------------------
    probe = airflow.wait_for_run(PROBE_DAG_ID, probe_run_id, timeout=60)
    assert probe["state"] == "success", airflow.diagnostics()
    probe_log = airflow.task_log(PROBE_DAG_ID, probe_run_id, "print_the_key")
    assert "probe print: api key = ***" in probe_log, probe_log
    assert ":***@127.0.0.1" in probe_log, probe_log

    task_logs = {
        (d, t["task_id"], t["map_index"], attempt): airflow.task_log(d, r, t["task_id"], attempt, t["map_index"])
        for d, r in ((dag.dag_id, run_id), (PROBE_DAG_ID, probe_run_id))
        for t in airflow.task_instances(d, r)
        for attempt in range(1, t["try_number"] + 1)
    }
    assert len(task_logs) >= 3
    assert [key for key, text in task_logs.items() if API_KEY in text] == []
    # Every file the components wrote is searched for the key once they have stopped and flushed their output,
    # after the last scenario: test_nothing_leaked.py.


def check_the_test_button(airflow: AirflowStack, admin: SinkAdmin) -> None:
    """The UI's Test: a new connection tests fine, with one request. For a stored one the UI posts the masked
    password (``***``); Airflow 3.3's API then reuses the stored key, unless the host or port differs — and the
    3.3.2 UI sends ``port: 0`` for a connection stored without a port, which the API refuses ("differs from the
    stored connection", apache/airflow#73298). Pinned here, so the day that changes this test says so and README's
    note can go; a connection stored with its port (the form shows it for this reason) tests fine. (Airflow 3.0
    has no stored-credential reuse: its UI sends the key itself.)"""
    import airflow as airflow_package
    from packaging.version import Version

    url = json.loads(airflow.env[f"AIRFLOW_CONN_{CONN_ID.upper()}"])["host"]
    form = {"conn_type": "housecallpro", "host": url, "password": API_KEY}
    admin.clear_requests()
    new = airflow.api("POST", "/api/v2/connections/test", json={"connection_id": "hcp_ui_new", **form})
    assert new.status_code == 200 and new.json()["status"] is True, new.text
    assert new.json()["message"].startswith("Connected to Housecall Pro company"), new.text
    assert len(admin.requests(path="/company")) == 1
    body = {"connection_id": "hcp_ui_x", **form, "password": "no"}
    wrong = airflow.api("POST", "/api/v2/connections/test", json=body)
    assert wrong.json()["status"] is False and "Check the API key in this connection" in wrong.json()["message"]
    assert "hcp_ui_x" not in wrong.json()["message"]
    if Version(airflow_package.__version__) >= Version("3.3"):
        airflow.api_json("POST", "/api/v2/connections", json={"connection_id": "hcp_ui_stored", **form})
        stored = {"connection_id": "hcp_ui_stored", **form, "password": "***"}
        as_stored = airflow.api("POST", "/api/v2/connections/test", json=stored)
        assert as_stored.status_code == 200 and as_stored.json()["status"] is True, as_stored.text
        as_the_ui_sends = airflow.api("POST", "/api/v2/connections/test", json={**stored, "port": 0})
        if Version(airflow_package.__version__) < Version("3.4"):
            assert as_the_ui_sends.status_code == 400, as_the_ui_sends.text
            assert "differs from the stored connection" in as_the_ui_sends.text
        # What the form stores now that it shows the port: the UI posts the stored port, and the test works.
        host, port = url.rsplit(":", 1)
        with_port = {"connection_id": "hcp_ui_port", **form, "host": host, "port": int(port)}
        airflow.api_json("POST", "/api/v2/connections", json=with_port)
        as_the_ui_sends = airflow.api("POST", "/api/v2/connections/test", json={**with_port, "password": "***"})
        assert as_the_ui_sends.status_code == 200 and as_the_ui_sends.json()["status"] is True, as_the_ui_sends.text


BOOKING_DAG = "hcp_booking_confirmation_crm_sync"
RESCHEDULE_DAG = "hcp_reschedule_notices"
WEB_FORM_DAG = "hcp_web_form_lead_to_customer"


def decrypted_trigger_kwargs(airflow: AirflowStack) -> list[str]:
    """The kwargs of every trigger row, decrypted with the stack's Fernet key (Airflow stores them encrypted)."""
    from cryptography.fernet import Fernet

    fernet = Fernet(airflow.env["AIRFLOW__CORE__FERNET_KEY"].encode())
    with sqlite3.connect(f"file:{airflow.home / 'airflow.db'}?mode=ro", uri=True, timeout=60) as db:
        rows = [r[0] for r in db.execute("SELECT kwargs FROM trigger")]
    # Airflow stores them Fernet-encrypted (plain JSON only from some migration paths)
    return [raw if raw.startswith("{") else fernet.decrypt(raw.encode()).decode() for raw in rows]


def sandbox_secret(airflow: AirflowStack, conn: str, field: str) -> str:
    value: str = json.loads(airflow.env[f"AIRFLOW_CONN_{conn}"])[field]
    return value


def test_continuous_dags_handle_each_change_once_over_consecutive_runs(airflow: AirflowStack, admin: SinkAdmin) -> None:
    """The @continuous example DAGs run after run: bookings, a reschedule and a completion made between runs,
    each handled by exactly one run (the sensors carry their state from run to run)."""
    people = [
        admin.create_customer(
            first_name=name,
            last_name="Manyruns",
            email=f"{name.lower()}.manyruns@example.com",
            mobile_number=f"51255501{i:02d}",
            notifications_enabled=True,
        )
        for i, name in enumerate(["Ava", "Ben", "Cal"])
    ]
    for dag_id in (BOOKING_DAG, EXAMPLE_DAG.dag_id, RESCHEDULE_DAG, WEB_FORM_DAG):
        airflow.wait_for_dag(dag_id, timeout=90)
        airflow.unpause(dag_id)
    trigger_rows: list[str] = []  # every deferred trigger's kwargs, decrypted, as the triggerer stored them

    def waiting_run(dag_id: str, done: int) -> str | None:
        """The run after ``done`` finished ones, once its sensor waits in the triggerer."""
        runs = sorted(airflow.dag_runs(dag_id), key=lambda r: r["run_after"])
        finished = [r for r in runs if r["state"] in ("success", "failed")]
        assert all(r["state"] == "success" for r in finished), airflow.diagnostics()
        if len(finished) != done or len(runs) != done + 1:
            return None
        run_id: str = runs[-1]["dag_run_id"]
        sensor = [t for t in airflow.task_instances(dag_id, run_id) if t["task_id"].startswith("job_")]
        if not (sensor and sensor[0]["state"] == "deferred"):
            return None
        trigger_rows.extend(decrypted_trigger_kwargs(airflow))
        return run_id

    def handled(dag_id: str, run_id: str, sensor: str) -> list[Json]:
        airflow.wait_for(f"{dag_id} {run_id}", lambda: airflow.dag_run(dag_id, run_id)["state"] != "running", 300)
        run = airflow.dag_run(dag_id, run_id)
        assert run["state"] == "success", airflow.diagnostics()
        events: list[Json] = airflow.xcom(dag_id, run_id, sensor)
        return events

    runs: list[list[Json]] = []
    jobs: list[Json] = []
    changes = [
        lambda: jobs.append(admin.book_job(customer_id=people[0]["id"], **slot(2))),
        lambda: jobs.append(admin.book_job(customer_id=people[1]["id"], **slot(3))),
        lambda: admin.reschedule(jobs[0]["id"], **slot(4)),
        lambda: jobs.append(admin.book_job(customer_id=people[2]["id"], **slot(5))),
    ]

    def reschedule_dag_knows(job_id: str) -> bool:
        """The reschedule DAG has handled the booking of ``job_id`` and its next run waits. (On Airflow 3.0 the
        scheduler can fail a try whose trigger fires within seconds of its deferral; the retry comes a minute
        later. Had the job moved before that retry, the retry would rightly see one booking, not a booking and a
        reschedule: so the test moves it only after the booking was handled.)"""
        runs = sorted(airflow.dag_runs(RESCHEDULE_DAG), key=lambda r: r["run_after"])
        seen = [
            e["job"]["id"]
            for r in runs
            if r["state"] == "success"
            for e in airflow.xcom(RESCHEDULE_DAG, r["dag_run_id"], "job_scheduled")
        ]
        newest = airflow.task_instances(RESCHEDULE_DAG, runs[-1]["dag_run_id"]) if runs else []
        return job_id in seen and any(t["task_id"] == "job_scheduled" and t["state"] == "deferred" for t in newest)

    airflow.wait_for("the reschedule DAG to wait", lambda: waiting_run(RESCHEDULE_DAG, 0), 300, dump=RESCHEDULE_DAG)
    for done, change in enumerate(changes):
        run_id = airflow.wait_for(f"run {done + 1} to wait", lambda d=done: waiting_run(BOOKING_DAG, d), 300)
        if done == 2:
            what = "the reschedule DAG to handle the first booking"
            airflow.wait_for(what, lambda: reschedule_dag_knows(jobs[0]["id"]), 300, dump=RESCHEDULE_DAG)
        change()
        runs.append(handled(BOOKING_DAG, run_id, "job_scheduled"))
    # A completion, made while the completion DAG's first run waits: handled once, by that run.
    first = airflow.wait_for("the completion run to wait", lambda: waiting_run(EXAMPLE_DAG.dag_id, 0), 300)
    admin.start(jobs[1]["id"])
    admin.complete(jobs[1]["id"], paid=True)
    completions = handled(EXAMPLE_DAG.dag_id, first, "job_completed")
    # The booking DAG's next run finds nothing new in the completion (it is no booking): it keeps waiting.
    fifth = airflow.wait_for("run 5 to wait", lambda: waiting_run(BOOKING_DAG, 4), 300)

    summary = [[(e["job"]["id"], e["event"]["is_reschedule"]) for e in run] for run in runs]
    a, b, c = (j["id"] for j in jobs)
    assert summary == [[(a, False)], [(b, False)], [(a, True)], [(c, False)]], summary
    ids = [e["event"]["id"] for run in runs for e in run]
    assert len(set(ids)) == 4
    assert [e["job"]["id"] for e in completions] == [b]
    # A web-form lead: the fourth example DAG, triggered the way a form handler would.
    lead_run = f"web_form__{uuid.uuid4().hex[:8]}"
    lead = {"first_name": "Dee", "last_name": "Lead", "mobile_number": "5125550177", "lead_source": "Website"}
    lead_run = airflow.trigger(WEB_FORM_DAG, lead_run, conf=lead)["dag_run_id"]
    assert airflow.wait_for_run(WEB_FORM_DAG, lead_run, timeout=300)["state"] == "success", airflow.diagnostics()
    moved = airflow.wait_for(
        "the reschedule notice", lambda: [m for m in admin.sms() if "moved" in m["body"]], 300, dump=RESCHEDULE_DAG
    )
    # One confirmation per booking, one "moved" notice for the reschedule, one thank-you for the completion.
    texts = sorted(m["to"][-10:] for m in admin.sms())
    mobiles = [p["mobile_number"] for p in people]
    assert texts == sorted([*mobiles, mobiles[0], mobiles[1]]), admin.sms()
    assert len(moved) == 1 and moved[0]["to"].endswith(mobiles[0]), moved
    assert airflow.dag_run(BOOKING_DAG, fifth)["state"] == "running"

    # -- secrets, searched over everything the run produced -----------------------------------------
    secrets = {"API key": API_KEY, "SMS auth token": sandbox_secret(airflow, "SMS_DEFAULT", "password")}
    assert trigger_rows and all("housecallpro_conn_id" in row for row in trigger_rows)  # really decrypted
    for what, secret in secrets.items():
        assert secret and all(secret not in row for row in trigger_rows), what
    for dag_id in (BOOKING_DAG, EXAMPLE_DAG.dag_id, RESCHEDULE_DAG, WEB_FORM_DAG):
        for run in airflow.dag_runs(dag_id):
            for ti in airflow.task_instances(dag_id, run["dag_run_id"]):
                if ti["state"] not in ("success", "failed"):
                    continue  # not finished, or waiting to retry: read from disk below
                # The finished try as the UI shows it. (Earlier tries are read from disk below: Airflow 3.0
                # answers 404 for a try its scheduler failed while the trigger was resuming it.)
                log = airflow.task_log(dag_id, run["dag_run_id"], ti["task_id"], ti["try_number"], ti["map_index"])
                assert all(s not in log for s in secrets.values()), (dag_id, ti["task_id"])
    # ... and every file the components wrote, after the last scenario: test_nothing_leaked.py.
