"""The consumer's ledger: whatever Airflow delivers (duplicates, events folded into one run, events shown again
to a later run, a task retried), each ``event.id`` is processed by exactly one run."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from airflow_provider_housecallpro.assets import ledger_key, select
from airflow_provider_housecallpro.events.ledger import Ledger, LedgerError


def payload(event_id: str) -> dict[str, Any]:
    return {"event": {"id": event_id, "type": "job.scheduled", "is_reschedule": False}, "job": {"id": "job"}}


def run(ledger: Ledger, run_id: str, delivered: list[tuple[str, int]]) -> list[str]:
    """One consumer task: select, claim, store (JSON round trip, as in the Variable)."""
    chosen, claims = select([(payload(i), when) for i, when in delivered], ledger, run_id)
    ledger.claim(run_id, claims)
    stored = Ledger.from_json(json.loads(json.dumps(ledger.to_json())))
    ledger.seen, ledger.run_id, ledger.claimed = stored.seen, stored.run_id, stored.claimed
    return [e["event"]["id"] for e in chosen]


def test_duplicates_in_one_run_and_across_runs_are_processed_once() -> None:
    ledger = Ledger()
    assert run(ledger, "r1", [("a", 10), ("b", 11), ("a", 10)]) == ["a", "b"]
    assert run(ledger, "r2", [("b", 11), ("c", 12)]) == ["c"]
    assert run(ledger, "r3", [("a", 10), ("b", 11), ("c", 12)]) == []


def test_a_retry_of_the_claiming_run_gets_its_events_again_another_run_does_not() -> None:
    ledger = Ledger()
    assert run(ledger, "r1", [("a", 10), ("b", 11)]) == ["a", "b"]
    assert run(ledger, "r1", [("a", 10), ("b", 11)]) == ["a", "b"]  # the task retried
    assert run(ledger, "r2", [("a", 10), ("b", 11)]) == []


def test_events_come_out_oldest_first() -> None:
    assert run(Ledger(), "r1", [("late", 30), ("early", 10), ("mid", 20)]) == ["early", "mid", "late"]


def test_prune_forgets_only_what_is_older_than_the_look_back() -> None:
    ledger = Ledger()
    run(ledger, "r1", [("old", 100)])
    run(ledger, "r2", [("new", 1_000)])
    ledger.prune(500)
    assert run(ledger, "r3", [("new", 1_000)]) == []
    assert run(ledger, "r4", [("old", 100)]) == ["old"]  # past the look-back: the consumer never shows it


def test_unreadable_ledger_is_an_error_not_a_fresh_start() -> None:
    with pytest.raises(LedgerError):
        Ledger.from_json({"v": 1, "seen": "%%%"})
    with pytest.raises(LedgerError, match="version"):
        Ledger.from_json({"v": 99})


def test_ledger_keys_fit_a_variable_key() -> None:
    key = ledger_key("dag", "housecallpro://jobs/scheduled")
    assert key.startswith("housecallpro_ledger__dag__housecallpro___jobs_scheduled_") and "/" not in key
    assert key != ledger_key("dag", "housecallpro:__jobs/scheduled")
    assert ledger_key("dag", "plain_name") == "housecallpro_ledger__dag__plain_name"
    assert len(ledger_key("d" * 300, "a" * 300)) <= 250


@given(
    st.lists(
        st.tuples(st.integers(0, 6), st.lists(st.integers(0, 30), max_size=8), st.booleans()),
        max_size=25,
    )
)
def test_any_delivery_pattern_processes_each_id_exactly_once(deliveries: list[tuple[int, list[int], bool]]) -> None:
    """Runs r0..r6 (in order; a run may come back, as a retry), each shown any events, possibly repeated."""
    ledger, processed_by = Ledger(), {}
    newest = -1
    for run_no, ids, retry in deliveries:
        run_no = newest if retry and newest >= 0 else max(run_no, newest)  # runs only go forward, or retry
        newest = run_no
        got = run(ledger, f"r{run_no}", [(f"e{i}", i) for i in ids])
        for event_id in got:
            assert processed_by.setdefault(event_id, run_no) == run_no  # never processed by two runs
    shown = {f"e{i}" for _, ids, _ in deliveries for i in ids}
    assert set(processed_by) == shown


def test_raw_webhook_events_are_selected_once_by_their_webhook_id() -> None:
    """``webhook_events()`` shares the selection: a retried delivery (same body, same ``webhook.id``) once."""
    ledger = Ledger()

    def raw(hook_id: str) -> dict[str, Any]:
        return {
            "webhook": {"id": hook_id, "event": "invoice.paid", "received_at": "2026-12-07T00:00:00Z"},
            "invoice": {},
        }

    chosen, claims = select([(raw("h1"), 10), (raw("h2"), 11), (raw("h1"), 12)], ledger, "r1")
    assert [e["webhook"]["id"] for e in chosen] == ["h1", "h2"]
    ledger.claim("r1", claims)
    assert select([(raw("h1"), 13), (raw("h3"), 14)], ledger, "r2")[0] == [raw("h3")]
