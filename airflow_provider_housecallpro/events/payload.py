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
from typing import Any

from airflow_provider_housecallpro.api.models import Job


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


EVENT_KEYS = frozenset({"event", "job", "is_paid", "customer_name", "customer_phone", "customer_email"})
