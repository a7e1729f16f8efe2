"""One real Airflow per test session, shared by every end-to-end scenario in turn.

Starting an Airflow (migrate a metadata DB, four components, every DAG parsed) costs about a minute; the
scenarios themselves are what prove behaviour. So the package starts one stack (``e2e``) with every DAG the
scenarios use (the example DAGs, and ``tests/e2e/dags``: the one-asset-two-watchers DAG, the masking probe and
the webhook scenario's DAGs)
and each scenario gets it through the ``airflow`` fixture, starting from what a fresh Airflow would give it:

- nothing runs: every DAG paused, every run deleted (so an @continuous DAG's sensor starts afresh), no trigger
  left (``AirflowStack.quiesce``);
- no watcher state, no consumer ledger and no asset event: each watcher goes live again when its DAG is unpaused,
  as on a new deployment (this provider's Variables and 3.3 asset-state rows, and every asset event, deleted);
- an empty CRM and an empty event log (the example DAGs' SQLite files), no messages in the sinks, no faults and
  an empty request log in the sandbox.

The sandbox's world is *not* reset between scenarios (``admin`` below): a Housecall Pro account only moves
forward, and a reset would bring back job ids a watcher's state may still know. Each scenario makes its own
customers and jobs and asserts only on those.

The scenarios run in the order of ``SCENARIOS`` (the completion scenario first: it holds the first trigger poll
of a fresh account); the last, ``test_nothing_leaked.py``, stops the stack and searches every file it wrote for
secrets and trigger failures. Under pytest-xdist one worker runs them all on its stack while the other runs the
rest of the suite (tests/conftest.py).
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from hcp_messaging.sinks import SandboxWithSinks, SinkAdmin

from tests.conftest import CONN_ID, EXAMPLE_DAGS, conn_json
from tests.e2e.airflow_stack import AirflowStack

E2E_DAGS = Path(__file__).parent / "dags"
# Every test that runs on the shared stack, in the order they run (test function names).
SCENARIOS = (
    "test_completion_dag_defers_succeeds_and_shows_the_key_only_masked",
    "test_continuous_dags_handle_each_change_once_over_consecutive_runs",
    "test_one_asset_two_watchers_through_a_triggerer_kill",
    "test_each_change_is_processed_once_through_two_triggerers_a_kill_and_a_pause",
    "test_webhooks_end_to_end",
    "test_no_secret_and_no_trigger_failure_anywhere_after_every_scenario",
)


@dataclass
class SharedAirflow:
    stack: AirflowStack
    crm: Path  # the example DAGs' CRM (SQLite), connection ``hcp_crm``
    processed: Path  # the two-watchers DAG's log of processed events (``HCP_E2E_LOG``)
    webhook_log: Path  # the webhook scenario's DAGs' log (``HCP_E2E_WEBHOOK_LOG``)
    ran: list[str] = field(default_factory=list)  # the scenarios that ran on it, in order


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The shared stack's tests in ``SCENARIOS`` order (in the slots they had). Under pytest-xdist they all go to one
    worker (``pytest_xdist_make_scheduler`` in tests/conftest.py)."""
    slots = [i for i, item in enumerate(items) if item.originalname in SCENARIOS]  # type: ignore[attr-defined]
    ordered = sorted((items[i] for i in slots), key=lambda item: SCENARIOS.index(item.originalname))  # type: ignore[attr-defined]
    for slot, item in zip(slots, ordered, strict=True):
        items[slot] = item


@pytest.fixture
def admin(sandbox: SandboxWithSinks) -> Iterator[SinkAdmin]:
    """The sandbox's admin API: no faults, an empty request log, no messages — and the world as it is."""
    client = SinkAdmin(sandbox.url)
    client.clear_faults()
    client.clear_requests()
    client.clear_messages()
    yield client
    client.clear_faults()


@pytest.fixture(scope="package")
def e2e(sandbox: SandboxWithSinks, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SharedAirflow]:
    from tests.e2e.test_webhooks import webhook_env  # (that module imports this one)

    SinkAdmin(sandbox.url).reset(seed=1)  # once: whatever earlier tests did to the world, faults or clock
    scratch = tmp_path_factory.mktemp("e2e")
    crm, processed, webhook_log = scratch / "crm.db", scratch / "processed.db", scratch / "webhook-processed.db"
    env = {
        **webhook_env(sandbox, webhook_log),  # its own connection, with the webhook secret
        **sandbox.airflow_connections(),  # the SMS and SMTP sinks
        f"AIRFLOW_CONN_{CONN_ID.upper()}": conn_json(sandbox.url, timeout=10),
        "AIRFLOW_CONN_HCP_CRM": json.dumps({"conn_type": "sqlite", "host": str(crm)}),
        "HCP_POLL_SECONDS": "2",  # the example DAGs' sensors and watchers poll every 2 s instead of every minute
        "HCP_E2E_LOG": str(processed),
        "AIRFLOW__CORE__TEST_CONNECTION": "Enabled",  # the UI's Test button
    }
    bundles = {"hcp_e2e_examples": EXAMPLE_DAGS, "hcp_e2e_dags": E2E_DAGS}
    with AirflowStack(scratch / "airflow-home", bundles, env=env) as stack:
        yield SharedAirflow(stack, crm, processed, webhook_log)


@pytest.fixture
def airflow(e2e: SharedAirflow, request: pytest.FixtureRequest) -> Iterator[AirflowStack]:
    """The shared stack, for one scenario, as a fresh Airflow would be (see the module's docstring)."""
    e2e.ran.append(request.node.name)
    yield e2e.stack
    if "triggerer" not in e2e.stack.procs:  # a scenario that failed between killing and restarting it
        e2e.stack.restart("triggerer", like="triggerer")
    forget(e2e)


def forget(e2e: SharedAirflow) -> None:
    """Back to a fresh Airflow's state after a scenario: nothing running, no stored state, empty databases."""
    stack = e2e.stack
    stack.quiesce()
    with contextlib.closing(sqlite3.connect(stack.home / "airflow.db", timeout=120)) as db, db:
        db.execute("DELETE FROM variable WHERE key LIKE 'housecallpro%'")  # watcher states (3.0-3.2), ledgers
        # No asset event yet: a consumer whose runs are gone would otherwise be handed every earlier event as the
        # trigger of its first asset-triggered run (Airflow attaches the events since its previous one).
        for table in ("asset_dag_run_queue", "dagrun_asset_event", "asset_event"):
            db.execute(f"DELETE FROM {table}")
        tables = {name for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if "asset_state_store" in tables:  # Airflow >= 3.3: watcher states in their assets' stores
            db.execute("DELETE FROM asset_state_store WHERE key LIKE 'housecallpro.%'")
    for db_file in (e2e.crm, e2e.processed, e2e.webhook_log):
        for path in (db_file, db_file.with_name(db_file.name + "-wal"), db_file.with_name(db_file.name + "-shm")):
            path.unlink(missing_ok=True)
