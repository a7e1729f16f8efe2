"""The example DAGs, run with dag.test() against the sandbox and its message sinks.

Each test makes something happen in the sandbox (a booking, a reschedule, completions, a web-form lead), runs
the DAG and asserts on outcomes only: the exact texts and emails the sinks received (recipient and text), the
rows of the CRM table (a SQLite file reached through the ``hcp_crm`` connection) and the customers in the
sandbox. Sensor DAGs start each test with no remembered state (earlier runs of the DAG are removed from the
metadata DB), so ``since`` can point the first run at the test's own changes; one test per sensor DAG also
goes through a real deferral (the change lands inside the trigger's poll, via a ``mutate`` fault).
"""

from __future__ import annotations

import importlib.util
import json
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from airflow_provider_housecallpro.sandbox import SandboxAdmin, SandboxServer
from tests.conftest import API_KEY, EXAMPLE_DAGS, run_dag, xcom

CHICAGO = ZoneInfo("America/Chicago")  # the sandbox company's time zone
COMPANY = "Lone Star Home Services"
OFFICE = "(512) 555-0100"
SENDER = "+15125550100"
DASH = "\u2013"
SENSOR_DAGS = ("hcp_booking_confirmation_crm_sync", "hcp_reschedule_notices", "hcp_job_completed_followup")


# -- fixtures ---------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def sandbox() -> Iterator[SandboxServer]:
    """This module's sandbox also runs the SMTP sink (overrides the session-wide one of conftest)."""
    with SandboxServer(api_key=API_KEY, seed=1, smtp_port=0) as server:
        yield server


@pytest.fixture
def crm_db(tmp_path: Path) -> Path:
    return tmp_path / "crm.db"


@pytest.fixture
def env(
    airflow_db: None,
    sandbox: SandboxServer,
    admin: SandboxAdmin,
    connection: str,
    crm_db: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> SandboxAdmin:
    """Connections to the sandbox, its sinks and a fresh CRM; sensor DAGs with no remembered state."""
    for name, value in sandbox.airflow_connections().items():
        if name != "AIRFLOW_CONN_HOUSECALLPRO_DEFAULT":  # `connection` set it already, with the suite's key
            monkeypatch.setenv(name, value)
    monkeypatch.setenv("AIRFLOW_CONN_HCP_CRM", json.dumps({"conn_type": "sqlite", "host": str(crm_db)}))
    for dag_id in SENSOR_DAGS:
        forget_runs(dag_id)
    return admin


def forget_runs(dag_id: str) -> None:
    """Remove a DAG's runs (and so its sensor's remembered state) from the metadata DB."""
    from airflow.models.dagrun import DagRun
    from airflow.models.taskinstance import TaskInstance
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        session.query(XComModel).filter(XComModel.dag_id == dag_id).delete(synchronize_session=False)
        session.query(TaskInstance).filter(TaskInstance.dag_id == dag_id).delete(synchronize_session=False)
        session.query(DagRun).filter(DagRun.dag_id == dag_id).delete(synchronize_session=False)


_MODULES: dict[str, ModuleType] = {}


def example(dag_id: str) -> Any:
    """The DAG of ``example_dags/<dag_id>.py``, loaded by path (dag.test() runs DAGs of a configured bundle)."""
    if dag_id not in _MODULES:
        spec = importlib.util.spec_from_file_location(f"hcp_example_{dag_id}", EXAMPLE_DAGS / f"{dag_id}.py")
        assert spec and spec.loader
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        for task in module.dag.tasks:  # fail within two minutes, not a day, if an expected event never comes
            if hasattr(task, "soft_fail"):
                task.timeout = 120
        _MODULES[dag_id] = module
    dag = _MODULES[dag_id].dag
    assert dag.dag_id == dag_id
    return dag


def states(dag_run: Any) -> dict[str, list[str]]:
    """Task id -> the states of its task instances (by map index)."""
    found: dict[str, list[str]] = {}
    for ti in sorted(dag_run.get_task_instances(), key=lambda t: (t.task_id, t.map_index)):
        found.setdefault(ti.task_id, []).append(str(ti.state))
    return found


def crm_rows(path: Path) -> dict[str, dict[str, Any]]:
    with sqlite3.connect(path) as db:
        db.row_factory = sqlite3.Row
        return {row["email"]: dict(row) for row in db.execute("SELECT * FROM crm_contacts ORDER BY email")}


def texts(admin: SandboxAdmin) -> list[tuple[str, str]]:
    """(recipient, body) of every text the SMS sink received, in order."""
    sent = admin.sms()
    assert all(m["from"] == SENDER for m in sent)
    return [(m["to"], m["body"]) for m in sent]


def emails(admin: SandboxAdmin) -> list[tuple[list[str], str, str]]:
    """(recipients, subject, text) of every email the SMTP sink received, in order."""
    return [(m["to"], m["subject"], m["text"]) for m in admin.emails()]


# -- the world --------------------------------------------------------------------------------------
def local_slot(days: int, hour: int, minute: int = 0, hours: int = 2) -> tuple[dict[str, str], str]:
    """A visit ``days`` from today at ``hour:minute`` company time; the booking fields and the window as
    the customer should read it (written out here independently of the DAGs' formatting)."""
    day = datetime.now(CHICAGO).date() + timedelta(days=days)
    start = datetime(day.year, day.month, day.day, hour, minute, tzinfo=CHICAGO)
    end = start + timedelta(hours=hours)

    def clock(t: datetime, meridiem: bool) -> str:
        text = f"{t.hour % 12 or 12}:{t.minute:02d}"
        return f"{text} {'AM' if t.hour < 12 else 'PM'}" if meridiem else text

    same_half = (start.hour < 12) == (end.hour < 12)
    window = f"{start:%a %b} {start.day}, {clock(start, not same_half)}{DASH}{clock(end, True)} {start:%Z}"
    fields = {
        "scheduled_start": start.astimezone(UTC).isoformat().replace("+00:00", "Z"),
        "scheduled_end": end.astimezone(UTC).isoformat().replace("+00:00", "Z"),
    }
    return fields, window


def new_customer(admin: SandboxAdmin, first: str, last: str, mobile: str | None, **kw: Any) -> dict[str, Any]:
    address = {"street": "7081 Oak Hollow Dr", "city": "Pflugerville", "state": "TX", "zip": "78660"}
    body = {
        "first_name": first,
        "last_name": last,
        "email": f"{first.lower()}.{last.lower()}@example.com",
        "mobile_number": mobile,
        "notifications_enabled": True,
        "addresses": [address],
        **kw,
    }
    return admin.create_customer(**body)


def just_before() -> str:
    """A ``since`` for a first run that should see what the test does next."""
    return (datetime.now(UTC) - timedelta(seconds=2)).isoformat(timespec="seconds")


# -- 1. booking confirmation + CRM sync ---------------------------------------------------------------
def test_booking_confirmation_texts_emails_and_syncs_the_crm(env: SandboxAdmin, crm_db: Path) -> None:
    admin = env
    ava = new_customer(admin, "Ava", "Smith", "5125551234")
    quiet = new_customer(admin, "Noah", "Quiet", "5125559876", notifications_enabled=False)
    since = just_before()
    when, window = local_slot(3, 9)
    job = admin.book_job(
        customer_id=ava["id"], job_type="HVAC — Tune-Up", description="Furnace safety inspection", **when
    )
    quiet_when, quiet_window = local_slot(4, 11, 30)
    quiet_job = admin.book_job(customer_id=quiet["id"], job_type="Plumbing Repair", **quiet_when)

    run = run_dag(example("hcp_booking_confirmation_crm_sync"), run_conf={"since": since})

    assert run.state == "success", states(run)
    n = job["invoice_number"]
    assert texts(admin) == [
        (
            "+15125551234",
            f"Hi Ava, your HVAC — Tune-Up with {COMPANY} is booked for {window}. Job #{n}. Questions? Call {OFFICE}.",
        )
    ]
    assert emails(admin) == [
        (
            ["ava.smith@example.com"],
            f"Booked: HVAC — Tune-Up on {window}",
            f"Hi Ava,\n\nThanks for booking with {COMPANY}. Here are your visit details:\n\n"
            f"What: HVAC — Tune-Up (Furnace safety inspection)\nWhen: {window}\n"
            f"Where: 7081 Oak Hollow Dr, Pflugerville, TX 78660\nJob: #{n}\n\n"
            f"Need to change something? Reply to this email or call {OFFICE}.\n\n{COMPANY}",
        )
    ]
    rows = crm_rows(crm_db)
    assert {k: v for k, v in rows["ava.smith@example.com"].items() if k != "updated_at"} == {
        "email": "ava.smith@example.com",
        "first_name": "Ava",
        "last_name": "Smith",
        "phone": "5125551234",
        "hcp_customer_id": ava["id"],
        "tags": "HVAC — Tune-Up",
        "hcp_job_id": job["id"],
        "scheduled_window": window,
        "lifecycle_stage": "Customer — Job Booked",
    }
    # Opted out of notifications: no messages, but the CRM still knows the booking.
    assert rows["noah.quiet@example.com"]["hcp_job_id"] == quiet_job["id"]
    assert rows["noah.quiet@example.com"]["scheduled_window"] == quiet_window
    assert rows["noah.quiet@example.com"]["tags"] == "Plumbing Repair"
    assert sorted(states(run)["text_customer"]) == ["skipped", "success"]


# -- 2. reschedule notices ----------------------------------------------------------------------------
def crew(hook: Any, *first_names: str) -> list[dict[str, Any]]:
    employees = {e.first_name: e for e in hook.list_employees()}
    return [employees[name].model_dump() for name in first_names]


def test_reschedule_notices_customer_and_crew_new_bookings_left_to_flow_1(
    env: SandboxAdmin, hook: Any, crm_db: Path
) -> None:
    admin = env
    ava = new_customer(admin, "Ava", "Smith", "5125551234")
    jake, emily = crew(hook, "Jake", "Emily")
    since = just_before()
    before, old = local_slot(2, 9)
    job = admin.book_job(
        customer_id=ava["id"], job_type="Gutter Cleaning", employee_ids=[jake["id"], emily["id"]], **before
    )
    flow1 = run_dag(example("hcp_booking_confirmation_crm_sync"), run_conf={"since": since})
    assert flow1.state == "success", states(flow1)
    admin.clear_messages()

    # Run 1 sees the booking: a new booking, left to flow 1 (nothing sent from here).
    first = run_dag(example("hcp_reschedule_notices"), run_conf={"since": since})
    assert first.state == "success", states(first)
    assert admin.messages() == {"sms": [], "email": []}
    assert xcom(first, "hand_off_new_bookings") == [job["id"]]
    assert states(first)["text_customer"] == ["skipped"] and states(first)["notify_crew"] == ["skipped"]

    # The customer moves the visit; run 2 (from run 1's state) sees a reschedule.
    after, new = local_slot(4, 13, hours=3)
    admin.reschedule(job["id"], **after)
    second = run_dag(example("hcp_reschedule_notices"))
    assert second.state == "success", states(second)
    n = job["invoice_number"]
    where = "7081 Oak Hollow Dr, Pflugerville, TX 78660"
    note = (
        f"Dispatch: job #{n} (Gutter Cleaning) for Ava Smith moved to {new} (was {old}). {where}. "
        "Customer: (512) 555-1234."
    )
    assert sorted(texts(admin)) == sorted(
        [
            (
                "+15125551234",
                f"Hi Ava, your Gutter Cleaning with {COMPANY} has moved to {new} (was {old}). Job #{n}. "
                f"Questions? Call {OFFICE}.",
            ),
            (f"+1{jake['mobile_number']}", note),
            (f"+1{emily['mobile_number']}", note),
        ]
    )
    assert emails(admin) == [
        (
            ["ava.smith@example.com"],
            f"Your visit has moved to {new}",
            f"Hi Ava,\n\nYour Gutter Cleaning visit has moved.\n\nNew time: {new}\nPrevious time: {old}\n"
            f"Where: {where}\nJob: #{n}\n\n"
            f"If the new time doesn't work for you, reply to this email or call {OFFICE}.\n\n{COMPANY}",
        )
    ]
    assert states(second)["hand_off_new_bookings"] == ["skipped"]
    row = crm_rows(crm_db)["ava.smith@example.com"]
    assert (row["hcp_job_id"], row["scheduled_window"]) == (job["id"], new)


def test_reschedule_detected_by_the_crm_seen_before_lookup(env: SandboxAdmin, crm_db: Path) -> None:
    """The alternative branch: the job ID is on a CRM contact, so it is a reschedule — even where the
    sensor saw only one change (its first run starts after the booking) and so reports a new booking."""
    admin = env
    ava = new_customer(admin, "Ava", "Smith", "5125551234")
    newcomer = new_customer(admin, "Liam", "Newman", "5125550111")
    since = just_before()
    before, old = local_slot(2, 9)
    job = admin.book_job(customer_id=ava["id"], job_type="Pest Control", **before)
    assert run_dag(example("hcp_booking_confirmation_crm_sync"), run_conf={"since": since}).state == "success"
    admin.clear_messages()

    since = just_before()
    after, new = local_slot(5, 8)
    admin.reschedule(job["id"], **after)
    fresh = admin.book_job(customer_id=newcomer["id"], job_type="Electrical", **local_slot(6, 10)[0])
    run = run_dag(example("hcp_reschedule_notices"), run_conf={"since": since, "detect_reschedules_by": "crm"})

    assert run.state == "success", states(run)
    events = xcom(run, "job_scheduled")
    assert {e["job"]["id"]: e["event"]["is_reschedule"] for e in events} == {job["id"]: False, fresh["id"]: False}
    n = job["invoice_number"]
    assert texts(admin) == [
        (
            "+15125551234",
            f"Hi Ava, your Pest Control with {COMPANY} has moved to {new} (was {old}). Job #{n}. "
            f"Questions? Call {OFFICE}.",
        )
    ]
    assert [(to, subject) for to, subject, _ in emails(admin)] == [
        (["ava.smith@example.com"], f"Your visit has moved to {new}")
    ]
    assert xcom(run, "hand_off_new_bookings") == [fresh["id"]]
    assert crm_rows(crm_db)["ava.smith@example.com"]["scheduled_window"] == new
