"""Booking confirmation + CRM sync: confirm every new Housecall Pro booking and keep the CRM in step.

**The business problem.** A homeowner books a furnace tune-up for next Tuesday. Within moments they should
get a text and an email confirming the visit window — in the company's local time, not UTC — and the
CRM should know about it: the contact found (or created) by email, tagged with the job type ("HVAC —
Tune-Up"), with the Housecall Pro job ID and the scheduled window on its custom fields, so marketing and
reporting work from the same facts as dispatch.

**How it works.** The DAG runs continuously, one run at a time (`@continuous`, `max_active_runs=1`):

1. `job_scheduled` — `JobScheduledSensor` waits in the triggerer (deferrable: no worker slot while
   waiting) and polls Housecall Pro every minute. It returns the new bookings and reschedules since the
   previous run, oldest first, each exactly once.
2. `new_bookings` keeps the new bookings. Reschedules belong to `hcp_reschedule_notices`.
3. `company` reads the company's name, phone and time zone (`GET /company`) once per run.
4. For each booking (`.expand()`, one mapped task instance per booking): `text_customer` texts the
   customer's mobile number, `email_customer` emails them, `sync_crm` finds or creates the CRM contact
   by email and tags it. Customers who turned notifications off in Housecall Pro get no messages; a
   customer without an email address is not synced (the CRM is keyed by email).

The run then ends and the next one starts waiting; the sensor remembers where it left off.

**Try it** without any account: `make demo` runs this DAG against the local sandbox, whose SMS and SMTP
sinks show what would have been sent. By hand: `housecallpro sandbox` plus the connections below.

**For production, change:**

- `housecallpro_default`: your Housecall Pro API key (made in My Apps → App Store → API Key Management), in
  the form's "API key" and 443 in "Port"; no host.
- `sms_default` (type `http`): your Twilio (or compatible) account SID as login, auth token as
  password, extra `{"from_number": "+1..."}`; no host (defaults to Twilio).
- `smtp_default`: your mail server (host, port, login/password, extra `from_email`).
- `hcp_crm`: your CRM's SQL database — any common-sql connection (Postgres, MySQL, Snowflake, …). The
  `crm_contacts` table (`sql/crm_contacts.sql`) is created if missing; map the columns to your CRM's
  custom fields, or replace `sync_crm` with your CRM's API.
- `JobScheduledSensor(filters=...)` to confirm only some bookings (job types, tags, employees, ...).
- The message texts in `confirmation_text` and `confirmation_email`.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from typing import Any

import pendulum
from airflow.providers.common.compat.sdk import AirflowSkipException  # one import for Airflow 3.0 - 3.3
from airflow.providers.common.sql.hooks.sql import DbApiHook
from airflow.providers.common.sql.operators.sql import SQLExecuteQueryOperator
from airflow.sdk import DAG, Param, task
from hcp_messaging import (
    format_phone,
    format_window,
    job_title,
    job_type_name,
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
STAGE_LEAD = "Lead"
STAGE_BOOKED = "Customer — Job Booked"

Event = dict[str, Any]
Company = dict[str, str]


# -- the messages -----------------------------------------------------------------------------------
def _first_name(event: Event) -> str:
    return (event["job"].get("customer") or {}).get("first_name") or "there"


def confirmation_text(event: Event, company: Company) -> str:
    job = event["job"]
    window = format_window(job.get("schedule"), company["time_zone"])
    return (
        f"Hi {_first_name(event)}, your {job_title(job)} with {company['name']} is booked for {window}. "
        f"Job #{job.get('invoice_number')}. Questions? Call {company['phone']}."
    )


def confirmation_email(event: Event, company: Company) -> tuple[str, str]:
    """(subject, text) of the confirmation email."""
    job = event["job"]
    window = format_window(job.get("schedule"), company["time_zone"])
    title, description = job_title(job), job.get("description")
    what = f"{title} ({description})" if description and description != title else title
    where = street_address(job.get("address"))
    details = [f"What: {what}", f"When: {window}", *([f"Where: {where}"] if where else [])]
    details.append(f"Job: #{job.get('invoice_number')}")
    text = "\n\n".join(
        [
            f"Hi {_first_name(event)},",
            f"Thanks for booking with {company['name']}. Here are your visit details:",
            "\n".join(details),
            f"Need to change something? Reply to this email or call {company['phone']}.",
            company["name"],
        ]
    )
    return f"Booked: {title} on {window}", text


def _wants_messages(event: Event) -> bool:
    """Housecall Pro's per-customer notification setting: respected for every customer-facing message."""
    return (event["job"].get("customer") or {}).get("notifications_enabled") is not False


# -- the CRM ------------------------------------------------------------------------------------------
def crm() -> DbApiHook:
    hook: DbApiHook = DbApiHook.get_hook(CRM_CONN_ID)  # SqliteHook, PostgresHook, ... by connection type
    return hook


def _merge_tags(existing: str | None, new: str | None) -> str:
    tags = [t.strip() for t in (existing or "").split(",") if t.strip()]
    if new and new.lower() not in {t.lower() for t in tags}:
        tags.append(new)
    return ", ".join(tags)


with DAG(
    dag_id="hcp_booking_confirmation_crm_sync",
    description="New Housecall Pro booking -> confirmation text + email in local time -> CRM contact synced",
    schedule="@continuous",
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    default_args={"retries": 2, "retry_delay": timedelta(minutes=1)},
    params={
        "since": Param(
            None,
            type=["null", "string"],
            title="Go-live (first run only)",
            description="First run only: also confirm bookings made after this ISO-8601 time "
            "(default: from when the run starts).",
        ),
    },
    tags=["housecallpro", "example"],
    doc_md=__doc__,
) as dag:
    bookings = JobScheduledSensor(
        task_id="job_scheduled",
        housecallpro_conn_id=HCP_CONN_ID,
        since="{{ params.since or '' }}",
        poke_interval=POLL_SECONDS,  # seconds between polls, in the triggerer
        timeout=24 * 60 * 60,  # a quiet day ends the run as skipped; the next run resumes from its state
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
    def new_bookings(events: list[Event]) -> list[Event]:
        new = [e for e in events if not e["event"]["is_reschedule"]]
        print(f"{len(new)} new booking(s); {len(events) - len(new)} reschedule(s) left to hcp_reschedule_notices")
        return new

    @task
    def text_customer(event: Event, company: Company) -> dict[str, Any]:
        mobile = (event["job"].get("customer") or {}).get("mobile_number")
        if not _wants_messages(event):
            raise AirflowSkipException(f"{event['customer_name']} turned notifications off")
        if not mobile:
            raise AirflowSkipException(f"{event['customer_name']} has no mobile number")
        sent = send_sms(mobile, confirmation_text(event, company), sms_conn_id=SMS_CONN_ID)
        return {"job_id": event["job"]["id"], "sid": sent.get("sid")}

    @task
    def email_customer(event: Event, company: Company) -> dict[str, Any]:
        if not _wants_messages(event):
            raise AirflowSkipException(f"{event['customer_name']} turned notifications off")
        if not event["customer_email"]:
            raise AirflowSkipException(f"{event['customer_name']} has no email address")
        subject, text = confirmation_email(event, company)
        send_email(event["customer_email"], subject, text, smtp_conn_id=SMTP_CONN_ID)
        return {"job_id": event["job"]["id"], "subject": subject}

    @task
    def sync_crm(event: Event, company: Company) -> dict[str, Any]:
        """Find or create the contact by email; tag it with the job type; store the job ID and window."""
        job, customer = event["job"], event["job"].get("customer") or {}
        email = (event["customer_email"] or "").strip().lower()
        if not email:
            raise AirflowSkipException(f"{event['customer_name']} has no email address: the CRM is keyed by email")
        db = crm()
        p = db.placeholder
        row = db.get_first(f"SELECT tags, lifecycle_stage FROM crm_contacts WHERE email = {p}", parameters=(email,))
        fields = {
            "first_name": customer.get("first_name"),
            "last_name": customer.get("last_name"),
            "phone": customer.get("mobile_number") or event["customer_phone"],
            "hcp_customer_id": customer.get("id"),
            "tags": _merge_tags(row[0] if row else None, job_type_name(job)),
            "hcp_job_id": job["id"],
            "scheduled_window": format_window(job.get("schedule"), company["time_zone"]),
            # A booking moves a lead on; it never moves a contact back from a later stage.
            "lifecycle_stage": STAGE_BOOKED if row is None or row[1] in (None, "", STAGE_LEAD) else row[1],
            "updated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        if row is None:  # two runs creating the same contact at once: one insert wins, the other's retry updates
            columns = ["email", *fields]
            sql = f"INSERT INTO crm_contacts ({', '.join(columns)}) VALUES ({', '.join([p] * len(columns))})"
            db.run(sql, parameters=(email, *fields.values()))
        else:
            assignments = ", ".join(f"{column} = {p}" for column in fields)
            db.run(f"UPDATE crm_contacts SET {assignments} WHERE email = {p}", parameters=(*fields.values(), email))
        print(f"CRM contact {email} {'created' if row is None else 'updated'}: tags {fields['tags']!r}")
        return {"email": email, "created": row is None, **fields}

    profile = company()
    booked = new_bookings(bookings.output)
    text_customer.partial(company=profile).expand(event=booked)
    email_customer.partial(company=profile).expand(event=booked)
    ensure_crm_table >> sync_crm.partial(company=profile).expand(event=booked)
