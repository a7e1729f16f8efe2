"""Test DAG: a deferrable JobCompletedSensor feeding a mapped downstream task (used by the suite)."""

from __future__ import annotations

from typing import Any

import pendulum
from airflow.sdk import DAG, task

from airflow_provider_housecallpro.sensors.jobs import JobCompletedSensor, JobScheduledSensor

with DAG(
    "hcp_test_job_completed",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    render_template_as_native_obj=True,
) as dag:
    completed = JobCompletedSensor(
        task_id="job_completed",
        filters={"customer_ids": "{{ dag_run.conf['customer_ids'] }}"},
        poke_interval=0.05,
        timeout=120,
        client_options={"backoff_base": 0.01, "timeout": 5},
    )

    @task
    def thank(event: dict[str, Any]) -> str:
        return f"Thanks {event['customer_name']} for job {event['job']['id']}"

    thank.expand(event=completed.output)


with DAG(
    "hcp_test_job_scheduled",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    render_template_as_native_obj=True,
) as scheduled_dag:
    scheduled = JobScheduledSensor(
        task_id="job_scheduled",
        filters={"customer_ids": "{{ dag_run.conf['customer_ids'] }}"},
        poke_interval=0.05,
        timeout=120,
        client_options={"backoff_base": 0.01, "timeout": 5},
    )

    @task(multiple_outputs=False)  # one XCom per event (3.0 cannot push a None-valued key of its own)
    def handle(event: dict[str, Any]) -> dict[str, Any]:
        previous = event["event"]["previous_schedule"]
        return {
            "id": event["event"]["id"],
            "job": event["job"]["id"],
            "is_reschedule": event["event"]["is_reschedule"],
            "previous_start": previous and previous["scheduled_start"],
            "start": event["job"]["schedule"]["scheduled_start"],
        }

    handle.expand(event=scheduled.output)
