"""The consumer's idempotency ledger: which ``event.id``s a DAG has already processed (pure, JSON-safe).

Each entry is a 64-bit hash of an ``event.id`` and when its asset event was made (epoch s). Entries are kept
``keep`` seconds (the consumer's look-back plus a margin), so every event a consumer may still be shown is
still in the ledger. The ids the newest run claimed are kept apart, so a retry of the claiming task is shown
the same events again. Serialized as packed (hash, time) pairs, base64'd: 16 characters per entry.
"""

from __future__ import annotations

import base64
import hashlib
import struct
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

VERSION = 1
_ENTRY = struct.Struct("<QI")


def event_key(event_id: str) -> int:
    return int.from_bytes(hashlib.blake2b(event_id.encode(), digest_size=8).digest(), "little")


class LedgerError(ValueError):
    """A ledger value that cannot be read."""


@dataclass
class Ledger:
    seen: dict[int, int] = field(default_factory=dict)  # event key -> asset event time (epoch s)
    run_id: str | None = None  # the newest run that claimed events
    claimed: set[int] = field(default_factory=set)  # what it claimed
    since: int = 0  # when the consumer started (epoch s): it is never shown events made before

    def taken(self, event_id: str, run_id: str) -> bool:
        """Processed already, by another run (a retry of the claiming run is shown its events again)."""
        key = event_key(event_id)
        return key in self.seen and not (run_id == self.run_id and key in self.claimed)

    def claim(self, run_id: str, events: Iterable[tuple[str, int]]) -> None:
        if run_id != self.run_id:
            self.run_id, self.claimed = run_id, set()
        for event_id, when in events:
            key = event_key(event_id)
            self.seen[key] = max(when, self.seen.get(key, when))
            self.claimed.add(key)

    def prune(self, oldest: int) -> None:
        self.seen = {key: when for key, when in self.seen.items() if when >= oldest or key in self.claimed}

    def to_json(self) -> dict[str, Any]:
        packed = b"".join(_ENTRY.pack(key, max(when, 0)) for key, when in sorted(self.seen.items(), key=_by_time))
        return {
            "v": VERSION,
            "seen": base64.b64encode(packed).decode(),
            "run_id": self.run_id,
            "claimed": sorted(f"{key:016x}" for key in self.claimed),
            "since": self.since,
        }

    @classmethod
    def from_json(cls, data: Any) -> Ledger:
        if data is None:
            return cls()
        try:
            if data.get("v") != VERSION:
                raise LedgerError(f"unknown ledger version {data.get('v')!r}")
            packed = base64.b64decode(data["seen"], validate=True)
            seen = {key: when for key, when in _ENTRY.iter_unpack(packed)}
            claimed = {int(text, 16) for text in data.get("claimed") or ()}
            return cls(seen=seen, run_id=data.get("run_id"), claimed=claimed, since=int(data.get("since") or 0))
        except LedgerError:
            raise
        except (AttributeError, KeyError, TypeError, ValueError, struct.error) as exc:
            raise LedgerError(f"unreadable ledger: {type(exc).__name__}: {exc}") from None


def _by_time(item: tuple[int, int]) -> tuple[int, int]:
    return item[1], item[0]
