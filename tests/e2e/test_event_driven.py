"""End to end, event-driven: the watcher example DAGs under a real Airflow, through a triggerer SIGKILL and a pause.

Scheduler, DAG processor, API server and one or two triggerers run as subprocesses on loopback (see
``airflow_stack.py``). ``hcp_watch_bookings`` and ``hcp_watch_completions`` are unpaused; the test then makes a
burst of bookings, kills every triggerer with SIGKILL while a booking and a reschedule are on their way, starts
them again, pauses the bookings DAG (Airflow deletes its watcher), books a job while it is paused, unpauses it,
and completes a job. The consumers write one row per processed event to the CRM's activity log; the test
asserts that log holds every change exactly once — the oracle is the list of changes the test made — and
reports how many raw asset events Airflow stored for them (duplicates the consumers' ledger absorbed).
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hcp_messaging.sinks import SandboxWithSinks, SinkAdmin

from tests.conftest import API_KEY, CONN_ID, EXAMPLE_DAGS, conn_json
from tests.e2e.airflow_stack import AirflowStack

pytestmark = pytest.mark.e2e

BOOKINGS, COMPLETIONS = "hcp_watch_bookings", "hcp_watch_completions"
ASSET_URIS = {BOOKINGS: "housecallpro://jobs/scheduled", COMPLETIONS: "housecallpro://jobs/completed"}
KIND_WORDS = {BOOKINGS: "scheduled", COMPLETIONS: "completed"}
Row = tuple[str, str, int, str]  # event id, type, is_reschedule, job id


def slot(days: int) -> dict[str, str]:
    day = time.strftime("%Y-%m-%d", time.gmtime(time.time() + days * 86400))
    return {"scheduled_start": f"{day}T15:00:00Z", "scheduled_end": f"{day}T17:00:00Z"}


@pytest.fixture(params=[1, 2], ids=["one-triggerer", "two-triggerers"])
def airflow(request: pytest.FixtureRequest, sandbox: SandboxWithSinks, tmp_path: Path) -> Iterator[AirflowStack]:
    env = {
        **sandbox.airflow_connections(),
        f"AIRFLOW_CONN_{CONN_ID.upper()}": conn_json(sandbox.url, timeout=10),
        "AIRFLOW_CONN_HCP_CRM": json.dumps({"conn_type": "sqlite", "host": str(tmp_path / "crm.db")}),
        "HCP_POLL_SECONDS": "2",
    }
    with AirflowStack(tmp_path / "airflow-home", {"hcp_e2e_examples": EXAMPLE_DAGS}, env=env) as stack:
        stack.crm = tmp_path / "crm.db"  # type: ignore[attr-defined]
        for n in range(2, request.param + 1):
            stack.add(f"triggerer-{n}", like="triggerer")
        yield stack


def db_rows(path: Path, sql: str, *args: Any) -> list[tuple[Any, ...]]:
    if not path.exists():
        return []
    with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=60)) as db:
        try:
            return db.execute(sql, args).fetchall()
        except sqlite3.OperationalError as exc:  # table not made yet
            if "no such table" in str(exc):
                return []
            raise


def test_each_change_is_processed_once_through_a_triggerer_kill_and_a_pause(
    airflow: AirflowStack, admin: SinkAdmin
) -> None:
    crm: Path = airflow.crm  # type: ignore[attr-defined]
    meta = airflow.home / "airflow.db"
    triggerers = [name for name in airflow.procs if name.startswith("triggerer")]

    def logged() -> list[Row]:
        rows = db_rows(crm, "SELECT event_id, event_type, is_reschedule, hcp_job_id FROM hcp_job_event_log")
        return [(r[0], r[1], int(r[2]), r[3]) for r in rows]

    def watchers(kind: str) -> int:
        return len(db_rows(meta, "SELECT id FROM trigger WHERE classpath LIKE ?", f"%{kind}EventTrigger"))

    def live(name: str) -> bool:
        """The watcher stored its go-live (Variable on 3.0-3.2, its own asset's state store on 3.3). Changes made
        before that are history by design, so the test makes none before both are live."""
        in_variable = db_rows(meta, "SELECT 1 FROM variable WHERE key = ?", f"housecallpro_watcher__{name}")
        in_store = db_rows(
            meta,
            "SELECT 1 FROM asset_state_store s JOIN asset a ON a.id = s.asset_id WHERE s.key = ? AND a.uri = ?",
            f"housecallpro.detector.{KIND_WORDS[name]}.{name}",
            ASSET_URIS[name],
        )
        return bool(in_variable or in_store)

    def processed(expected: list[tuple[str, str, int]]) -> bool:
        got = Counter((job, kind, resched) for _, kind, resched, job in logged())
        return all(got[e] >= 1 for e in expected)

    people = [
        admin.create_customer(
            first_name=f"Eve{n}", last_name="Events", mobile_number=f"51255502{n:02d}", notifications_enabled=True
        )
        for n in range(6)
    ]
    for dag_id in (BOOKINGS, COMPLETIONS):
        airflow.wait_for_dag(dag_id, timeout=120)
        airflow.unpause(dag_id)
    airflow.wait_for("both watchers to go live", lambda: live(BOOKINGS) and live(COMPLETIONS), 180)

    # 1. A burst of bookings, in quick succession.
    jobs = [admin.book_job(customer_id=people[n]["id"], **slot(n + 1)) for n in range(4)]
    expected = [(j["id"], "job.scheduled", 0) for j in jobs]
    airflow.wait_for("the burst to be processed", lambda: processed(expected), 300, dump=BOOKINGS)

    # 2. A booking and a reschedule, then every triggerer killed (SIGKILL) and started again.
    jobs.append(admin.book_job(customer_id=people[4]["id"], **slot(5)))
    admin.reschedule(jobs[0]["id"], **slot(8))
    expected += [(jobs[4]["id"], "job.scheduled", 0), (jobs[0]["id"], "job.scheduled", 1)]
    for name in triggerers:
        airflow.kill(name)
    for name in triggerers:
        airflow.restart(name, like="triggerer")
    airflow.wait_for("the booking and the reschedule", lambda: processed(expected), 300, dump=BOOKINGS)

    # 3. Paused: Airflow deletes the watcher. A booking made meanwhile is processed after the unpause.
    airflow.pause(BOOKINGS)
    airflow.wait_for("the paused DAG's watcher to go", lambda: watchers("JobScheduled") == 0, 180)
    jobs.append(admin.book_job(customer_id=people[5]["id"], **slot(6)))
    expected.append((jobs[5]["id"], "job.scheduled", 0))
    airflow.unpause(BOOKINGS)
    airflow.wait_for("the booking made while paused", lambda: processed(expected), 300, dump=BOOKINGS)

    # 4. A completion.
    admin.start(jobs[1]["id"])
    admin.complete(jobs[1]["id"], paid=True)
    expected.append((jobs[1]["id"], "job.completed", 0))
    airflow.wait_for("the completion", lambda: processed(expected), 300, dump=COMPLETIONS)

    # Quiet: every watcher polls a few more times and every consumer run has finished; nothing more may come.
    served = len(admin.requests(path="/jobs"))
    airflow.wait_for("more polls", lambda: len(admin.requests(path="/jobs")) >= served + 12, 120)

    def settled() -> bool:
        return all(r["state"] in ("success", "failed") for d in (BOOKINGS, COMPLETIONS) for r in airflow.dag_runs(d))

    airflow.wait_for("the consumer runs to finish", settled, 300)
    rows = logged()
    assert sorted((job, kind, resched) for _, kind, resched, job in rows) == sorted(expected), rows
    assert len({event_id for event_id, *_ in rows}) == len(rows)
    for dag_id in (BOOKINGS, COMPLETIONS):
        assert all(r["state"] == "success" for r in airflow.dag_runs(dag_id)), airflow.dag_report(dag_id)
    texts = admin.sms()
    assert len(texts) == len(expected), texts
    assert sum("has moved to" in t["body"] for t in texts) == 1

    # What Airflow delivered: raw asset events per change (more than one = a duplicate the ledger absorbed),
    # and how many were attached to no run (left behind by Airflow; the consumers' look-back found them).
    raw = db_rows(meta, "SELECT id, extra FROM asset_event")
    ids = Counter(json.loads(extra)["payload"]["event"]["id"] for _, extra in raw if "payload" in extra)
    attached = {r[0] for r in db_rows(meta, "SELECT event_id FROM dagrun_asset_event")}
    unattached = [i for i, _ in raw if i not in attached]
    print(
        f"\n[event-driven e2e, {len(triggerers)} triggerer(s)] {len(expected)} changes, {sum(ids.values())} asset "
        f"events ({sum(ids.values()) - len(ids)} duplicates), {len(unattached)} attached to no run, "
        f"{len(airflow.dag_runs(BOOKINGS)) + len(airflow.dag_runs(COMPLETIONS))} consumer runs"
    )
    assert set(ids) == {event_id for event_id, *_ in rows}
    airflow.stop()
    assert airflow.lines_containing(API_KEY) == {}
