"""End to end, event-driven: the watcher example DAGs under a real Airflow, through a triggerer SIGKILL and a pause.

Both run on the package's one Airflow (conftest.py): scheduler, DAG processor, API server and a triggerer as
subprocesses on loopback (see ``airflow_stack.py``).

Two triggerers, a kill and a pause: a second triggerer is started (both grab watchers: Airflow 3.0-3.2 may run one
watcher on both). ``hcp_watch_bookings`` and ``hcp_watch_completions`` are unpaused; the test then makes a
burst of bookings, kills every triggerer with SIGKILL while a booking and a reschedule are on their way, starts
them again, pauses the bookings DAG (Airflow deletes its watcher), books a job while it is paused, unpauses it,
and completes a job. The consumers write one row per processed event to the CRM's activity log; the test
asserts that log holds every change exactly once — the oracle is the list of changes the test made — and
reports how many raw asset events Airflow stored for them (duplicates the consumers' ledger absorbed). (With one
triggerer, the same kill and restart is the one-asset-two-watchers scenario's.)

One asset, two watchers: see its docstring.
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
from hcp_messaging.sinks import SinkAdmin

from tests.e2e.airflow_stack import AirflowStack
from tests.e2e.conftest import SharedAirflow
from tests.e2e.triggerer_output import trigger_failures, triggerer_output

pytestmark = pytest.mark.e2e

BOOKINGS, COMPLETIONS = "hcp_watch_bookings", "hcp_watch_completions"
ASSET_URIS = {BOOKINGS: "housecallpro://jobs/scheduled", COMPLETIONS: "housecallpro://jobs/completed"}
KIND_WORDS = {BOOKINGS: "scheduled", COMPLETIONS: "completed"}
Row = tuple[str, str, int, str]  # event id, type, is_reschedule, job id


def slot(days: int) -> dict[str, str]:
    day = time.strftime("%Y-%m-%d", time.gmtime(time.time() + days * 86400))
    return {"scheduled_start": f"{day}T15:00:00Z", "scheduled_end": f"{day}T17:00:00Z"}


@pytest.fixture
def triggerers(airflow: AirflowStack) -> Iterator[list[str]]:
    """The shared stack's triggerer and a second one, stopped again after the test."""
    airflow.add("triggerer-2", like="triggerer")
    yield ["triggerer", "triggerer-2"]
    if "triggerer-2" in airflow.procs:
        airflow.retire("triggerer-2")


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


def test_each_change_is_processed_once_through_two_triggerers_a_kill_and_a_pause(
    airflow: AirflowStack, admin: SinkAdmin, e2e: SharedAirflow, triggerers: list[str]
) -> None:
    crm = e2e.crm
    meta = airflow.home / "airflow.db"
    first_event = max((row[0] for row in db_rows(meta, "SELECT id FROM asset_event")), default=0)
    outputs_before = set(triggerer_output(airflow))

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
    raw = db_rows(meta, "SELECT id, extra FROM asset_event WHERE id > ?", first_event)  # this scenario's
    ids = Counter(json.loads(extra)["payload"]["event"]["id"] for _, extra in raw if "payload" in extra)
    attached = {r[0] for r in db_rows(meta, "SELECT event_id FROM dagrun_asset_event")}
    unattached = [i for i, _ in raw if i not in attached]
    print(
        f"\n[event-driven e2e, {len(triggerers)} triggerer(s)] {len(expected)} changes, {sum(ids.values())} asset "
        f"events ({sum(ids.values()) - len(ids)} duplicates), {len(unattached)} attached to no run, "
        f"{len(airflow.dag_runs(BOOKINGS)) + len(airflow.dag_runs(COMPLETIONS))} consumer runs"
    )
    assert set(ids) == {event_id for event_id, *_ in rows}
    # No trigger failed and no trigger runner died, through the kills, restarts, pause and (3.0) two triggerers
    # grabbing the same watchers (issue: a cancelled Variable read killed Airflow 3.0's trigger runner). The
    # killed triggerers' output is complete; the running ones' is searched again, whole, after the last scenario
    # (test_nothing_leaked.py), as is every file for the key.
    output = triggerer_output(airflow)
    assert len(set(output) - outputs_before) == len(triggerers)  # each one's restart
    assert trigger_failures(output) == {}


E2E_DAGS = Path(__file__).parent / "dags"
TWO_WATCHERS = "hcp_e2e_two_watchers"
ONE_ASSET = "housecallpro://e2e/jobs"


def test_one_asset_two_watchers_through_a_triggerer_kill(
    airflow: AirflowStack, admin: SinkAdmin, e2e: SharedAirflow
) -> None:
    """ONE asset watched by a JobScheduledEventTrigger and a JobCompletedEventTrigger (two states in one asset's
    store on 3.3, two Variables on 3.0); a booking and a completion made while the triggerer is SIGKILLed, then the
    triggerer restarted: each change processed once through job_events(), and no trigger ever fails."""
    processed_db = e2e.processed
    outputs_before = set(triggerer_output(airflow))
    meta = airflow.home / "airflow.db"

    def live(kind: str, name: str) -> bool:
        in_variable = db_rows(meta, "SELECT 1 FROM variable WHERE key = ?", f"housecallpro_watcher__{name}")
        in_store = db_rows(
            meta,
            "SELECT 1 FROM asset_state_store s JOIN asset a ON a.id = s.asset_id WHERE s.key = ? AND a.uri = ?",
            f"housecallpro.detector.{kind}.{name}",
            ONE_ASSET,
        )
        return bool(in_variable or in_store)

    def processed() -> list[tuple[str, str, int, str]]:
        rows = db_rows(processed_db, "SELECT event_id, event_type, is_reschedule, job_id FROM processed")
        return [(r[0], r[1], int(r[2]), r[3]) for r in rows]

    def done(expected: list[tuple[str, str, int]]) -> bool:
        got = Counter((job, kind, resched) for _, kind, resched, job in processed())
        return all(got[e] >= 1 for e in expected)

    ann = admin.create_customer(first_name="Ann", last_name="Asset", mobile_number="5125550301")
    airflow.wait_for_dag(TWO_WATCHERS, timeout=120)
    airflow.unpause(TWO_WATCHERS)
    airflow.wait_for(
        "both watchers to go live",
        lambda: live("scheduled", "e2e_bookings") and live("completed", "e2e_completions"),
        180,
    )

    # 1. A booking, processed while the triggerer runs.
    first = admin.book_job(customer_id=ann["id"], **slot(1))
    expected = [(first["id"], "job.scheduled", 0)]
    airflow.wait_for("the first booking", lambda: done(expected), 300, dump=TWO_WATCHERS)

    # 2. The triggerer killed (SIGKILL); a booking and a completion while it is down; then it starts again.
    airflow.kill("triggerer")
    second = admin.book_job(customer_id=ann["id"], **slot(2))
    admin.start(first["id"])
    admin.complete(first["id"], paid=True)
    expected += [(second["id"], "job.scheduled", 0), (first["id"], "job.completed", 0)]
    airflow.restart("triggerer", like="triggerer")
    airflow.wait_for("the booking and the completion", lambda: done(expected), 300, dump=TWO_WATCHERS)

    # Quiet: both watchers poll a few more times, every run finishes; nothing more may come.
    served = len(admin.requests(path="/jobs"))
    airflow.wait_for("more polls", lambda: len(admin.requests(path="/jobs")) >= served + 12, 120)
    airflow.wait_for(
        "the consumer runs to finish",
        lambda: all(r["state"] in ("success", "failed") for r in airflow.dag_runs(TWO_WATCHERS)),
        300,
    )
    rows = processed()
    assert sorted((job, kind, resched) for _, kind, resched, job in rows) == sorted(expected), rows
    assert len({event_id for event_id, *_ in rows}) == len(rows)
    assert all(r["state"] == "success" for r in airflow.dag_runs(TWO_WATCHERS)), airflow.dag_report(TWO_WATCHERS)
    extras = [json.loads(extra or "{}") for (extra,) in db_rows(meta, "SELECT extra FROM asset_event")]
    assert not [e for e in extras if "error" in (e.get("payload") or {})], extras
    assert live("scheduled", "e2e_bookings") and live("completed", "e2e_completions")
    output = triggerer_output(airflow)
    assert len(set(output) - outputs_before) == 1  # the restarted triggerer's

    def watchers_logged() -> str | None:
        text = "\n".join(line for lines in triggerer_output(airflow).values() for line in lines)
        return text if "job.scheduled event(s)" in text and "job.completed event(s)" in text else None

    # The search is not vacuous: the watchers' own log lines are there.
    text = airflow.wait_for("the watchers' log lines in the triggerers' output", watchers_logged, 60)
    assert "Housecall Pro job.completed watcher 'e2e_completions'" in text
    assert trigger_failures(triggerer_output(airflow)) == {}
