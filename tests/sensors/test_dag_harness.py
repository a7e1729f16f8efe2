from __future__ import annotations

import importlib.util

from tests.conftest import TEST_DAGS, run_dag, xcom


def test_dag_test_runs_and_xcom_is_readable(airflow_db: None) -> None:
    spec = importlib.util.spec_from_file_location("smoke_dag", TEST_DAGS / "smoke_dag.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    dag_run = run_dag(module.dag)
    assert dag_run.state == "success"
    assert xcom(dag_run, "produce") == "cus_smoke"
