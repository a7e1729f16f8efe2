"""One asset, two watchers (bookings and completions), one consumer: the end-to-end test's DAG.

The consumer records every event ``job_events()`` hands it in a SQLite file (``HCP_E2E_LOG``), one row each, so the
test can check each change was processed exactly once.
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

from airflow_provider_housecallpro.assets import job_events
from airflow_provider_housecallpro.triggers.events import JobCompletedEventTrigger, JobScheduledEventTrigger

POLL_SECONDS = float(os.environ.get("HCP_POLL_SECONDS", "60"))

jobs = Asset(
    "housecallpro://e2e/jobs",
    watchers=[
        AssetWatcher(
            name="e2e_bookings",
            trigger=JobScheduledEventTrigger(name="e2e_bookings", poll_interval=POLL_SECONDS),
        ),
        AssetWatcher(
            name="e2e_completions",
            trigger=JobCompletedEventTrigger(name="e2e_completions", poll_interval=POLL_SECONDS),
        ),
    ],
)

with DAG(
    dag_id="hcp_e2e_two_watchers",
    # Every minute as well: an event Airflow leaves unattached to a run waits at most a minute (README).
    schedule=AssetOrTimeSchedule(timetable=CronTriggerTimetable("* * * * *", timezone="UTC"), assets=jobs),
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    # As the example DAGs: Airflow 3.0.6's executor can fail a try before it starts ("TI was not in a state where it
    # could be marked as running", seen once here); a retry is shown the same events (job_events' ledger).
    default_args={"retries": 2, "retry_delay": timedelta(seconds=5)},
):

    @task(inlets=[jobs])
    def process(**context: Any) -> int:
        events = job_events(context, jobs)
        rows = [
            (e["event"]["id"], e["event"]["type"], int(e["event"]["is_reschedule"]), e["job"]["id"], context["run_id"])
            for e in events
        ]
        with sqlite3.connect(os.environ["HCP_E2E_LOG"], timeout=60) as db:
            db.execute("CREATE TABLE IF NOT EXISTS processed (event_id, event_type, is_reschedule, job_id, run_id)")
            db.executemany("INSERT INTO processed VALUES (?, ?, ?, ?, ?)", rows)
        return len(rows)

    process()
