"""Masking probe: prints the Housecall Pro API key the ways a careless DAG author might (the e2e tests check that
the task log shows ``***`` instead)."""

from __future__ import annotations

import logging

import pendulum
from airflow.sdk import DAG, task

with DAG("hcp_e2e_mask_probe", schedule=None, start_date=pendulum.datetime(2026, 1, 1), catchup=False):

    @task
    def print_the_key() -> str:
        from airflow_provider_housecallpro.hooks.housecallpro import HousecallProHook

        hook = HousecallProHook("housecallpro_default")
        company = hook.get_company()  # the key is real: the sandbox accepts it
        conn = hook.get_connection("housecallpro_default")
        print(f"probe print: api key = {conn.password}")
        logging.getLogger("hcp.probe").info("probe log: connection uri = %s", conn.get_uri())
        return company.name

    print_the_key()
