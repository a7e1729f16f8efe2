"""The event payload both triggers push: the job exactly as the API returned it, plus event metadata.

::

    {
      "event": {"id", "type": "job.scheduled" | "job.completed", "is_reschedule", "previous_schedule",
                "detected_at"},
      "job": {...the job as Housecall Pro returned it, customer nested...},
      "is_paid": outstanding_balance == 0 (None if unknown),
      "customer_name": "First Last" (or company), "customer_phone": mobile, else home, else work number,
      "customer_email": ...
    }
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from airflow_provider_housecallpro.api.models import Job, format_timestamp


def build_event(
    raw: Mapping[str, Any],
    job: Job,
    *,
    event_type: str,
    event_id: str,
    is_reschedule: bool,
    previous_schedule: dict[str, Any] | None,
    detected_at: str,
) -> dict[str, Any]:
    customer = job.customer
    phone = None
    if customer is not None:
        phone = customer.mobile_number or customer.home_number or customer.work_number
    return {
        "event": {
            "id": event_id,
            "type": event_type,
            "is_reschedule": is_reschedule,
            "previous_schedule": previous_schedule,
            "detected_at": detected_at,
        },
        "job": copy.deepcopy(dict(raw)),
        "is_paid": job.is_paid,
        "customer_name": customer.display_name if customer else None,
        "customer_phone": phone,
        "customer_email": customer.email if customer else None,
    }


def schedule_fingerprint(start: datetime, end: datetime | None, arrival_window: int | None) -> str:
    """A schedule as ``start|end|arrival_window`` (epoch seconds; empty when absent)."""
    return "|".join(
        [
            str(int(start.timestamp())),
            "" if end is None else str(int(end.timestamp())),
            "" if arrival_window is None else str(arrival_window),
        ]
    )


def decode_schedule(fingerprint: str) -> dict[str, Any]:
    """A schedule fingerprint back as the API's schedule fields."""
    start, end, window = [*fingerprint.split("|"), "", ""][:3]

    def ts(epoch: str) -> str | None:
        return format_timestamp(datetime.fromtimestamp(int(epoch), UTC)) if epoch else None

    return {"scheduled_start": ts(start), "scheduled_end": ts(end), "arrival_window": int(window) if window else None}


EVENT_KEYS = frozenset({"event", "job", "is_paid", "customer_name", "customer_phone", "customer_email"})
