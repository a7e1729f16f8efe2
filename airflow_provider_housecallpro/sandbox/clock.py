"""The sandbox's clock (real UTC time plus an offset, or frozen) and the live API's timestamp format."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta


def utc(dt: datetime) -> datetime:
    """Naive datetimes are UTC; aware ones are converted to UTC."""
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)


def parse_ts(value: str) -> datetime:
    """Parse ISO-8601 (``Z`` or offset or naive = UTC, date-only allowed); raises ``ValueError``."""
    text = value.strip()
    if text[-1:] in ("Z", "z"):
        text = text[:-1] + "+00:00"
    return utc(datetime.fromisoformat(text))


def fmt_ts(dt: datetime | None) -> str | None:
    """The live API's timestamp format: UTC, second precision, ``Z``."""
    return None if dt is None else utc(dt).strftime("%Y-%m-%dT%H:%M:%SZ")


class Clock:
    """Real UTC time plus an offset, or frozen at a fixed instant."""

    def __init__(self, now: datetime | None = None) -> None:
        self._lock = threading.Lock()
        self._offset = timedelta(0)
        self._frozen: datetime | None = utc(now) if now is not None else None

    def now(self) -> datetime:
        with self._lock:
            return self._now()

    def _now(self) -> datetime:
        return self._frozen if self._frozen is not None else datetime.now(UTC) + self._offset

    @property
    def frozen(self) -> bool:
        return self._frozen is not None

    def configure(
        self, *, freeze: bool | None = None, set_to: datetime | None = None, advance_seconds: float | None = None
    ) -> datetime:
        """Freeze (first), set, advance, unfreeze (last, continuing from the current instant)."""
        with self._lock:
            if freeze and self._frozen is None:
                self._frozen = self._now()
            if set_to is not None:
                if self._frozen is not None:
                    self._frozen = utc(set_to)
                else:
                    self._offset = utc(set_to) - datetime.now(UTC)
            if advance_seconds:
                if self._frozen is not None:
                    self._frozen += timedelta(seconds=advance_seconds)
                else:
                    self._offset += timedelta(seconds=advance_seconds)
            if freeze is False and self._frozen is not None:
                self._offset = self._frozen - datetime.now(UTC)
                self._frozen = None
            return self._now()

    def reset(self) -> None:
        """Back to real, running time."""
        with self._lock:
            self._offset = timedelta(0)
            self._frozen = None
