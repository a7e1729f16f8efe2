"""The inbox format (what the receiver writes and the triggerers read) and the raw webhook assets."""

from __future__ import annotations

import pytest

from airflow_provider_housecallpro.assets import webhook_asset
from airflow_provider_housecallpro.webhooks import inbox


def test_entries_are_numbered_in_order_and_read_once_per_reader() -> None:
    value = inbox.append(None, [{"event": "job.scheduled", "job": {"id": "a"}}], now=1000)
    value = inbox.append(value, [{"event": "job.completed", "job": {"id": "b"}}], now=1001)
    fresh, last = inbox.after(value, 0)
    assert [(e["n"], e["job"]["id"]) for e in fresh] == [(1, "a"), (2, "b")] and last == 2
    assert inbox.after(value, last) == ([], 2)
    value = inbox.append(value, [{"event": "job.updated", "job": {"id": "c"}}], now=1002)
    assert [e["job"]["id"] for e in inbox.after(value, last)[0]] == ["c"]


def test_old_and_surplus_entries_leave_and_a_restarted_inbox_is_read_from_its_start() -> None:
    value = inbox.append(None, [{"event": "job.updated", "job": {"id": "old"}}], now=0)
    value = inbox.append(value, [{"event": "job.updated", "job": {"id": "new"}}], now=inbox.KEEP_SECONDS + 1)
    assert [e["job"]["id"] for e in value["entries"]] == ["new"]
    many = inbox.append(None, [{"event": "job.updated", "job_id": str(i)} for i in range(inbox.MAX_ENTRIES + 5)], 0)
    assert len(many["entries"]) == inbox.MAX_ENTRIES and many["entries"][-1]["job_id"] == str(inbox.MAX_ENTRIES + 4)
    restarted = inbox.append("not an inbox", [{"event": "job.updated", "job_id": "x"}], now=5)
    assert [e["job_id"] for e in inbox.after(restarted, 40)[0]] == ["x"]  # numbers began again: read from 0


def test_webhook_assets_are_named_for_the_event() -> None:
    asset = webhook_asset("invoice.paid")
    assert asset.name == "housecallpro.webhooks.invoice.paid"
    with pytest.raises(ValueError, match="event must be a Housecall Pro event name"):
        webhook_asset("Invoice Paid")
