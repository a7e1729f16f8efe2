"""Job completed: thank-you with a review link, then a receipt or a polite invoice reminder, and the CRM moves on.

**The business problem.** A plumber marks an emergency repair complete on Saturday morning. Within minutes the
homeowner should get a thank-you text with a one-tap review link; if the job was paid on site, a receipt with
the line items and the total; if not, a friendly reminder with a payment link. The CRM contact then moves to
the "Customer — Completed Job" lifecycle stage so the win-back nurture flow can pick them up later.

**How it works.** The DAG runs continuously, one run at a time (`@continuous`, `max_active_runs=1`):

1. `job_completed` — `JobCompletedSensor` (deferrable, polling every minute) returns the jobs
   completed since the previous run, each exactly once.
2. `thank_you` (`.expand()`, one per completed job): a text with the review link (an email when there is
   no mobile number). The link is the `review_url` param, else the Airflow Variable `hcp_review_url`.
3. `paid_jobs` / `unpaid_jobs` split the jobs on payment (`is_paid`: Housecall Pro's
   `outstanding_balance == 0`) and `route` (`@task.branch`) follows the receipt path, the reminder
   path, or both.
4. `send_receipt` reads the job's line items (`GET /jobs/{id}/line_items`) and emails the receipt with the
   total; `send_reminder` emails the balance due and the payment link (`payment_url` param, with
   `{invoice_number}` / `{job_id}` filled in). Both fall back to a text when there is no email address.
5. `advance_lifecycle` finds or creates the CRM contact by email and sets its stage.

Customers who turned notifications off in Housecall Pro get no messages; their CRM contact still moves on.

**For production, change:** the connections (`housecallpro_default`, `sms_default`, `smtp_default`,
`hcp_crm`; see `hcp_booking_confirmation_crm_sync`); the review link (Variable `hcp_review_url`, or the
`review_url` param default) and the payment link (`payment_url`: your invoice or payment portal); the
message texts (`thank_you_text`, `receipt_email`, `reminder_email`); `JobCompletedSensor(filters=...)`
to follow up on some jobs only.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from typing import Any

import pendulum
from airflow.providers.common.compat.sdk import AirflowSkipException  # one import for Airflow 3.0 - 3.3
from airflow.providers.common.sql.hooks.sql import DbApiHook
from airflow.providers.common.sql.operators.sql import SQLExecuteQueryOperator
from airflow.sdk import DAG, Param, Variable, get_current_context, task
from hcp_messaging import (
    format_money,
    format_phone,
    job_title,
    send_email,
    send_sms,
)

from airflow_provider_housecallpro.hooks.housecallpro import HousecallProHook
from airflow_provider_housecallpro.sensors.jobs import JobCompletedSensor

HCP_CONN_ID = "housecallpro_default"
# How often the sensor polls Housecall Pro (seconds); the demo and the end-to-end test poll faster.
POLL_SECONDS = float(os.environ.get("HCP_POLL_SECONDS", "60"))
SMS_CONN_ID = "sms_default"
SMTP_CONN_ID = "smtp_default"
CRM_CONN_ID = "hcp_crm"
STAGE_COMPLETED = "Customer — Completed Job"
DEFAULT_REVIEW_URL = "https://g.page/r/YOUR-BUSINESS/review"  # replace, or set the Variable hcp_review_url
DEFAULT_PAYMENT_URL = "https://pay.example.com/invoices/{invoice_number}"  # your payment portal

Event = dict[str, Any]
Company = dict[str, str]


# -- the messages -----------------------------------------------------------------------------------
def _first_name(event: Event) -> str:
    return (event["job"].get("customer") or {}).get("first_name") or "there"


def thank_you_text(event: Event, company: Company, review_url: str) -> str:
    return (
        f"Hi {_first_name(event)}, thank you for choosing {company['name']} today! "
        f"If you have a minute, we'd love a quick review: {review_url}"
    )


def _item_line(item: dict[str, Any]) -> str:
    quantity = item.get("quantity") or 1
    unit = int(item.get("unit_price") or 0)
    amount = item.get("amount")
    amount = unit * quantity if amount is None else amount
    return f"- {item.get('name') or 'Item'}: {quantity} x {format_money(unit)} = {format_money(amount)}"


def receipt_email(event: Event, company: Company, items: list[dict[str, Any]]) -> tuple[str, str]:
    """(subject, text) of the receipt: every line item, the total and the payment confirmation."""
    job = event["job"]
    n, total = job.get("invoice_number"), format_money(job.get("total_amount"))
    text = "\n\n".join(
        [
            f"Hi {_first_name(event)},",
            f"Thank you for your payment. Here is your receipt for job #{n} ({job_title(job)}):",
            "\n".join(_item_line(item) for item in items) or "- (no line items)",
            f"Total: {total}\nPaid in full. Balance: {format_money(job.get('outstanding_balance'))}",
            f"{company['name']} · {company['phone']}",
        ]
    )
    return f"Your receipt for job #{n}: {total}, paid in full", text


def receipt_text(event: Event, company: Company, items: list[dict[str, Any]]) -> str:
    job = event["job"]
    lines = "; ".join(_item_line(item)[2:] for item in items)
    return (
        f"Receipt for job #{job.get('invoice_number')} from {company['name']}: {lines}. "
        f"Total {format_money(job.get('total_amount'))}, paid in full. Thank you!"
    )


def reminder_email(event: Event, company: Company, payment_link: str) -> tuple[str, str]:
    job = event["job"]
    n, balance = job.get("invoice_number"), format_money(job.get("outstanding_balance"))
    text = "\n\n".join(
        [
            f"Hi {_first_name(event)},",
            f"Thanks again for choosing {company['name']}. Our records show a balance of {balance} "
            f"for job #{n} ({job_title(job)}).",
            f"You can pay securely here: {payment_link}",
            f"Already paid? Please ignore this message. Questions? Reply to this email or call {company['phone']}.",
            company["name"],
        ]
    )
    return f"Invoice for job #{n}: {balance} due", text


def reminder_text(event: Event, company: Company, payment_link: str) -> str:
    job = event["job"]
    return (
        f"Hi {_first_name(event)}, a friendly reminder from {company['name']}: "
        f"{format_money(job.get('outstanding_balance'))} is due for job #{job.get('invoice_number')}. "
        f"Pay here: {payment_link}. Already paid? Please ignore this message."
    )


def _wants_messages(event: Event) -> bool:
    return (event["job"].get("customer") or {}).get("notifications_enabled") is not False


def _mobile(event: Event) -> str | None:
    mobile: str | None = (event["job"].get("customer") or {}).get("mobile_number")
    return mobile


def crm() -> DbApiHook:
    hook: DbApiHook = DbApiHook.get_hook(CRM_CONN_ID)
    return hook


with DAG(
    dag_id="hcp_job_completed_followup",
    description="Housecall Pro job completed -> thank-you + review link -> receipt or invoice reminder -> CRM stage",
    schedule="@continuous",
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    default_args={"retries": 2, "retry_delay": timedelta(minutes=1)},
    params={
        "review_url": Param(
            None,
            type=["null", "string"],
            title="Review link",
            description="Review link for the thank-you (default: Variable hcp_review_url, else a placeholder).",
        ),
        "payment_url": Param(
            DEFAULT_PAYMENT_URL,
            type="string",
            title="Payment link",
            description="Payment link of the invoice reminder; {invoice_number} and {job_id} are filled in.",
        ),
        "since": Param(
            None,
            type=["null", "string"],
            title="Go-live (first run only)",
            description="First run only: also follow up on jobs completed after this ISO-8601 time "
            "(default: from when the run starts).",
        ),
    },
    tags=["housecallpro", "example"],
    doc_md=__doc__,
) as dag:
    completed = JobCompletedSensor(
        task_id="job_completed",
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
    def thank_you(event: Event, company: Company) -> dict[str, Any]:
        if not _wants_messages(event):
            raise AirflowSkipException(f"{event['customer_name']} turned notifications off")
        review_url = get_current_context()["params"]["review_url"] or Variable.get(
            "hcp_review_url", default=DEFAULT_REVIEW_URL
        )
        text = thank_you_text(event, company, review_url)
        if _mobile(event):
            send_sms(_mobile(event) or "", text, sms_conn_id=SMS_CONN_ID)
            return {"job_id": event["job"]["id"], "by": "sms"}
        if event["customer_email"]:
            send_email(event["customer_email"], f"Thank you from {company['name']}", text, smtp_conn_id=SMTP_CONN_ID)
            return {"job_id": event["job"]["id"], "by": "email"}
        raise AirflowSkipException(f"{event['customer_name']} has neither a mobile number nor an email address")

    @task
    def paid_jobs(events: list[Event]) -> list[Event]:
        return [e for e in events if e["is_paid"] is True]

    @task
    def unpaid_jobs(events: list[Event]) -> list[Event]:
        return [e for e in events if e["is_paid"] is False]

    # The branch decides per run which paths have work; each path then maps over its own events. (A branch
    # per event inside a mapped task group would not skip anything on Airflow >= 3.2: Airflow issue #67265.)
    @task.branch
    def route(paid: list[Event], unpaid: list[Event]) -> list[str]:
        return (["send_receipt"] if paid else []) + (["send_reminder"] if unpaid else [])

    @task
    def send_receipt(event: Event, company: Company) -> dict[str, Any]:
        if not _wants_messages(event):
            raise AirflowSkipException(f"{event['customer_name']} turned notifications off")
        items = HousecallProHook(HCP_CONN_ID).get_job_line_items(event["job"]["id"])
        if event["customer_email"]:
            subject, text = receipt_email(event, company, items)
            send_email(event["customer_email"], subject, text, smtp_conn_id=SMTP_CONN_ID)
            return {"job_id": event["job"]["id"], "by": "email", "items": len(items)}
        if _mobile(event):
            send_sms(_mobile(event) or "", receipt_text(event, company, items), sms_conn_id=SMS_CONN_ID)
            return {"job_id": event["job"]["id"], "by": "sms", "items": len(items)}
        raise AirflowSkipException(f"{event['customer_name']} has neither an email address nor a mobile number")

    @task
    def send_reminder(event: Event, company: Company) -> dict[str, Any]:
        if not _wants_messages(event):
            raise AirflowSkipException(f"{event['customer_name']} turned notifications off")
        job = event["job"]
        template = get_current_context()["params"]["payment_url"] or DEFAULT_PAYMENT_URL
        link = template.format_map({"invoice_number": job.get("invoice_number") or "", "job_id": job["id"]})
        if event["customer_email"]:
            subject, text = reminder_email(event, company, link)
            send_email(event["customer_email"], subject, text, smtp_conn_id=SMTP_CONN_ID)
            return {"job_id": job["id"], "by": "email"}
        if _mobile(event):
            send_sms(_mobile(event) or "", reminder_text(event, company, link), sms_conn_id=SMS_CONN_ID)
            return {"job_id": job["id"], "by": "sms"}
        raise AirflowSkipException(f"{event['customer_name']} has neither an email address nor a mobile number")

    @task
    def advance_lifecycle(event: Event) -> dict[str, Any]:
        """Find or create the CRM contact by email; set its stage to "Customer — Completed Job"."""
        job, customer = event["job"], event["job"].get("customer") or {}
        email = (event["customer_email"] or "").strip().lower()
        if not email:
            raise AirflowSkipException(f"{event['customer_name']} has no email address: the CRM is keyed by email")
        db = crm()
        p = db.placeholder
        exists = db.get_first(f"SELECT email FROM crm_contacts WHERE email = {p}", parameters=(email,))
        fields = {
            "first_name": customer.get("first_name"),
            "last_name": customer.get("last_name"),
            "phone": customer.get("mobile_number") or event["customer_phone"],
            "hcp_customer_id": customer.get("id"),
            "hcp_job_id": job["id"],
            "lifecycle_stage": STAGE_COMPLETED,
            "updated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        if exists is None:
            columns = ["email", *fields]
            sql = f"INSERT INTO crm_contacts ({', '.join(columns)}) VALUES ({', '.join([p] * len(columns))})"
            db.run(sql, parameters=(email, *fields.values()))
        else:
            assignments = ", ".join(f"{column} = {p}" for column in fields)
            db.run(f"UPDATE crm_contacts SET {assignments} WHERE email = {p}", parameters=(*fields.values(), email))
        return {"email": email, "created": exists is None, "lifecycle_stage": STAGE_COMPLETED}

    profile = company()
    events = completed.output
    thank_you.partial(company=profile).expand(event=events)
    paid, unpaid = paid_jobs(events), unpaid_jobs(events)
    route(paid, unpaid) >> [
        send_receipt.partial(company=profile).expand(event=paid),
        send_reminder.partial(company=profile).expand(event=unpaid),
    ]
    ensure_crm_table >> advance_lifecycle.expand(event=events)
