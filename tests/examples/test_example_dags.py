"""The example DAGs, run with dag.test() against the sandbox and its message sinks.

Each test makes something happen in the sandbox (a booking, a reschedule, completions, a web-form lead), runs
the DAG and asserts on outcomes only: the exact texts and emails the sinks received (recipient and text), the
rows of the CRM table (a SQLite file reached through the ``hcp_crm`` connection) and the customers in the
sandbox. Sensor DAGs start each test with no remembered state (earlier runs of the DAG are removed from the
metadata DB), so ``since`` can point the first run at the test's own changes; one test per sensor DAG also
goes through a real deferral (the change lands inside the trigger's poll, via a ``mutate`` fault).
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hcp_messaging.sinks import SandboxWithSinks, SinkAdmin

from tests.conftest import EXAMPLE_DAGS, run_dag, xcom

CHICAGO = ZoneInfo("America/Chicago")  # the sandbox company's time zone
COMPANY = "Lone Star Home Services"
OFFICE = "(512) 555-0100"
SENDER = "+15125550100"
DASH = "\u2013"
SENSOR_DAGS = ("hcp_booking_confirmation_crm_sync", "hcp_reschedule_notices", "hcp_job_completed_followup")


# -- fixtures ---------------------------------------------------------------------------------------
@pytest.fixture
def crm_db(tmp_path: Path) -> Path:
    return tmp_path / "crm.db"


@pytest.fixture
def env(
    airflow_db: None,
    sandbox: SandboxWithSinks,
    admin: SinkAdmin,
    connection: str,
    crm_db: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> SinkAdmin:
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


def example_module(dag_id: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"hcp_example_{dag_id}", EXAMPLE_DAGS / f"{dag_id}.py")
    assert spec and spec.loader
    module: ModuleType = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def example(dag_id: str) -> Any:
    """The DAG of ``example_dags/<dag_id>.py``, loaded by path (dag.test() runs DAGs of a configured bundle).

    A fresh copy for every run: ``dag.test(run_conf=...)`` leaves the conf in the DAG object's params.
    """
    dag = example_module(dag_id).dag
    assert dag.dag_id == dag_id
    for task in dag.tasks:  # fail within two minutes, not a day, if an expected event never comes
        if hasattr(task, "soft_fail"):
            task.timeout = 120
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


def texts(admin: SinkAdmin) -> list[tuple[str, str]]:
    """(recipient, body) of every text the SMS sink received, in order."""
    sent = admin.sms()
    assert all(m["from"] == SENDER for m in sent)
    return [(m["to"], m["body"]) for m in sent]


def emails(admin: SinkAdmin) -> list[tuple[list[str], str, str]]:
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


def new_customer(admin: SinkAdmin, first: str, last: str, mobile: str | None, **kw: Any) -> dict[str, Any]:
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
def test_booking_confirmation_texts_emails_and_syncs_the_crm(env: SinkAdmin, crm_db: Path) -> None:
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
    env: SinkAdmin, hook: Any, crm_db: Path
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


def test_reschedule_detected_by_the_crm_seen_before_lookup(env: SinkAdmin, crm_db: Path) -> None:
    """The alternative branch: the job ID is on a CRM contact, so it is a reschedule — even where the
    sensor saw only one change (its first run starts after the booking and the move) and so reports a new
    booking."""
    admin = env
    ava = new_customer(admin, "Ava", "Smith", "5125551234")
    newcomer = new_customer(admin, "Liam", "Newman", "5125550111")
    since = just_before()
    before, old = local_slot(2, 9)
    job = admin.book_job(customer_id=ava["id"], job_type="Pest Control", **before)
    assert run_dag(example("hcp_booking_confirmation_crm_sync"), run_conf={"since": since}).state == "success"
    admin.clear_messages()

    # The reschedule DAG goes live with the same `since`: the job was created after it, so its first run,
    # which never saw the booking, reports it as a new booking — the CRM knows better.
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


# -- 3. job completed: thank-you, receipt or reminder, CRM stage ---------------------------------------
def test_completion_thanks_then_receipt_or_reminder_and_advances_the_crm(
    env: SinkAdmin, crm_db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    admin = env
    monkeypatch.setenv("AIRFLOW_VAR_HCP_REVIEW_URL", "https://g.page/r/lonestar/review")
    ava = new_customer(admin, "Ava", "Smith", "5125551234")  # paid on site
    ben = new_customer(admin, "Ben", "Jones", None)  # unpaid, no mobile: everything by email
    cleo = new_customer(admin, "Cleo", "Park", "5125550122", email=None)  # unpaid, no email: texts, no CRM
    paid = admin.book_job(customer_id=ava["id"], job_type="HVAC — Tune-Up", **local_slot(-1, 9)[0])
    unpaid = admin.book_job(customer_id=ben["id"], job_type="Plumbing Repair", **local_slot(-1, 13)[0])
    texted = admin.book_job(customer_id=cleo["id"], job_type="Electrical", total_amount=25000, **local_slot(-1, 15)[0])
    since = just_before()
    admin.complete(paid["id"], paid=True)
    admin.complete(unpaid["id"], paid=False)
    admin.complete(texted["id"], paid=False)

    run = run_dag(
        example("hcp_job_completed_followup"),
        run_conf={"since": since, "payment_url": "https://pay.lonestar.example/i/{invoice_number}?job={job_id}"},
    )

    assert run.state == "success", states(run)
    review = "https://g.page/r/lonestar/review"
    thanks = "thank you for choosing Lone Star Home Services today! If you have a minute, we'd love a quick review:"
    a, b, c = paid["invoice_number"], unpaid["invoice_number"], texted["invoice_number"]
    cleo_link = f"https://pay.lonestar.example/i/{c}?job={texted['id']}"
    assert sorted(texts(admin)) == sorted(
        [
            ("+15125551234", f"Hi Ava, {thanks} {review}"),
            ("+15125550122", f"Hi Cleo, {thanks} {review}"),
            (
                "+15125550122",
                f"Hi Cleo, a friendly reminder from {COMPANY}: $250.00 is due for job #{c}. "
                f"Pay here: {cleo_link}. Already paid? Please ignore this message.",
            ),
        ]
    )
    assert sorted(emails(admin)) == sorted(
        [
            (["ben.jones@example.com"], f"Thank you from {COMPANY}", f"Hi Ben, {thanks} {review}"),
            (
                ["ava.smith@example.com"],
                f"Your receipt for job #{a}: $165.00, paid in full",
                f"Hi Ava,\n\nThank you for your payment. Here is your receipt for job #{a} (HVAC — Tune-Up):\n\n"
                "- Tune-up visit: 1 x $129.00 = $129.00\n- Air filter 16x25x1: 2 x $18.00 = $36.00\n\n"
                f"Total: $165.00\nPaid in full. Balance: $0.00\n\n{COMPANY} · {OFFICE}",
            ),
            (
                ["ben.jones@example.com"],
                f"Invoice for job #{b}: $319.00 due",
                f"Hi Ben,\n\nThanks again for choosing {COMPANY}. Our records show a balance of $319.00 for job #{b} "
                f"(Plumbing Repair).\n\nYou can pay securely here: https://pay.lonestar.example/i/{b}?job={unpaid['id']}"
                f"\n\nAlready paid? Please ignore this message. Questions? Reply to this email or call {OFFICE}."
                f"\n\n{COMPANY}",
            ),
        ]
    )
    rows = crm_rows(crm_db)
    assert sorted(rows) == ["ava.smith@example.com", "ben.jones@example.com"]  # Cleo has no email
    assert {(r["hcp_job_id"], r["lifecycle_stage"], r["hcp_customer_id"]) for r in rows.values()} == {
        (paid["id"], "Customer — Completed Job", ava["id"]),
        (unpaid["id"], "Customer — Completed Job", ben["id"]),
    }
    # The receipt's line items came from the API, once per paid job.
    assert [r["path"] for r in admin.requests(path="/jobs/*") if r["path"].endswith("/line_items")] == [
        f"/jobs/{paid['id']}/line_items"
    ]


def test_completion_arrives_while_the_sensor_is_deferred(env: SinkAdmin, crm_db: Path) -> None:
    """No ``since``: the run waits for a completion, in the trigger, and follows up on it."""
    admin = env
    ava = new_customer(admin, "Ava", "Smith", "5125551234")
    job = admin.book_job(customer_id=ava["id"], job_type="Pest Control", **local_slot(0, 8)[0])
    admin.clear_requests()
    # /jobs request 1 is the sensor's check on the worker (nothing yet: it defers); the job is completed
    # just before request 2, which only the trigger makes.
    admin.fault("mutate", path="/jobs", after=1, op="complete", job_id=job["id"], paid=True)

    run = run_dag(example("hcp_job_completed_followup"))

    assert run.state == "success", states(run)
    assert len(admin.requests(path="/jobs")) == 2
    assert [e["job"]["id"] for e in xcom(run, "job_completed")] == [job["id"]]
    assert texts(admin) == [
        (
            "+15125551234",
            "Hi Ava, thank you for choosing Lone Star Home Services today! If you have a minute, we'd love a "
            "quick review: https://g.page/r/YOUR-BUSINESS/review",
        )
    ]
    assert [subject for _, subject, _ in emails(admin)] == [
        f"Your receipt for job #{job['invoice_number']}: $149.00, paid in full"
    ]
    assert states(run)["send_reminder"] == ["skipped"]
    assert crm_rows(crm_db)["ava.smith@example.com"]["lifecycle_stage"] == "Customer — Completed Job"


# -- 4. web-form lead -> Housecall Pro customer ---------------------------------------------------------
FORM = {
    "first_name": "Grace",
    "last_name": "Hopper",
    "email": "Grace.Hopper@Example.com",
    "mobile_number": "5125550199",
    "company": "Hopper Dental",
    "message": "Our AC makes a rattling noise, can someone come next week?",
    "team_email": "dispatch@lonestarhome.example",
}


def sandbox_customers(hook: Any, email: str) -> list[Any]:
    return [c for c in hook.iter_customers(q=email) if (c.email or "").lower() == email.lower()]


def test_web_form_lead_becomes_a_customer_stored_in_the_crm_and_announced(
    env: SinkAdmin, hook: Any, crm_db: Path
) -> None:
    admin = env
    run = run_dag(example("hcp_web_form_lead_to_customer"), run_conf=FORM)

    assert run.state == "success", states(run)
    [customer] = sandbox_customers(hook, FORM["email"])
    assert xcom(run, "create_customer") == customer.id
    assert (customer.first_name, customer.last_name, customer.mobile_number, customer.company) == (
        "Grace",
        "Hopper",
        "5125550199",
        "Hopper Dental",
    )
    assert (customer.lead_source, customer.tags, customer.notes) == ("Website", ["web-form"], FORM["message"])
    row = crm_rows(crm_db)["grace.hopper@example.com"]
    assert {k: v for k, v in row.items() if k != "updated_at"} == {
        "email": "grace.hopper@example.com",
        "first_name": "Grace",
        "last_name": "Hopper",
        "phone": "5125550199",
        "hcp_customer_id": customer.id,
        "tags": "web-form",
        "hcp_job_id": None,
        "scheduled_window": None,
        "lifecycle_stage": "Lead",
    }
    assert emails(admin) == [
        (
            ["dispatch@lonestarhome.example"],
            "New web lead: Grace Hopper",
            "A new lead came in through the website form.\n\nName: Grace Hopper\nCompany: Hopper Dental\n"
            f"Email: Grace.Hopper@Example.com\nMobile: (512) 555-0199\nHousecall Pro customer: {customer.id}\n\n"
            f"They wrote: {FORM['message']}\n\nThe customer is in Housecall Pro, ready to quote and schedule.",
        )
    ]
    assert admin.sms() == []

    # The same form again (a double submit): the same customer, no second one; the CRM row is unchanged.
    again = run_dag(example("hcp_web_form_lead_to_customer"), run_conf={**FORM, "team_email": None})
    assert again.state == "success", states(again)
    assert xcom(again, "create_customer") == customer.id
    assert [c.id for c in sandbox_customers(hook, FORM["email"])] == [customer.id]
    assert len(admin.requests(method="POST", path="/customers")) == 1
    assert crm_rows(crm_db)["grace.hopper@example.com"]["hcp_customer_id"] == customer.id
    assert states(again)["tell_the_team"] == ["skipped"]


def test_web_form_with_an_invalid_mobile_number_creates_nothing_and_texts_the_team(
    env: SinkAdmin, crm_db: Path
) -> None:
    admin = env
    form = {"first_name": "Bad", "last_name": "Number", "email": "bad@example.com", "mobile_number": "512-555-01"}
    run = run_dag(example("hcp_web_form_lead_to_customer"), run_conf={**form, "team_phone": "5125550177"})
    assert run.state == "failed"
    assert states(run)["create_customer"] == ["failed"]
    assert states(run)["store_in_crm"] == ["upstream_failed"]
    assert admin.requests(method="POST", path="/customers") == []
    # The failure callback (SmsNotifier) texts the team; nothing goes to the lead — not even Airflow's
    # failure email (the operator's `email` is the customer's address, not an alert address).
    assert texts(admin) == [
        (
            "+15125550177",
            f"Web lead Bad Number could not be added to Housecall Pro (run {run.run_id}). "
            "Please call them back: 512-555-01.",
        )
    ]
    assert admin.emails() == []

    # Without a team phone the callback sends nothing.
    admin.clear_messages()
    run = run_dag(example("hcp_web_form_lead_to_customer"), run_conf=form)
    assert run.state == "failed"
    assert admin.messages() == {"sms": [], "email": []}


# -- every example DAG parses, offline -----------------------------------------------------------------
def parse_offline(folder: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Any, list[Any]]:
    """Parse a DAG folder the way the DAG processor does, with no connections, no variables and no network:
    returns the DagBag and every network connection attempted (each one refused)."""
    import os
    import socket

    try:
        from airflow.dag_processing.dagbag import DagBag  # Airflow >= 3.2
    except ImportError:
        from airflow.models.dagbag import DagBag  # type: ignore[no-redef]

    for name in [k for k in os.environ if k.startswith(("AIRFLOW_CONN_", "AIRFLOW_VAR_"))]:
        monkeypatch.delenv(name)
    attempts: list[Any] = []
    real_connect = socket.socket.connect

    def no_network(self: socket.socket, address: Any) -> None:
        if self.family in (socket.AF_INET, socket.AF_INET6):
            attempts.append(address)
            raise OSError(f"network access while parsing DAGs: {address}")
        real_connect(self, address)  # unix sockets are not the network

    with monkeypatch.context() as patch:
        patch.setattr(socket.socket, "connect", no_network)
        bag = DagBag(dag_folder=str(folder), bundle_path=folder)
    return bag, attempts


def test_example_dags_import_without_errors_or_network(
    sandbox: SandboxWithSinks, admin: SinkAdmin, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Parsing (what the DAG processor does over and over) needs no connection and makes no network call."""
    from airflow_provider_housecallpro.sensors.jobs import JobEventSensor

    admin.clear_requests()
    bag, attempts = parse_offline(EXAMPLE_DAGS, monkeypatch)

    assert bag.import_errors == {}
    assert attempts == []
    assert admin.requests() == []
    assert sorted(bag.dag_ids) == [
        "hcp_booking_confirmation_crm_sync",
        "hcp_job_completed_followup",
        "hcp_reschedule_notices",
        "hcp_watch_bookings",
        "hcp_watch_completions",
        "hcp_web_form_lead_to_customer",
    ]
    for dag_id in ("hcp_watch_bookings", "hcp_watch_completions"):  # event-driven: one consumer run at a time
        assert bag.dags[dag_id].max_active_runs == 1, dag_id
    for dag_id in SENSOR_DAGS:
        dag = bag.dags[dag_id]
        sensors = [t for t in dag.tasks if isinstance(t, JobEventSensor)]
        assert [(s.deferrable, s.poke_interval) for s in sensors] == [(True, 60)], dag_id
        assert dag.max_active_runs == 1, dag_id
    for dag_id in bag.dag_ids:
        doc = bag.dags[dag_id].doc_md
        assert "For production, change" in doc, dag_id
        assert "``" not in doc and ":class:" not in doc, dag_id  # the UI renders Markdown, not reStructuredText
        for name in bag.dags[dag_id].params:
            param = bag.dags[dag_id].params.get_param(name)
            assert param.schema.get("title") and param.description, (dag_id, name)


def test_the_offline_parse_catches_a_dag_that_calls_the_api_at_import(
    sandbox: SandboxWithSinks, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The check above has teeth: a DAG file that talks to Housecall Pro while being parsed is caught."""
    monkeypatch.setenv(
        "AIRFLOW_CONN_HOUSECALLPRO_DEFAULT", json.dumps({"conn_type": "housecallpro", "host": sandbox.url})
    )
    (tmp_path / "careless.py").write_text(
        "import httpx\n"
        "from airflow.sdk import DAG\n"
        f"ZONE = httpx.get({sandbox.url + '/company'!r}).json()  # at import time: wrong\n"
        "dag = DAG('careless', schedule=None)\n"
    )
    bag, attempts = parse_offline(tmp_path, monkeypatch)
    assert attempts == [("127.0.0.1", sandbox.port)]
    assert list(bag.import_errors) and "network access while parsing DAGs" in next(iter(bag.import_errors.values()))


# -- the CRM across the DAGs ----------------------------------------------------------------------------
def test_one_crm_contact_from_lead_to_booking_to_completed_job(env: SinkAdmin, hook: Any, crm_db: Path) -> None:
    """Found by email every time: a lead is tagged, booked (stage moves on), completed, and booked again —
    the stage never moves back and tags accumulate."""
    admin = env

    def contact() -> dict[str, Any]:
        return {k: v for k, v in crm_rows(crm_db)["grace.hopper@example.com"].items() if k != "updated_at"}

    lead = run_dag(example("hcp_web_form_lead_to_customer"), run_conf={**FORM, "team_email": None})
    assert lead.state == "success", states(lead)
    customer_id = xcom(lead, "create_customer")
    assert (contact()["lifecycle_stage"], contact()["tags"]) == ("Lead", "web-form")

    since = just_before()
    when, window = local_slot(2, 10)
    job = admin.book_job(customer_id=customer_id, job_type="HVAC — Tune-Up", **when)
    assert run_dag(example("hcp_booking_confirmation_crm_sync"), run_conf={"since": since}).state == "success"
    assert contact() == {
        "email": "grace.hopper@example.com",
        "first_name": "Grace",
        "last_name": "Hopper",
        "phone": "5125550199",
        "hcp_customer_id": customer_id,
        "tags": "web-form, HVAC — Tune-Up",
        "hcp_job_id": job["id"],
        "scheduled_window": window,
        "lifecycle_stage": "Customer — Job Booked",
    }

    since = just_before()
    admin.complete(job["id"], paid=True)
    assert run_dag(example("hcp_job_completed_followup"), run_conf={"since": since}).state == "success"
    assert (contact()["lifecycle_stage"], contact()["tags"]) == ("Customer — Completed Job", "web-form, HVAC — Tune-Up")

    # The next booking: this DAG's second run, from the first run's state.
    again_when, again_window = local_slot(30, 9)
    again = admin.book_job(customer_id=customer_id, job_type="Plumbing Repair", **again_when)
    assert run_dag(example("hcp_booking_confirmation_crm_sync")).state == "success"
    assert {k: contact()[k] for k in ("lifecycle_stage", "tags", "hcp_job_id", "scheduled_window")} == {
        "lifecycle_stage": "Customer — Completed Job",
        "tags": "web-form, HVAC — Tune-Up, Plumbing Repair",
        "hcp_job_id": again["id"],
        "scheduled_window": again_window,
    }
    assert len(crm_rows(crm_db)) == 1


# -- 5. event-driven: the watcher DAGs -------------------------------------------------------------------
def watch(trigger: Any, steps: list[tuple[Callable[[], None], int]]) -> list[dict[str, Any]]:
    """Run an event trigger as the triggerer does (polling every 0.2 s): after each step's change, until it has
    yielded that step's total of events."""
    from tests.triggers.test_event_triggers import DictAssetStore, Running, made_by_triggerer, until

    _, kwargs = trigger.serialize()
    quick = type(trigger)(**{**kwargs, "poll_interval": 0.2})

    async def scenario() -> list[dict[str, Any]]:
        store = DictAssetStore()
        running = Running(made_by_triggerer(quick, store))
        await until(lambda: bool(store.values), "go-live")
        for change, count in steps:
            await asyncio.to_thread(change)
            await until(lambda c=count: len(running.events) >= c, f"{count} event(s)")  # type: ignore[misc]
        await running.kill()
        return running.events

    return asyncio.run(scenario())


def activate(asset: Any) -> None:
    """Register the asset as the DAG processor does (dag.test() on Airflow 3.0 does not mark it active)."""
    from airflow.models.asset import AssetActive, AssetModel
    from airflow.utils.session import create_session

    with create_session() as session:
        model = session.query(AssetModel).filter_by(name=asset.name, uri=asset.uri).one_or_none()
        if model is None:
            model = AssetModel(name=asset.name, uri=asset.uri, group=asset.group, extra=asset.extra)
            session.add(model)
            session.flush()
        if session.query(AssetActive).filter_by(name=asset.name, uri=asset.uri).one_or_none() is None:
            session.add(AssetActive.for_asset(model))


def as_asset_events(asset: Any, payloads: list[dict[str, Any]]) -> None:
    """Store them as the triggerer stores a watcher's events (``Trigger.submit_event``)."""
    from airflow.assets.manager import AssetManager
    from airflow.models.asset import AssetModel
    from airflow.utils.session import create_session

    with create_session() as session:
        model = session.query(AssetModel).filter_by(name=asset.name, uri=asset.uri).one()
        for payload in payloads:
            AssetManager.register_asset_change(
                asset=model, extra={"from_trigger": True, "payload": payload}, session=session
            )


def backdate(event_id: str, days: int) -> None:
    from airflow.models.asset import AssetEvent
    from airflow.utils.session import create_session

    with create_session() as session:
        for row in session.query(AssetEvent).all():
            if (row.extra or {}).get("payload", {}).get("event", {}).get("id") == event_id:
                row.timestamp = datetime.now(UTC) - timedelta(days=days)


def event_log(path: Path) -> list[tuple[str, str, int, str]]:
    with sqlite3.connect(path) as db:
        return db.execute(
            "SELECT event_id, event_type, is_reschedule, hcp_job_id FROM hcp_job_event_log ORDER BY rowid"
        ).fetchall()


def test_watcher_dags_process_each_asset_event_once(env: SinkAdmin, crm_db: Path) -> None:
    """The event triggers' events, stored as asset events (one of them twice, as after a triggerer restart):
    each watcher DAG texts and logs each change once, over consecutive runs."""
    bookings_module = example_module("hcp_watch_bookings")
    completions_module = example_module("hcp_watch_completions")
    forget_runs("hcp_watch_bookings")
    ann = new_customer(env, "Ann", "Asset", "5125550161")
    bob = new_customer(env, "Bob", "Asset", "5125550162")
    activate(bookings_module.bookings)
    activate(completions_module.completions)
    empty = run_dag(bookings_module.dag)  # nothing to process yet
    assert empty.state == "success" and xcom(empty, "new_events") == []

    jobs: list[dict[str, Any]] = []

    def book() -> None:
        jobs.append(env.book_job(customer_id=ann["id"], **local_slot(2, 9)[0]))
        jobs.append(env.book_job(customer_id=bob["id"], **local_slot(3, 9)[0]))

    def move() -> None:
        env.reschedule(jobs[0]["id"], **local_slot(4, 13)[0])

    payloads = watch(bookings_module.bookings.watchers[0].trigger, [(book, 2), (move, 3)])
    summary = sorted((p["job"]["id"], p["event"]["is_reschedule"]) for p in payloads)
    assert summary == sorted([(jobs[0]["id"], False), (jobs[1]["id"], False), (jobs[0]["id"], True)])
    as_asset_events(bookings_module.bookings, [*payloads, payloads[0]])  # the first one twice

    first = run_dag(bookings_module.dag)
    assert first.state == "success", states(first)
    assert sorted(e["event"]["id"] for e in xcom(first, "new_events")) == sorted(p["event"]["id"] for p in payloads)
    sent = texts(env)
    assert len(sent) == 3
    assert sum("has moved to" in body for _, body in sent) == 1
    assert sorted(to[-10:] for to, _ in sent) == sorted(["5125550161", "5125550161", "5125550162"])
    assert sorted(row[0] for row in event_log(crm_db)) == sorted(p["event"]["id"] for p in payloads)

    again = run_dag(bookings_module.dag)  # the same asset events are still "recent": nothing is processed twice
    assert again.state == "success" and xcom(again, "new_events") == []
    assert len(texts(env)) == 3 and len(event_log(crm_db)) == 3

    # Completions: one event, stored once, thanked once.
    forget_runs("hcp_watch_completions")
    assert xcom(run_dag(completions_module.dag), "new_events") == []

    def complete() -> None:
        env.start(jobs[1]["id"])
        env.complete(jobs[1]["id"], paid=True)

    done = watch(completions_module.completions.watchers[0].trigger, [(complete, 1)])
    as_asset_events(completions_module.completions, done)
    thanked = run_dag(completions_module.dag)
    assert thanked.state == "success", states(thanked)
    assert [e["job"]["id"] for e in xcom(thanked, "new_events")] == [jobs[1]["id"]]
    (thanks,) = texts(env)[3:]
    assert thanks[0].endswith("5125550162") and thanks[1].startswith("Thanks Bob for choosing us"), thanks
    assert event_log(crm_db)[3:] == [(done[0]["event"]["id"], "job.completed", 0, jobs[1]["id"])]

    # What cannot be repaired (README): an asset event older than the look-back that no run ever saw (here: a
    # copy of the completion with a new id, dated two days ago) is not processed.
    stale = {**done[0], "event": {**done[0]["event"], "id": done[0]["event"]["id"] + "-stale"}}
    as_asset_events(completions_module.completions, [stale])
    backdate(stale["event"]["id"], days=2)
    later = run_dag(completions_module.dag)
    assert later.state == "success" and xcom(later, "new_events") == []


def test_a_stopped_watchers_error_event_fails_one_consumer_run_with_the_fix(
    env: SinkAdmin, crm_db: Path, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    """A watcher that cannot read its state yields one error event (``tests/triggers/test_state_store.py``); the
    consumer run shown it fails red, its log naming the watcher and the reset command; the next run goes on (the
    error is claimed, the job events that came with it are processed then)."""
    module = example_module("hcp_watch_completions")
    # Each of the failed run's tries (the DAG retries twice) is shown the error again and fails; without the DAG's
    # 30 s between them, which dag.test() would wait out.
    module.dag.get_task("new_events").retry_delay = timedelta(0)
    forget_runs("hcp_watch_completions")
    activate(module.completions)
    assert run_dag(module.dag).state == "success"  # the consumer starts: it is shown nothing older than this

    fix = "run `housecallpro watcher-state reset hcp_watch_completions --kind completed --asset ASSET_NAME`"
    error = {
        "watcher": "hcp_watch_completions",
        "kind": "job.completed",
        "store": "asset state store key 'housecallpro.detector.completed.hcp_watch_completions'",
        "message": "asset state store key '...' holds an unreadable state (StateError: unreadable state: 'cursor')",
        "fix": fix,
        "id": "error:job.completed:hcp_watch_completions:2026-01-01T00:00:00+00:00",
        "detected_at": "2026-01-01T00:00:00+00:00",
    }
    ann = new_customer(env, "Ann", "Stuck", "5125550171")
    job = env.book_job(customer_id=ann["id"], **local_slot(2, 9)[0])

    def complete() -> None:
        env.start(job["id"])
        env.complete(job["id"], paid=True)

    done = watch(module.completions.watchers[0].trigger, [(complete, 1)])
    as_asset_events(module.completions, [{"error": error}, *done])

    failed = run_dag(module.dag)
    assert failed.state == "failed" and states(failed)["new_events"] == ["failed"], states(failed)
    logged = capsys.readouterr().out + caplog.text
    assert "WatcherStateError" in logged and fix in logged
    assert "Housecall Pro job.completed watcher 'hcp_watch_completions'" in logged
    assert texts(env) == []  # nothing processed by the failed run

    after = run_dag(module.dag)  # the error was this DAG's once; the completion is processed now
    assert after.state == "success", states(after)
    assert [e["event"]["id"] for e in xcom(after, "new_events")] == [done[0]["event"]["id"]]
    assert len(texts(env)) == 1
