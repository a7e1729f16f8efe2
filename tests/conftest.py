"""Shared fixtures: an isolated AIRFLOW_HOME, one live sandbox per session (with the example DAGs' message sinks),
a connection pointing at it."""

from __future__ import annotations

import json
import logging
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

# Before anything imports Airflow: a private, throw-away AIRFLOW_HOME.
_AIRFLOW_HOME = Path(tempfile.mkdtemp(prefix="hcp-airflow-home-"))
REPO = Path(__file__).resolve().parent.parent
TEST_DAGS = REPO / "tests" / "dags"
EXAMPLE_DAGS = REPO / "example_dags"
os.environ["AIRFLOW_HOME"] = str(_AIRFLOW_HOME)
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
# dag.test() (Airflow >= 3.3) only runs DAGs it finds in a configured bundle: the suite's own test DAGs
# and the example DAGs, each a local bundle.
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(TEST_DAGS)
os.environ["AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST"] = json.dumps(
    [
        {
            "name": name,
            "classpath": "airflow.dag_processing.bundles.local.LocalDagBundle",
            "kwargs": {"path": str(path), "refresh_interval": 0},
        }
        for name, path in (("hcp_test_dags", TEST_DAGS), ("hcp_example_dags", EXAMPLE_DAGS))
    ]
)

from hcp_messaging.sinks import SandboxWithSinks, SinkAdmin  # noqa: E402
from hypothesis import settings as hypothesis_settings  # noqa: E402

# CI runs the same examples every time (a property failure is reproducible, never a flake); locally each run
# explores new ones.
hypothesis_settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI"):
    hypothesis_settings.load_profile("ci")

# A distinctive key, so tests can assert it never shows up anywhere.
API_KEY = "hcp-test-SECRET-9f3c2a7e51"
CONN_ID = "housecallpro_default"
# The SMS sink's credentials (Twilio-style account SID and auth token); the token is a secret too.
SMS_SID = "ACtest00000000000000000000000000"
SMS_TOKEN = "sms-test-SECRET-0c7d99"
# Small, fast retry settings for the suite (the defaults are for production).
FAST = {"backoff_base": 0.01, "backoff_max": 0.05, "timeout": 2.0, "connect_timeout": 2.0}


def pytest_xdist_make_scheduler(config: pytest.Config, log: object) -> object:
    """pytest-xdist (``make test``'s ``-n 2``): every scenario on the shared Airflow (``tests/e2e/conftest.py``) goes
    to one worker, in order, and starts first (the biggest unit); any other test to whichever worker is free.
    (``--dist loadgroup`` with an ``xdist_group`` mark would say the same, but pytest 9 ignores the node id suffix it
    relies on: the scenarios were split over two workers, two Airflows.)"""
    from xdist.scheduler import LoadScopeScheduling

    from tests.e2e.conftest import SCENARIOS

    class SharedAirflowScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            name = nodeid.split("::")[-1].split("[")[0]
            return "shared-airflow" if nodeid.startswith("tests/e2e/") and name in SCENARIOS else nodeid

    return SharedAirflowScheduling(config, log)


def conn_json(url: str, api_key: str = API_KEY, **extra: object) -> str:
    return json.dumps({"conn_type": "housecallpro", "host": url, "password": api_key, "extra": extra})


@pytest.fixture(scope="session")
def sandbox() -> Iterator[SandboxWithSinks]:
    """The one sandbox of the session: the Housecall Pro API plus the SMS and SMTP sinks of the examples."""
    with SandboxWithSinks(
        api_key=API_KEY, seed=1, smtp_port=0, sms_account_sid=SMS_SID, sms_auth_token=SMS_TOKEN
    ) as server:
        yield server


@pytest.fixture
def admin(sandbox: SandboxWithSinks) -> Iterator[SinkAdmin]:
    """The sandbox's admin API, with a fresh world, no faults, an empty request log and no messages."""
    client = SinkAdmin(sandbox.url)
    client.reset(seed=1)
    yield client
    client.clear_faults()


@pytest.fixture
def connection(sandbox: SandboxWithSinks, monkeypatch: pytest.MonkeyPatch) -> str:
    """``housecallpro_default`` as an env-var connection (JSON) pointing at the sandbox."""
    monkeypatch.setenv(f"AIRFLOW_CONN_{CONN_ID.upper()}", conn_json(sandbox.url))
    return CONN_ID


@pytest.fixture
def hook(connection: str, admin: SinkAdmin):  # type: ignore[no-untyped-def]
    from airflow_provider_housecallpro.hooks.housecallpro import HousecallProHook

    h = HousecallProHook(connection, client_options=FAST)
    yield h
    h.close()


@pytest.fixture
def all_logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    """Capture every log record at DEBUG, httpx's and ours included."""
    caplog.set_level(logging.DEBUG)
    return caplog


@pytest.fixture(scope="session")
def airflow_db() -> None:
    """A fresh SQLite metadata DB in the suite's private AIRFLOW_HOME (for dag.test(), XCom, Variables)."""
    from airflow.utils import db

    db.initdb()


def run_dag(dag, **kwargs):  # type: ignore[no-untyped-def]
    """``dag.test()`` and return the DagRun (the DAG must live in tests/dags or example_dags)."""
    return dag.test(**kwargs)


def xcom(dag_run, task_id: str, key: str = "return_value", map_index: int = -1):  # type: ignore[no-untyped-def]
    """Read one XCom value of a finished dag run from the metadata DB."""
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        row = (
            session.query(XComModel)
            .filter_by(dag_id=dag_run.dag_id, run_id=dag_run.run_id, task_id=task_id, key=key, map_index=map_index)
            .one_or_none()
        )
        return None if row is None else XComModel.deserialize_value(row)
