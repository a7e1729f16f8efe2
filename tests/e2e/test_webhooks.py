"""End to end, real time: the sandbox's signed webhooks → the API-server plugin → the job watchers' state → asset
events → a consumer DAG, under a real Airflow (3.0.6 in .venv-floor, 3.3.2 in .venv).

The watchers poll only hourly, so within the test a change reaches the consumer through the webhook — or, after a
triggerer restart, through the watcher's first poll (the safety net when deliveries were lost). The oracle is the
list of changes the scenario made; the consumer records every event ``job_events()`` hands it.

:func:`webhook_scenario` takes a running stack (with :func:`webhook_env` and :data:`WEBHOOK_DAGS` in it) and the
sandbox, so it can share one Airflow with the other e2e scenarios.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest
from hcp_messaging.sinks import SandboxWithSinks, SinkAdmin

from airflow_provider_housecallpro.webhooks import inbox
from tests.conftest import API_KEY, conn_json
from tests.e2e.airflow_stack import AirflowStack, free_port
from tests.e2e.conftest import SharedAirflow
from tests.support.webhooks import oracle_signature

pytestmark = pytest.mark.e2e

WEBHOOK_DAGS = Path(__file__).parent / "dags" / "webhooks"
CONN = "hcp_e2e_webhook"
SECRET = "hcp-e2e-webhook-SECRET-4d1f9b"
JOBS_DAG, CUSTOMERS_DAG = "hcp_e2e_webhook_jobs", "hcp_e2e_webhook_customers"
ASSET_URI = "housecallpro://e2e/webhook/jobs"
WATCHERS = {"scheduled": "hcp_e2e_webhook_bookings", "completed": "hcp_e2e_webhook_completions"}


def webhook_env(sandbox: SandboxWithSinks, log_path: Path) -> dict[str, str]:
    """The scenario's connection (API key and webhook secret) and where its DAGs record what they processed."""
    return {
        f"AIRFLOW_CONN_{CONN.upper()}": conn_json(sandbox.url, timeout=10, webhook_secret=SECRET),
        "HCP_E2E_WEBHOOK_LOG": str(log_path),
    }


def slot(days: int, hour: int = 15) -> dict[str, str]:
    day = time.strftime("%Y-%m-%d", time.gmtime(time.time() + days * 86400))
    return {"scheduled_start": f"{day}T{hour}:00:00Z", "scheduled_end": f"{day}T{hour + 2}:00:00Z"}


def stamp(epoch: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


def rows_of(path: Path, sql: str) -> list[tuple[Any, ...]]:
    if not path.exists():
        return []
    with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=60)) as db:
        try:
            return db.execute(sql).fetchall()
        except sqlite3.OperationalError as exc:
            if "no such table" in str(exc):
                return []
            raise


def webhook_scenario(stack: AirflowStack, admin: SinkAdmin, log_path: Path) -> dict[str, Any]:
    meta = stack.home / "airflow.db"
    url = f"{stack.url}/housecallpro/webhooks/{CONN}"

    def live(kind: str) -> bool:
        name = WATCHERS[kind]
        in_variable = rows_of(meta, f"SELECT 1 FROM variable WHERE key = 'housecallpro_watcher__{name}'")
        in_store = rows_of(
            meta,
            "SELECT 1 FROM asset_state_store s JOIN asset a ON a.id = s.asset_id "
            f"WHERE s.key = 'housecallpro.detector.{kind}.{name}' AND a.uri = '{ASSET_URI}'",
        )
        return bool(in_variable or in_store)

    def polled(kind: str) -> bool:
        """Its first poll wrote a detector state (a go-live value has none): deliveries are judged from then on.
        (Read through the REST API: a Variable is encrypted in the metadata DB.)"""
        name = WATCHERS[kind]
        response = stack.api("GET", f"/api/v2/variables/housecallpro_watcher__{name}")
        values = [response.json().get("value")] if response.status_code == 200 else []
        values += rows_of(
            meta,
            "SELECT s.value FROM asset_state_store s JOIN asset a ON a.id = s.asset_id "
            f"WHERE s.key = 'housecallpro.detector.{kind}.{name}' AND a.uri = '{ASSET_URI}'",
        )
        return any('"detector"' in str(v) for v in values)

    def processed() -> list[tuple[str, str, int, str]]:
        return [(r[0], r[1], int(r[2]), r[3]) for r in rows_of(log_path, "SELECT a, b, c, d FROM jobs")]

    def done(expected: list[tuple[str, str, int]]) -> bool:
        got = Counter((job, kind, resched) for _, kind, resched, job in processed())
        want = Counter(expected)
        return all(got[e] >= n for e, n in want.items())

    def attempts_for(job_id: str) -> list[Any]:
        return [a["status"] for a in admin.webhooks()["attempts"] if a["job_id"] == job_id]

    def list_polls() -> int:
        return len(admin.requests(path="/jobs"))

    # The receiver, over the real API server: refusals record nothing (the inbox Variable stays absent).
    body = json.dumps({"event": "job.scheduled", "job": {"id": "job_forged"}}).encode()
    now = str(int(time.time()))
    forged = {"api-timestamp": now, "api-signature": oracle_signature("not-the-secret", now, body)}
    stale = {
        "api-timestamp": str(int(now) - 3600),
        "api-signature": oracle_signature(SECRET, str(int(now) - 3600), body),
    }
    with httpx.Client(timeout=30) as http:
        refusals = [
            http.post(url, content=body, headers=forged).status_code,
            http.post(url, content=body, headers=stale).status_code,
            http.post(url, content=body).status_code,
            http.post(url, content=b"x" * (300 * 1024), headers=forged).status_code,
        ]
    assert refusals == [401, 401, 401, 413], refusals
    assert rows_of(meta, f"SELECT 1 FROM variable WHERE key = '{inbox.variable_key(CONN)}'") == []

    for dag_id in (JOBS_DAG, CUSTOMERS_DAG):
        stack.wait_for_dag(dag_id, timeout=180)
        stack.unpause(dag_id)
    stack.wait_for("both watchers to go live", lambda: live("scheduled") and live("completed"), 180)
    stack.wait_for("both watchers' first poll", lambda: polled("scheduled") and polled("completed"), 180)
    admin.set_webhooks(url, SECRET)  # the unsigned URL check is answered 2xx by the plugin
    polls_at_live = list_polls()

    people = [
        admin.create_customer(first_name=f"Wes{n}", last_name="Hook", mobile_number=f"51255504{n:02d}")
        for n in range(2)
    ]

    # 1. Through the webhook: a booking, its reschedule, another booking and its completion, each awaited.
    a = admin.book_job(customer_id=people[0]["id"], **slot(1))
    expected = [(a["id"], "job.scheduled", 0)]
    stack.wait_for("the booking", lambda: done(expected), 180, dump=JOBS_DAG)
    admin.reschedule(a["id"], **slot(2))
    expected.append((a["id"], "job.scheduled", 1))
    stack.wait_for("the reschedule", lambda: done(expected), 180, dump=JOBS_DAG)
    c = admin.book_job(customer_id=people[1]["id"], **slot(3))
    expected.append((c["id"], "job.scheduled", 0))
    stack.wait_for("the second booking", lambda: done(expected), 180, dump=JOBS_DAG)
    admin.start(c["id"])
    admin.complete(c["id"], paid=True)
    expected.append((c["id"], "job.completed", 0))
    stack.wait_for("the completion", lambda: done(expected), 180, dump=JOBS_DAG)

    # 2. Delivered twice each and out of order (the move before the booking): one booking, at the final slot.
    admin.set_webhooks(url, SECRET, duplicates=True, hold=True)
    base = int(time.time()) + 1
    b = admin.book_job(customer_id=people[1]["id"], **slot(5), updated_at=stamp(base))
    admin.reschedule(b["id"], **slot(6), updated_at=stamp(base + 1))
    admin.release_webhooks("reverse")
    expected.append((b["id"], "job.scheduled", 0))
    stack.wait_for("the reordered booking", lambda: done(expected), 180, dump=JOBS_DAG)
    stack.wait_for("all four deliveries", lambda: len(attempts_for(b["id"])) == 4, 60)
    assert list_polls() == polls_at_live  # no poll ran: all of the above came through the webhook

    # 3. The receiver unreachable during a change (retries exhausted): the watchers' first poll after a triggerer
    # restart delivers it, labelled a reschedule; that poll also re-reads every change above (seen by both paths).
    down = f"http://127.0.0.1:{free_port()}/housecallpro/webhooks/{CONN}"  # nothing listens there
    admin.set_webhooks(down, SECRET, validate=False, max_attempts=2, retry_delay=0)
    admin.reschedule(a["id"], **slot(9))
    stack.wait_for("the lost delivery", lambda: attempts_for(a["id"])[-2:] == ["error", "error"], 60)
    admin.set_webhooks(url, SECRET)
    stack.kill("triggerer")
    stack.restart("triggerer", like="triggerer")
    expected.append((a["id"], "job.scheduled", 1))
    stack.wait_for("the change the webhook lost", lambda: done(expected), 240, dump=JOBS_DAG)
    # The watchers polled again: the lost change above could only come from a poll. One request may serve both
    # watchers (their first polls after the restart can fall in one tick of the account's shared poller, e.g. when
    # the inbox's deliveries wake it), so at least one list request, not two.
    stack.wait_for("the watchers polled again", lambda: list_polls() > polls_at_live, 300)

    stack.wait_for("both new customers", lambda: len(rows_of(log_path, "SELECT c FROM customers")) >= 2, 180)

    # Quiet: every consumer run finished; nothing more came.
    stack.wait_for(
        "the consumer runs to finish",
        lambda: all(r["state"] in ("success", "failed") for d in (JOBS_DAG, CUSTOMERS_DAG) for r in stack.dag_runs(d)),
        300,
    )
    rows = processed()
    assert sorted((job, kind, resched) for _, kind, resched, job in rows) == sorted(expected), rows
    assert len({event_id for event_id, *_ in rows}) == len(rows)
    for dag_id in (JOBS_DAG, CUSTOMERS_DAG):
        assert all(r["state"] == "success" for r in stack.dag_runs(dag_id)), stack.dag_report(dag_id)

    # Raw events: each new customer made while the customers DAG ran is one customer.created event.
    customers = rows_of(log_path, "SELECT b, c FROM customers")
    assert sorted(customers) == sorted(("customer.created", p["id"]) for p in people), customers

    extras = [extra or "" for (extra,) in rows_of(meta, "SELECT extra FROM asset_event")]
    assert not [e for e in extras if SECRET in e or API_KEY in e]
    return {"changes": len(expected), "asset_events": len(extras), "rows": len(rows)}


def test_webhooks_end_to_end(airflow: AirflowStack, admin: SinkAdmin, e2e: SharedAirflow) -> None:
    try:
        summary = webhook_scenario(airflow, admin, e2e.webhook_log)
    finally:
        admin.disable_webhooks()
    print(f"\n[webhook e2e] {summary}")
    # The webhook secret and the API key in no file: test_nothing_leaked.py, after the last scenario. Here: that
    # search is not vacuous, the triggerer logged the pushed webhooks.
    airflow.wait_for(
        "the triggerer's line about pushed webhooks",
        lambda: airflow.lines_containing("webhook job change(s) for 'hcp_e2e_webhook'"),
        60,
    )
