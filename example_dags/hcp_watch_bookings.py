"""Event-driven booking notices: one DAG run per batch of Housecall Pro bookings and reschedules.

**The business problem.** The same as `hcp_booking_confirmation_crm_sync` and `hcp_reschedule_notices`
(confirm a booking, tell the customer when it moves) — but run by Airflow's event-driven scheduling instead of
a sensor in an always-running DAG: nothing occupies a DAG run while nothing happens, and the Assets view shows
each change as an asset event.

**How it works.**

1. The asset `housecallpro://jobs/scheduled` has an `AssetWatcher` whose trigger,
   `JobScheduledEventTrigger`, polls Housecall Pro from the triggerer (every minute; the account's one shared
   poll) and turns each booking or reschedule into an asset event carrying the job and its customer. With
   `HCP_WEBHOOKS=1` it runs with `webhooks=True`: Housecall Pro's signed webhooks bring each change within about
   two seconds, and the poll, every 15 minutes, only catches what a delivery missed (README "Real-time
   (webhooks)"; `make demo` shows it).
2. The DAG is scheduled on that asset *or* every 15 minutes (`AssetOrTimeSchedule`): on Airflow 3.0-3.3 an event
   that arrives while a run is being created is left for the next run, and the 15-minute sweep picks it up.
3. `new_events` calls `job_events(context, asset)`: the run's events plus any the asset holds that no run of
   this DAG has processed, minus those already processed (a ledger keyed by `event.id`). Each change is
   processed once, even when Airflow delivers it twice (triggerer restart, two triggerers on Airflow 3.0-3.2).
4. `notify` texts the customer per event ("booked" or "moved to"); `log_events` writes one row per event to the
   CRM's activity log (`hcp_job_event_log`).

**For production, change:** the connections (`housecallpro_default`, `sms_default`, `hcp_crm`), the texts,
`JobScheduledEventTrigger(filters=...)` to watch only some jobs, and `webhooks=True` once Housecall Pro posts its
webhooks to Airflow (the connection's webhook secret set). Keep `max_active_runs=1`: the ledger is read and
written by one run at a time.
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
from hcp_messaging import format_window, job_title, send_sms

from airflow_provider_housecallpro.assets import job_events
from airflow_provider_housecallpro.triggers.events import JobScheduledEventTrigger

HCP_CONN_ID = "housecallpro_default"
WEBHOOKS = os.environ.get("HCP_WEBHOOKS") == "1"  # real time through Housecall Pro's webhooks (the demo turns it on)
# Every minute; with webhooks every 15 minutes (the safety net). The end-to-end test polls faster.
POLL_SECONDS = float(os.environ.get("HCP_POLL_SECONDS", "900" if WEBHOOKS else "60"))
SMS_CONN_ID = "sms_default"
CRM_CONN_ID = "hcp_crm"

Event = dict[str, Any]

bookings = Asset(
    "housecallpro://jobs/scheduled",
    watchers=[
        AssetWatcher(
            name="housecallpro_bookings",
            trigger=JobScheduledEventTrigger(
                name="hcp_watch_bookings",
                housecallpro_conn_id=HCP_CONN_ID,
                poll_interval=POLL_SECONDS,
                webhooks=WEBHOOKS,
            ),
        )
    ],
)


def notice(event: Event) -> str:
    job, customer = event["job"], event["job"].get("customer") or {}
    when = format_window(job.get("schedule"), "UTC")
    first = customer.get("first_name") or "there"
    if event["event"]["is_reschedule"]:
        return f"Hi {first}, your {job_title(job)} visit has moved to {when}. Job #{job.get('invoice_number')}."
    return f"Hi {first}, your {job_title(job)} visit is booked for {when}. Job #{job.get('invoice_number')}."


LOG_FIELDS = ["event_id", "event_type", "is_reschedule", "hcp_job_id", "dag_id", "run_id", "handled_at"]


def log_rows(events: list[Event], dag_id: str, run_id: str) -> list[tuple[Any, ...]]:
    now = datetime.now(UTC).isoformat(timespec="seconds")
    return [
        (e["event"]["id"], e["event"]["type"], int(e["event"]["is_reschedule"]), e["job"]["id"], dag_id, run_id, now)
        for e in events
    ]


with DAG(
    dag_id="hcp_watch_bookings",
    description="Housecall Pro booking or reschedule (asset event) -> text the customer, log it in the CRM",
    schedule=AssetOrTimeSchedule(timetable=CronTriggerTimetable("*/15 * * * *", timezone="UTC"), assets=bookings),
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    default_args={"retries": 2, "retry_delay": timedelta(seconds=30)},
    tags=["housecallpro", "example", "event-driven"],
    doc_md=__doc__,
) as dag:

    @task(inlets=[bookings])
    def new_events(**context: Any) -> list[Event]:
        return job_events(context, bookings)

    @task
    def notify(event: Event) -> str:
        customer = event["job"].get("customer") or {}
        if customer.get("notifications_enabled") is False or not customer.get("mobile_number"):
            raise AirflowSkipException(f"{event['customer_name']}: notifications off or no mobile number")
        send_sms(customer["mobile_number"], notice(event), sms_conn_id=SMS_CONN_ID)
        return str(event["event"]["id"])

    ensure_table = SQLExecuteQueryOperator(task_id="ensure_event_log", conn_id=CRM_CONN_ID, sql="sql/job_event_log.sql")

    @task
    def log_events(events: list[Event], **context: Any) -> int:
        rows = log_rows(events, context["dag"].dag_id, context["run_id"])
        if rows:
            DbApiHook.get_hook(CRM_CONN_ID).insert_rows("hcp_job_event_log", rows, target_fields=LOG_FIELDS)
        return len(rows)

    events = new_events()
    notify.expand(event=events)
    ensure_table >> log_events(events)
