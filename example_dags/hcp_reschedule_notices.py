"""Reschedule notices: when a Housecall Pro job moves, tell the customer and the crew.

**The business problem.** A customer moves their gutter cleaning from Wednesday to Friday. The same
*Job scheduled* trigger that fires for new bookings fires again; this time the customer should get "your
visit has moved to Friday" and every technician assigned to the job a dispatch note with the new window —
while new bookings keep going through the confirmation flow (`hcp_booking_confirmation_crm_sync`).

**How it works.** The DAG runs continuously, one run at a time (`@continuous`, `max_active_runs=1`):

1. `job_scheduled` — `JobScheduledSensor` (deferrable, polling every minute) returns the bookings
   and reschedules since the previous run; a reschedule carries `is_reschedule: true` and the
   `previous_schedule`.
2. `reschedules` / `new_bookings` sort the events. By default (param `detect_reschedules_by =
   "event"`) that is the event's `is_reschedule`. The alternative, `"crm"`, is the product's "was this
   job seen before?" branch: a job whose ID is already on a CRM contact (stored there by the confirmation
   flow) is a reschedule, and the CRM's stored window is the "before". It also catches reschedules the
   sensor could not tell apart (say, a booking and its reschedule before the sensor's first poll); it
   misses jobs the CRM does not hold (a contact keeps only its latest job ID).
3. `route` (`@task.branch`) follows the reschedule path, the new-booking path, or both.
4. Reschedule path, per event (`.expand()`): `text_customer` and `email_customer` ("your visit has moved
   to …", times in the company's time zone); `crew_notes` makes one dispatch note per assigned employee and
   `notify_crew` sends each by text (their mobile number from the job payload), or by email when they
   have no mobile; `update_crm` stores the new window on the CRM contact.
5. New-booking path: `hand_off_new_bookings` only logs them — `hcp_booking_confirmation_crm_sync`
   confirms new bookings (run both DAGs; each sensor keeps its own state).

**For production, change:** the connections (`housecallpro_default`, `sms_default`, `smtp_default`,
`hcp_crm`; see `hcp_booking_confirmation_crm_sync`), the message texts (`moved_text`,
`moved_email`, `dispatch_note`), and `JobScheduledSensor(filters=...)` to watch only some jobs.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from typing import Any

import pendulum
from airflow.providers.common.compat.sdk import AirflowSkipException  # one import for Airflow 3.0 - 3.3
from airflow.providers.common.sql.hooks.sql import DbApiHook
from airflow.providers.common.sql.operators.sql import SQLExecuteQueryOperator
from airflow.sdk import DAG, Param, get_current_context, task
from hcp_messaging import (
    format_phone,
    format_window,
    job_title,
    person_name,
    send_email,
    send_sms,
    street_address,
)

from airflow_provider_housecallpro.hooks.housecallpro import HousecallProHook
from airflow_provider_housecallpro.sensors.jobs import JobScheduledSensor

HCP_CONN_ID = "housecallpro_default"
# How often the sensor polls Housecall Pro (seconds); the demo and the end-to-end test poll faster.
POLL_SECONDS = float(os.environ.get("HCP_POLL_SECONDS", "60"))
SMS_CONN_ID = "sms_default"
SMTP_CONN_ID = "smtp_default"
CRM_CONN_ID = "hcp_crm"

Event = dict[str, Any]
Company = dict[str, str]


# -- the messages -----------------------------------------------------------------------------------
def _first_name(event: Event) -> str:
    return (event["job"].get("customer") or {}).get("first_name") or "there"


def _windows(event: Event, company: Company) -> tuple[str, str | None]:
    """(new window, previous window or None) in the company's time zone."""
    new = format_window(event["job"].get("schedule"), company["time_zone"])
    return new, event.get("previous_window")


def moved_text(event: Event, company: Company) -> str:
    job = event["job"]
    new, old = _windows(event, company)
    was = f" (was {old})" if old else ""
    return (
        f"Hi {_first_name(event)}, your {job_title(job)} with {company['name']} has moved to {new}{was}. "
        f"Job #{job.get('invoice_number')}. Questions? Call {company['phone']}."
    )


def moved_email(event: Event, company: Company) -> tuple[str, str]:
    """(subject, text) of the customer's email."""
    job = event["job"]
    new, old = _windows(event, company)
    where = street_address(job.get("address"))
    details = [f"New time: {new}", *([f"Previous time: {old}"] if old else [])]
    details += [*([f"Where: {where}"] if where else []), f"Job: #{job.get('invoice_number')}"]
    text = "\n\n".join(
        [
            f"Hi {_first_name(event)},",
            f"Your {job_title(job)} visit has moved.",
            "\n".join(details),
            f"If the new time doesn't work for you, reply to this email or call {company['phone']}.",
            company["name"],
        ]
    )
    return f"Your visit has moved to {new}", text


def dispatch_note(event: Event, company: Company) -> str:
    job = event["job"]
    new, old = _windows(event, company)
    was = f" (was {old})" if old else ""
    where = street_address(job.get("address"))
    customer = job.get("customer") or {}
    phone = format_phone(customer.get("mobile_number") or event.get("customer_phone"))
    return (
        f"Dispatch: job #{job.get('invoice_number')} ({job_title(job)}) for {event['customer_name']} "
        f"moved to {new}{was}." + (f" {where}." if where else "") + (f" Customer: {phone}." if phone else "")
    )


def _wants_messages(event: Event) -> bool:
    return (event["job"].get("customer") or {}).get("notifications_enabled") is not False


def crm() -> DbApiHook:
    hook: DbApiHook = DbApiHook.get_hook(CRM_CONN_ID)
    return hook


with DAG(
    dag_id="hcp_reschedule_notices",
    description="Housecall Pro job rescheduled -> 'your visit has moved' to the customer + dispatch note to the crew",
    schedule="@continuous",
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    default_args={"retries": 2, "retry_delay": timedelta(minutes=1)},
    params={
        "detect_reschedules_by": Param(
            "event",
            enum=["event", "crm"],
            title="Detect reschedules by",
            description="'event': the trigger's is_reschedule flag. 'crm': the job ID was seen before "
            "(stored on a CRM contact by hcp_booking_confirmation_crm_sync).",
        ),
        "since": Param(
            None,
            type=["null", "string"],
            title="Go-live (first run only)",
            description="First run only: also handle changes after this ISO-8601 time "
            "(default: from when the run starts).",
        ),
    },
    tags=["housecallpro", "example"],
    doc_md=__doc__,
) as dag:
    scheduled = JobScheduledSensor(
        task_id="job_scheduled",
        housecallpro_conn_id=HCP_CONN_ID,
        since="{{ params.since or '' }}",
        poke_interval=POLL_SECONDS,  # seconds between polls, in the triggerer
        timeout=24 * 60 * 60,
        soft_fail=True,
    )

    ensure_crm_table = SQLExecuteQueryOperator(
        task_id="ensure_crm_table", conn_id=CRM_CONN_ID, sql="sql/crm_contacts.sql"
    )

    @task
    def company() -> Company:
        profile = HousecallProHook(HCP_CONN_ID).get_company()
        return {
            "name": profile.name or "our team",
            "phone": format_phone(profile.phone_number),
            "time_zone": profile.time_zone or "UTC",
        }

    @task
    def reschedules(events: list[Event], company: Company) -> list[Event]:
        """The events that move an existing visit, each with ``previous_window`` (local time) added."""
        by = get_current_context()["params"]["detect_reschedules_by"]
        moved = []
        for event in events:
            previous = event["event"].get("previous_schedule")
            old = format_window(previous, company["time_zone"]) if previous else None
            if by == "crm":
                db = crm()
                row = db.get_first(
                    f"SELECT scheduled_window FROM crm_contacts WHERE hcp_job_id = {db.placeholder}",
                    parameters=(event["job"]["id"],),
                )
                if row is None:
                    continue
                old = old or row[0]
            elif not event["event"]["is_reschedule"]:
                continue
            moved.append({**event, "previous_window": old})
        print(f"{len(moved)} reschedule(s) of {len(events)} event(s), detected by {by!r}")
        return moved

    @task
    def new_bookings(events: list[Event], moved: list[Event]) -> list[Event]:
        moved_ids = {e["event"]["id"] for e in moved}
        return [e for e in events if e["event"]["id"] not in moved_ids]

    # The branch decides per run which paths have work; each path then maps over its own events. (A branch
    # per event inside a mapped task group would not skip anything on Airflow >= 3.2: Airflow issue #67265.)
    @task.branch
    def route(moved: list[Event], new: list[Event]) -> list[str]:
        follow = ["text_customer", "email_customer", "crew_notes", "update_crm"] if moved else []
        return follow + (["hand_off_new_bookings"] if new else [])

    @task
    def text_customer(event: Event, company: Company) -> dict[str, Any]:
        mobile = (event["job"].get("customer") or {}).get("mobile_number")
        if not _wants_messages(event) or not mobile:
            raise AirflowSkipException(f"{event['customer_name']}: notifications off or no mobile number")
        sent = send_sms(mobile, moved_text(event, company), sms_conn_id=SMS_CONN_ID)
        return {"job_id": event["job"]["id"], "sid": sent.get("sid")}

    @task
    def email_customer(event: Event, company: Company) -> dict[str, Any]:
        if not _wants_messages(event) or not event["customer_email"]:
            raise AirflowSkipException(f"{event['customer_name']}: notifications off or no email address")
        subject, text = moved_email(event, company)
        send_email(event["customer_email"], subject, text, smtp_conn_id=SMTP_CONN_ID)
        return {"job_id": event["job"]["id"], "subject": subject}

    @task
    def crew_notes(moved: list[Event], company: Company) -> list[dict[str, Any]]:
        """One dispatch note per assigned employee of each moved job."""
        notes = []
        for event in moved:
            text = dispatch_note(event, company)
            for employee in event["job"].get("assigned_employees") or []:
                notes.append({"employee": employee, "invoice_number": event["job"].get("invoice_number"), "text": text})
        return notes

    @task
    def notify_crew(note: dict[str, Any]) -> dict[str, Any]:
        employee, text = note["employee"], note["text"]
        if employee.get("mobile_number"):
            send_sms(employee["mobile_number"], text, sms_conn_id=SMS_CONN_ID)
            return {"employee": person_name(employee), "by": "sms"}
        if employee.get("email"):
            subject = f"Dispatch: job #{note['invoice_number']} moved"
            send_email(employee["email"], subject, text, smtp_conn_id=SMTP_CONN_ID)
            return {"employee": person_name(employee), "by": "email"}
        raise AirflowSkipException(f"{person_name(employee)} has neither a mobile number nor an email address")

    @task
    def update_crm(event: Event, company: Company) -> dict[str, Any]:
        """Store the new window on the CRM contact holding this job (if the confirmation flow created one)."""
        db = crm()
        p = db.placeholder
        window = format_window(event["job"].get("schedule"), company["time_zone"])
        row = db.get_first(f"SELECT email FROM crm_contacts WHERE hcp_job_id = {p}", parameters=(event["job"]["id"],))
        if row is None:
            raise AirflowSkipException(f"No CRM contact holds job {event['job']['id']}")
        now = datetime.now(UTC).isoformat(timespec="seconds")
        db.run(
            f"UPDATE crm_contacts SET scheduled_window = {p}, updated_at = {p} WHERE email = {p}",
            parameters=(window, now, row[0]),
        )
        return {"email": row[0], "scheduled_window": window}

    @task
    def hand_off_new_bookings(new: list[Event]) -> list[str]:
        """New bookings are confirmed by hcp_booking_confirmation_crm_sync; nothing to send from here."""
        for event in new:
            print(f"New booking {event['job']['id']} for {event['customer_name']}: left to the confirmation flow")
        return [e["job"]["id"] for e in new]

    profile = company()
    moved = reschedules(scheduled.output, profile)
    new = new_bookings(scheduled.output, moved)
    ensure_crm_table >> moved
    branch = route(moved, new)
    branch >> [
        text_customer.partial(company=profile).expand(event=moved),
        email_customer.partial(company=profile).expand(event=moved),
        update_crm.partial(company=profile).expand(event=moved),
    ]
    notes = crew_notes(moved, profile)
    branch >> notes
    notify_crew.expand(note=notes)
    branch >> hand_off_new_bookings(new)
