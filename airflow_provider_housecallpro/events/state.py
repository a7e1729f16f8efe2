"""Detector state: what a sensor remembers between polls and runs (pure, compact, JSON-safe).

One record per (subscriber, job), keyed by a 64-bit hash of the job id::

    scheduled:  a = scheduled_start (epoch s; 0 = not booked any more: canceled, unscheduled or done)
                b = scheduled_end (epoch s; 0 = none) — or, when a == 0, when that was seen (for pruning)
                c = arrival_window (minutes; 0xFFFF = none)
    completed:  a = completed_at (epoch s; 0 = unknown)
                b = anchor for pruning (completion time, or when it was seen)
                c = 1 while the job is complete, 0 once it was seen reopened
    seq       = how many events this subscriber has delivered for the job (``event.id`` = job/kind/seq)
    u         = the newest ``updated_at`` (epoch s) of the job's versions that set this record (0 = unknown)

Serialized as columns (ids, a, b, c, seq, u), delta-coded where that helps, zlib-compressed and base64'd:
about 14-24 bytes per tracked job, so the state of a 10,000-job account fits in one small XCom and in
trigger kwargs. The cursor and horizon are epoch seconds.

Takes a second writer (a webhook receiver, a lagging replica, a late commit): a change fires only when its
fingerprint differs from the last one fired *and* its ``updated_at`` is not older than the record's ``u`` — first
writer wins; a stale, out-of-order copy of a job fires nothing (DESIGN.md "A second writer").
"""

from __future__ import annotations

import base64
import functools
import hashlib
import struct
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal, NamedTuple

EventType = Literal["job.scheduled", "job.completed"]
SCHEDULED: EventType = "job.scheduled"
COMPLETED: EventType = "job.completed"
KINDS: tuple[EventType, ...] = (SCHEDULED, COMPLETED)
NO_WINDOW = 0xFFFF
VERSION = 3


class Record(NamedTuple):
    a: int
    b: int
    c: int
    seq: int
    u: int = 0


@functools.lru_cache(maxsize=200_000)  # the same ids come back poll after poll
def job_key(job_id: str) -> int:
    """A job id as the 64-bit key of its record."""
    return int.from_bytes(hashlib.blake2b(job_id.encode(), digest_size=8).digest(), "little")


def epoch(when: datetime) -> int:
    return int(when.timestamp())


def from_epoch(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def iso(seconds: int | None) -> str | None:
    return None if seconds is None else from_epoch(seconds).strftime("%Y-%m-%dT%H:%M:%SZ")


class StateError(ValueError):
    """A state value that cannot be read (wrong kind, corrupt, unknown version)."""


@dataclass
class DetectorState:
    """``cursor``: every change with ``updated_at`` before it has been seen. ``horizon``: a job never seen
    whose anchor (scheduled start / completion) is before it is history. ``records``: see module doc.

    Treat as immutable once handed out: a poll builds a new one (sharing ``records`` when nothing changed).
    """

    kind: EventType
    cursor: int
    horizon: int
    since: int  # go-live: what existed before it is history; part of every event id
    reconciled_at: int | None = None
    records: dict[int, Record] = field(default_factory=dict)

    # -- JSON form (XCom, trigger kwargs, asset state) ------------------------------------------
    def to_json(self) -> dict[str, Any]:
        return {
            "v": VERSION,
            "kind": self.kind,
            "cursor": iso(self.cursor),
            "horizon": iso(self.horizon),
            "since": iso(self.since),
            "reconciled_at": iso(self.reconciled_at),
            "count": len(self.records),
            "jobs": encode_records(self.records, self.since),
        }

    @classmethod
    def from_json(cls, data: Any, kind: EventType | None = None) -> DetectorState:
        """Read a state; raises :class:`StateError` naming what is wrong."""
        if isinstance(data, DetectorState):
            state = data
        elif not isinstance(data, Mapping):
            raise StateError(f"state must be a JSON object; got {type(data).__name__}")
        elif data.get("version") == 1:
            state = _from_v1(data)
        elif data.get("v") not in (2, VERSION):
            raise StateError(f"unknown state version {data.get('v', data.get('version'))!r}")
        else:
            if data.get("kind") not in KINDS:
                raise StateError(f"state kind must be one of {KINDS}; got {data.get('kind')!r}")
            try:
                state = cls(
                    kind=data["kind"],
                    cursor=_epoch_of(data["cursor"]),
                    horizon=_epoch_of(data["horizon"]),
                    since=_epoch_of(data["since"]),
                    reconciled_at=None if data.get("reconciled_at") is None else _epoch_of(data["reconciled_at"]),
                    records=decode_records(data.get("jobs") or "", _epoch_of(data["since"]), data["v"]),
                )
            except (KeyError, TypeError, ValueError) as exc:
                raise StateError(f"unreadable state: {exc}") from None
            if data.get("count") is not None and data["count"] != len(state.records):
                raise StateError(f"state says {data['count']} jobs but holds {len(state.records)}")
        if kind is not None and state.kind != kind:
            raise StateError(f"state is for {state.kind} events, not {kind}")
        return state


def _epoch_of(value: Any) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if not isinstance(value, str):
        raise ValueError(f"not a timestamp: {value!r}")
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return epoch(parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC))


def _from_v1(data: Mapping[str, Any]) -> DetectorState:
    """The first release's state (``{"version": 1, "jobs": {id: [fingerprint, anchor]}}``)."""
    try:
        kind = data["kind"]
        records: dict[int, Record] = {}
        for job_id, (fingerprint, anchor) in dict(data.get("jobs") or {}).items():
            if kind == SCHEDULED:
                start, end, window = [*str(fingerprint).split("|"), "", ""][:3]
                records[job_key(job_id)] = Record(
                    int(start), int(end) if end else 0, int(window) if window else NO_WINDOW, 0
                )
            else:
                records[job_key(job_id)] = Record(int(anchor), int(anchor), 1, 0)
        cursor = data.get("cursor") or data["horizon"]
        return DetectorState(
            kind=kind,
            cursor=_epoch_of(cursor),
            horizon=_epoch_of(data["horizon"]),
            since=_epoch_of(data["horizon"]),
            reconciled_at=None,
            records=records,
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise StateError(f"unreadable version-1 state: {exc}") from None


# -- compact encoding ---------------------------------------------------------------------------
_MAGIC = {2: b"H2", 3: b"H3"}
_ROW = {2: 28, 3: 36}


def encode_records(records: Mapping[int, Record], base: int = 0) -> str:
    """``base`` (the state's go-live, which never moves): ``u`` is stored as ``base - u``, so the encoding of
    unchanged records stays the same while the cursor moves (a quiet poll then needs no state write)."""
    if not records:
        return ""
    keys = sorted(records)
    rows = [records[k] for k in keys]
    n = len(keys)
    # a is delta-coded against the previous row's a (sorted by key, so deltas are signed); b as b - a
    # (a duration for booked schedules); small columns as they are. Signed 64-bit keeps it simple and
    # zlib squeezes the zero bytes.
    a_deltas = [rows[0].a] + [rows[i].a - rows[i - 1].a for i in range(1, n)]
    body = b"".join(
        [
            struct.pack(f"<{n}Q", *keys),
            struct.pack(f"<{n}q", *a_deltas),
            struct.pack(f"<{n}q", *(r.b - r.a for r in rows)),
            struct.pack(f"<{n}H", *(r.c for r in rows)),
            struct.pack(f"<{n}H", *(min(r.seq, 0xFFFF) for r in rows)),
            struct.pack(f"<{n}q", *(base - r.u for r in rows)),
        ]
    )
    packed = _MAGIC[VERSION] + struct.pack("<I", n) + zlib.compress(body, 9)
    return base64.b64encode(packed).decode("ascii")


def decode_records(text: str, base: int = 0, version: int = VERSION) -> dict[int, Record]:
    if not text:
        return {}
    try:
        packed = base64.b64decode(text.encode("ascii"), validate=True)
    except (ValueError, UnicodeEncodeError) as exc:
        raise ValueError(f"jobs is not base64: {exc}") from None
    if packed[:2] != _MAGIC.get(version) or len(packed) < 6:
        raise ValueError("jobs is not an encoded record table")
    (n,) = struct.unpack("<I", packed[2:6])
    try:
        body = zlib.decompress(packed[6:])
    except zlib.error as exc:
        raise ValueError(f"jobs is corrupt: {exc}") from None
    if len(body) != n * _ROW[version]:
        raise ValueError("jobs is truncated")
    keys = struct.unpack_from(f"<{n}Q", body, 0)
    a_deltas = struct.unpack_from(f"<{n}q", body, 8 * n)
    b_minus_a = struct.unpack_from(f"<{n}q", body, 16 * n)
    cs = struct.unpack_from(f"<{n}H", body, 24 * n)
    seqs = struct.unpack_from(f"<{n}H", body, 26 * n)
    us = struct.unpack_from(f"<{n}q", body, 28 * n) if version >= 3 else None
    records: dict[int, Record] = {}
    a = 0
    for i in range(n):
        a = a_deltas[i] if i == 0 else a + a_deltas[i]
        records[keys[i]] = Record(a, a + b_minus_a[i], cs[i], seqs[i], 0 if us is None else base - us[i])
    return records
