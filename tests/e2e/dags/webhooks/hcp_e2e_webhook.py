"""The webhook end-to-end scenario's DAGs (tests/e2e/test_webhooks.py).

``hcp_e2e_webhook_jobs``: one asset, a bookings and a completions watcher with ``webhooks=True`` on the connection
``hcp_e2e_webhook`` (whose ``webhook_secret`` the API-server plugin checks), polling only hourly so what arrives
within the test came through the webhook, or through the first poll after a triggerer restart (the safety net). The
two intervals differ: a watcher joining a peer with the same interval would first poll at the peer's next tick.

``hcp_e2e_webhook_customers``: scheduled on the raw ``customer.created`` webhook asset (no watcher, no polling),
reading it with ``webhook_events()``.

Both record what they process in the SQLite file ``HCP_E2E_WEBHOOK_LOG``.
"""

from __future__ import annotations

import os
import sqlite3
from datetime import timedelta
from typing import Any

import pendulum
from airflow.sdk import DAG, Asset, AssetWatcher, task
from airflow.timetables.assets import AssetOrTimeSchedule
from airflow.timetables.trigger import CronTriggerTimetable

from airflow_provider_housecallpro.assets import job_events, webhook_asset, webhook_events
from airflow_provider_housecallpro.triggers.events import JobCompletedEventTrigger, JobScheduledEventTrigger

CONN = "hcp_e2e_webhook"

jobs = Asset(
    "hcp_e2e_webhook_jobs",
    uri="housecallpro://e2e/webhook/jobs",
    watchers=[
        AssetWatcher(
            name="hcp_e2e_webhook_bookings",
            trigger=JobScheduledEventTrigger(
                name="hcp_e2e_webhook_bookings", housecallpro_conn_id=CONN, webhooks=True, poll_interval=3600
            ),
        ),
        AssetWatcher(
            name="hcp_e2e_webhook_completions",
            trigger=JobCompletedEventTrigger(
                name="hcp_e2e_webhook_completions", housecallpro_conn_id=CONN, webhooks=True, poll_interval=3540
            ),
        ),
    ],
)
new_customers = webhook_asset("customer.created")


def record(table: str, rows: list[tuple[Any, ...]]) -> None:
    with sqlite3.connect(os.environ["HCP_E2E_WEBHOOK_LOG"], timeout=60) as db:
        db.execute(f"CREATE TABLE IF NOT EXISTS {table} (a, b, c, d, run_id)")
        db.executemany(f"INSERT INTO {table} VALUES (?, ?, ?, ?, ?)", rows)


with DAG(
    dag_id="hcp_e2e_webhook_jobs",
    # Every minute as well: an event Airflow leaves unattached to a run waits at most a minute (README).
    schedule=AssetOrTimeSchedule(timetable=CronTriggerTimetable("* * * * *", timezone="UTC"), assets=jobs),
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    default_args={"retries": 2, "retry_delay": timedelta(seconds=5)},
):

    @task(inlets=[jobs])
    def process(**context: Any) -> int:
        events = job_events(context, jobs)
        record(
            "jobs",
            [
                (
                    e["event"]["id"],
                    e["event"]["type"],
                    int(e["event"]["is_reschedule"]),
                    e["job"]["id"],
                    context["run_id"],
                )
                for e in events
            ],
        )
        return len(events)

    process()


with DAG(
    dag_id="hcp_e2e_webhook_customers",
    schedule=AssetOrTimeSchedule(timetable=CronTriggerTimetable("* * * * *", timezone="UTC"), assets=new_customers),
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
):

    @task(inlets=[new_customers])
    def greet(**context: Any) -> int:
        events = webhook_events(context, new_customers)
        record(
            "customers",
            [(e["webhook"]["id"], e["webhook"]["event"], e["customer"]["id"], "", context["run_id"]) for e in events],
        )
        return len(events)

    greet()
