"""Event-driven completion follow-up: one DAG run per batch of completed Housecall Pro jobs.

**The business problem.** The same as `hcp_job_completed_followup` (thank the customer when the job is
done) — run by Airflow's event-driven scheduling instead of a sensor: each completion is an asset event.

**How it works.**

1. The asset `housecallpro://jobs/completed` has an `AssetWatcher` whose trigger, `JobCompletedEventTrigger`,
   polls Housecall Pro from the triggerer and turns each completion into an asset event carrying the job and its
   customer.
2. The DAG is scheduled on that asset *or* every 15 minutes (`AssetOrTimeSchedule`), so an event Airflow leaves
   unattached to a run waits at most one sweep.
3. `new_events` calls `job_events(context, asset)`: each completion once, whatever Airflow delivers.
4. `thank` texts the customer (paid: a thank-you; unpaid: a thank-you with the balance due); `log_events` writes one
   row per event to the CRM's activity log (`hcp_job_event_log`).

**For production, change:** the connections (`housecallpro_default`, `sms_default`, `hcp_crm`), the texts, and
`JobCompletedEventTrigger(filters=...)`. Keep `max_active_runs=1`.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from typing import Any

import pendulum
from airflow.providers.common.compat.sdk import AirflowSkipException  # one import for Airflow 3.0 - 3.3
from airflow.providers.common.sql.hooks.sql import DbApiHook
from airflow.providers.common.sql.operators.sql import SQLExecuteQueryOperator
from airflow.sdk import DAG, Asset, AssetWatcher, task
from airflow.timetables.assets import AssetOrTimeSchedule
from airflow.timetables.trigger import CronTriggerTimetable
from hcp_messaging import format_money, job_title, send_sms

from airflow_provider_housecallpro.assets import job_events
from airflow_provider_housecallpro.triggers.events import JobCompletedEventTrigger

HCP_CONN_ID = "housecallpro_default"
POLL_SECONDS = float(os.environ.get("HCP_POLL_SECONDS", "60"))
SMS_CONN_ID = "sms_default"
CRM_CONN_ID = "hcp_crm"

Event = dict[str, Any]

completions = Asset(
    "housecallpro://jobs/completed",
    watchers=[
        AssetWatcher(
            name="housecallpro_completions",
            trigger=JobCompletedEventTrigger(
                name="hcp_watch_completions", housecallpro_conn_id=HCP_CONN_ID, poll_interval=POLL_SECONDS
            ),
        )
    ],
)


LOG_FIELDS = ["event_id", "event_type", "is_reschedule", "hcp_job_id", "dag_id", "run_id", "handled_at"]


def log_rows(events: list[Event], dag_id: str, run_id: str) -> list[tuple[Any, ...]]:
    now = datetime.now(UTC).isoformat(timespec="seconds")
    return [
        (e["event"]["id"], e["event"]["type"], int(e["event"]["is_reschedule"]), e["job"]["id"], dag_id, run_id, now)
        for e in events
    ]


def thank_you(event: Event) -> str:
    job, customer = event["job"], event["job"].get("customer") or {}
    text = f"Thanks {customer.get('first_name') or 'there'} for choosing us for your {job_title(job)}!"
    if event["is_paid"] is False:
        text += f" Your balance of {format_money(job.get('outstanding_balance'))} is due."
    return text


with DAG(
    dag_id="hcp_watch_completions",
    description="Housecall Pro job completed (asset event) -> thank the customer, log it in the CRM",
    schedule=AssetOrTimeSchedule(timetable=CronTriggerTimetable("*/15 * * * *", timezone="UTC"), assets=completions),
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    default_args={"retries": 2, "retry_delay": timedelta(seconds=30)},
    tags=["housecallpro", "example", "event-driven"],
    doc_md=__doc__,
) as dag:

    @task(inlets=[completions])
    def new_events(**context: Any) -> list[Event]:
        return job_events(context, completions)

    @task
    def thank(event: Event) -> str:
        customer = event["job"].get("customer") or {}
        if customer.get("notifications_enabled") is False or not customer.get("mobile_number"):
            raise AirflowSkipException(f"{event['customer_name']}: notifications off or no mobile number")
        send_sms(customer["mobile_number"], thank_you(event), sms_conn_id=SMS_CONN_ID)
        return str(event["event"]["id"])

    ensure_table = SQLExecuteQueryOperator(task_id="ensure_event_log", conn_id=CRM_CONN_ID, sql="sql/job_event_log.sql")

    @task
    def log_events(events: list[Event], **context: Any) -> int:
        rows = log_rows(events, context["dag"].dag_id, context["run_id"])
        if rows:
            DbApiHook.get_hook(CRM_CONN_ID).insert_rows("hcp_job_event_log", rows, target_fields=LOG_FIELDS)
        return len(rows)

    events = new_events()
    thank.expand(event=events)
    ensure_table >> log_events(events)
