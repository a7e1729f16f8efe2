"""The value an event trigger stores (wherever :mod:`.state_store` keeps it), read and summarised in one place.

Two shapes, both JSON: ``{"kind", "go_live"}`` (a watcher live since then, before its first poll wrote a state) and
``{"kind", "detector", "pending"}`` (the detector state, :meth:`DetectorState.to_json`, and the events yielded but
not yet known to be stored by Airflow). Values written before the ``kind`` field existed are read the same way;
their kind is the detector state's.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from airflow_provider_housecallpro.api.models import parse_timestamp
from airflow_provider_housecallpro.events.detector import COMPLETED, SCHEDULED, DetectorState, EventType
from airflow_provider_housecallpro.events.state import iso

GO_LIVE = "go_live"
ERROR = "error"  # an error event's payload: {"error": error_record(...) + "id", "detected_at"}
KINDS: dict[str, EventType] = {"scheduled": SCHEDULED, "completed": COMPLETED}  # CLI / key word -> event type


def short_kind(kind: EventType) -> str:
    """``scheduled`` / ``completed``: the word the keys and the CLI use."""
    return next(word for word, event_type in KINDS.items() if event_type == kind)


def reset_command(name: str, kind: EventType, asset: str | None) -> str:
    """The one command that deletes a watcher's state (it then goes live again at its next start)."""
    command = f"housecallpro watcher-state reset {name} --kind {short_kind(kind)}"
    return f"{command} --asset {asset}" if asset else command


@dataclass
class Saved:
    detector: DetectorState | None
    since: datetime | None  # go-live, while there is no detector state yet
    pending: list[dict[str, Any]]  # events yielded but not yet known to be stored by Airflow


def go_live_value(kind: EventType, since: datetime) -> dict[str, Any]:
    return {"kind": kind, GO_LIVE: since.isoformat()}


def state_value(detector: DetectorState, pending: list[dict[str, Any]]) -> dict[str, Any]:
    return {"kind": detector.kind, "detector": detector.to_json(), "pending": pending}


def read(value: Any, kind: EventType) -> Saved:
    """The stored ``value`` of a ``kind`` watcher; raises ``KeyError``/``TypeError``/``ValueError`` when unreadable
    (a :class:`~airflow_provider_housecallpro.events.state.StateError` when it is another kind's)."""
    if not isinstance(value, Mapping):
        raise TypeError(f"expected a JSON object, got {type(value).__name__}")
    if value.get("kind", kind) != kind:
        raise ValueError(f"state is for {value['kind']} events, not {kind}")
    if GO_LIVE in value and "detector" not in value:
        since = parse_timestamp(value[GO_LIVE])
        if since is None:
            raise ValueError(f"go_live is not a timestamp: {value[GO_LIVE]!r}")
        return Saved(None, since, [])
    detector = DetectorState.from_json(value["detector"], kind)
    return Saved(detector, None, [dict(event) for event in value.get("pending") or ()])


def kind_of(value: Any) -> EventType | None:
    """Whose state ``value`` is: the kind it names (or its detector state's), None when it cannot tell."""
    if not isinstance(value, Mapping):
        return None
    detector = value.get("detector")
    named = value.get("kind", detector.get("kind") if isinstance(detector, Mapping) else None)
    return named if named in KINDS.values() else None  # type: ignore[no-any-return]


def summary(value: Any, kind: EventType) -> dict[str, Any]:
    """What ``housecallpro watcher-state show`` prints: never the events' contents (customers' details)."""
    try:
        saved = read(value, kind)
    except (KeyError, TypeError, ValueError) as exc:
        return {"readable": False, "error": f"{type(exc).__name__}: {exc}", "kind": kind_of(value)}
    if saved.detector is None:
        assert saved.since is not None
        return {"readable": True, "kind": kind, "go_live": saved.since.isoformat(), "polled": False}
    return {
        "readable": True,
        "kind": kind,
        "polled": True,
        "since": iso(saved.detector.since),
        "cursor": iso(saved.detector.cursor),
        "tracked_jobs": len(saved.detector.records),
        "pending_events": len(saved.pending),
    }


class WatcherStateError(ValueError):
    """A watcher cannot use its stored state; ``record`` (JSON) says which watcher, where, what and the fix."""

    def __init__(self, record: dict[str, Any]) -> None:
        self.record = record
        super().__init__(describe(record))


def error_record(*, watcher: str, kind: EventType, store: str, message: str, fix: str) -> dict[str, Any]:
    return {"watcher": watcher, "kind": kind, "store": store, "message": message, "fix": fix}


def describe(record: Mapping[str, Any]) -> str:
    return (
        f"Housecall Pro {record.get('kind')} watcher {record.get('watcher')!r}: {record.get('message')}. "
        f"Fix: {record.get('fix')}"
    )
