"""DAGs for the CreateCustomerOperator tests (run with dag.test() against the sandbox).

``hcp_create_customer`` takes every input from ``dag_run.conf`` through plain (string) Jinja templates, the
way most DAGs are written; ``hcp_create_customer_from_form`` feeds the operator XComArgs from an upstream
task (native rendering) and hands the new ID to a downstream task.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pendulum
from airflow.sdk import DAG, get_current_context, task

from airflow_provider_housecallpro.operators.customers import CreateCustomerOperator

START = pendulum.datetime(2026, 1, 1)
# A retry runs right away under dag.test(), so the tests can observe a second try.
RETRIES: dict[str, Any] = {"retries": 1, "retry_delay": timedelta(seconds=0)}


def conf(key: str, default: str = "") -> str:
    """A template for an optional ``dag_run.conf`` key; missing or null renders as ``default``."""
    return "{{ dag_run.conf.get('%s') or '%s' }}" % (key, default)  # noqa: UP031 (Jinja braces)


with DAG("hcp_create_customer", schedule=None, start_date=START, catchup=False, default_args=RETRIES) as dag:
    CreateCustomerOperator(
        task_id="create_customer",
        housecallpro_conn_id=conf("conn_id", "housecallpro_default"),
        first_name="{{ dag_run.conf['first_name'] }}",
        last_name="{{ dag_run.conf['last_name'] }}",
        email_address=conf("email"),
        company=conf("company"),
        mobile_number=conf("mobile_number"),
        home_number=conf("home_number"),
        work_number=conf("work_number"),
        notes=conf("notes"),
        tags=conf("tags"),
        lead_source=conf("lead_source"),
        notifications_enabled="{{ dag_run.conf.get('notifications_enabled', '') }}",
        address=conf("address"),
        if_exists=conf("if_exists", "return_existing"),
        dry_run="{{ dag_run.conf.get('dry_run', False) }}",
    )


with DAG(
    "hcp_create_customer_from_form",
    schedule=None,
    start_date=START,
    catchup=False,
    render_template_as_native_obj=True,
) as form_dag:

    @task(multiple_outputs=True)
    def read_form() -> dict[str, Any]:
        """Stands in for a web-form or CRM extract: one contact row ("" = field left empty on the form)."""
        row = get_current_context()["dag_run"].conf or {}
        keys = ("first_name", "last_name", "email", "mobile_number", "tags", "address")
        return {key: row.get(key) or "" for key in keys}

    @task
    def welcome(customer_id: str) -> str:
        return f"welcome {customer_id}"

    contact = read_form()
    customer_id = CreateCustomerOperator(
        task_id="create_customer",
        first_name=contact["first_name"],
        last_name=contact["last_name"],
        email_address=contact["email"],
        mobile_number=contact["mobile_number"],
        tags=contact["tags"],
        address=contact["address"],
    ).output
    welcome(customer_id)
