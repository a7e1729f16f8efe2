"""The per-connection webhook inbox: job changes the receiver accepted, for the job watchers to judge (pure JSON).

Stored in the Variable ``housecallpro_webhooks__<conn_id>`` (the one place both the API server and a trigger on any
Airflow 3.x can read and write)::

    {"v": 1, "next": 43, "entries": [{"n": 42, "at": 1765000000, "event": "job.scheduled", "job": {...}}, ...]}

``n`` numbers entries in order; a reader remembers the last ``n`` it took. Entries older than ``KEEP_SECONDS`` or
beyond ``MAX_ENTRIES`` are dropped on the next write: a watcher that was not running then misses only the fast path
(its poll finds the change).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

VERSION = 1
VARIABLE_PREFIX = "housecallpro_webhooks__"
VARIABLE_DESCRIPTION = "Housecall Pro webhook inbox (written by the receiver, read by the job watchers)"
KEEP_SECONDS = 600
MAX_ENTRIES = 500


def variable_key(conn_id: str) -> str:
    return f"{VARIABLE_PREFIX}{conn_id}"


def empty() -> dict[str, Any]:
    return {"v": VERSION, "next": 1, "entries": []}


def _checked(value: Any) -> dict[str, Any]:
    if not isinstance(value, Mapping) or value.get("v") != VERSION or not isinstance(value.get("entries"), list):
        return empty()  # unreadable: start over (the watchers' polls cover what it held)
    return {"v": VERSION, "next": int(value.get("next") or 1), "entries": list(value["entries"])}


def append(value: Any, entries: Iterable[Mapping[str, Any]], now: float) -> dict[str, Any]:
    inbox = _checked(value)
    n = inbox["next"]
    kept = [e for e in inbox["entries"] if isinstance(e, Mapping) and e.get("at", 0) >= now - KEEP_SECONDS]
    for entry in entries:
        kept.append({**entry, "n": n, "at": int(now)})
        n += 1
    return {"v": VERSION, "next": n, "entries": kept[-MAX_ENTRIES:]}


def after(value: Any, last: int) -> tuple[list[dict[str, Any]], int]:
    """Entries numbered after ``last``, and the number to remember next."""
    inbox = _checked(value)
    if inbox["next"] - 1 < last:  # the inbox was started over: its numbers begin again
        last = 0
    fresh = [dict(e) for e in inbox["entries"] if isinstance(e, Mapping) and int(e.get("n", 0)) > last]
    return fresh, max(last, inbox["next"] - 1)
