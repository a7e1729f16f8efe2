"""Small helpers the sensor and trigger tests share: time slots, a customer id, event job ids."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from airflow_provider_housecallpro.hooks.housecallpro import HousecallProHook


def iso(dt: datetime) -> str:
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def slot(days: int, hour: int = 9, hours: int = 2) -> dict[str, str]:
    start = (datetime.now(UTC) + timedelta(days=days)).replace(hour=hour, minute=0, second=0, microsecond=0)
    return {"scheduled_start": iso(start), "scheduled_end": iso(start + timedelta(hours=hours))}


def a_customer(hook: HousecallProHook, index: int = 0) -> str:
    return [c.id for c in hook.iter_customers(sort_by="created_at", sort_direction="asc")][index]


def ids(events: list[dict[str, Any]]) -> list[str]:
    return [e["job"]["id"] for e in events]
