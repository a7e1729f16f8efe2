"""A minimal DAG proving dag.test() + XCom work in the suite's Airflow setup (both Airflow versions)."""

from __future__ import annotations

import pendulum
from airflow.sdk import DAG, task

with DAG("hcp_smoke", schedule=None, start_date=pendulum.datetime(2026, 1, 1), catchup=False) as dag:

    @task
    def produce() -> str:
        return "cus_smoke"

    produce()
