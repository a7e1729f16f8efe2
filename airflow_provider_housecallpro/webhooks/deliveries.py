"""What a verified webhook body is (pure: no I/O).

Housecall Pro posts ``{"event": "job.scheduled", "event_occurred_at": ..., "company_id": ..., "job": {...}}``: the
record under a key named after the event's first word (``job``, ``customer``, ``estimate``, ``invoice``, ``lead``;
``job.appointment.*`` carries ``appointment`` with its ``job_id``). Two routes out of the receiver:

- **job changes** (``job.*``, ``job.appointment.*``) go to the connection's inbox (:mod:`.inbox`), where the job
  watchers judge them against their own state — one judge for both paths, so a change is one event whichever
  path sees it first;
- **every delivery** (job ones included) is also a *raw* event on the asset ``housecallpro.webhooks.<event>``
  (:func:`airflow_provider_housecallpro.assets.webhook_asset`), recorded only if a DAG declared that asset.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

EVENT_NAME = re.compile(r"[a-z][a-z0-9_]*(\.[a-z0-9_]+){1,3}")
RAW_ASSET_PREFIX = "housecallpro.webhooks."
MAX_BODY = 256 * 1024  # bytes: a job record with many line items is tens of KB


class DeliveryError(ValueError):
    """A verified body that is not a delivery (names the rule; never quotes the body)."""


@dataclass(frozen=True)
class Delivery:
    id: str  # a hash of the raw body: a retried delivery has the same id
    event: str
    occurred_at: str | None
    company_id: str | None
    body: Mapping[str, Any] = field(repr=False)  # customers' details: never in a repr
    received_at: float

    @property
    def resource(self) -> str:
        """The body's key holding the record: ``job``, ``appointment`` for ``job.appointment.*``, ``customer``..."""
        parts = self.event.split(".")
        return parts[1] if parts[0] == "job" and len(parts) > 2 and parts[1] == "appointment" else parts[0]

    @property
    def record(self) -> Mapping[str, Any] | None:
        value = self.body.get(self.resource)
        return value if isinstance(value, Mapping) else None

    @property
    def is_job_change(self) -> bool:
        return self.event.startswith("job.")

    def job_entry(self) -> dict[str, Any] | None:
        """What the inbox keeps for a job change: the full job, or (appointments) the job id to read it by;
        None when the body holds neither."""
        if not self.is_job_change:
            return None
        record = self.record
        if record is None:
            return None
        if self.resource == "job":
            return {"event": self.event, "job": dict(record)} if isinstance(record.get("id"), str) else None
        job_id = record.get("job_id")
        return {"event": self.event, "job_id": job_id} if isinstance(job_id, str) and job_id else None

    def raw_payload(self) -> dict[str, Any]:
        """A raw event's payload (``extra["payload"]`` of its asset event); README "Real-time (webhooks)"."""
        return {
            "webhook": {
                "id": self.id,
                "event": self.event,
                "occurred_at": self.occurred_at,
                "company_id": self.company_id,
                "received_at": datetime.fromtimestamp(self.received_at, UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            },
            self.resource: None if self.record is None else dict(self.record),
        }


def raw_asset_name(event: str) -> str:
    return f"{RAW_ASSET_PREFIX}{event}"


def parse_json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise DeliveryError("body: not JSON") from None


def is_validation(value: Any) -> bool:
    """Housecall Pro's check when a URL is saved: an unsigned JSON object without ``event`` (``{"foo": "bar"}``)."""
    return isinstance(value, dict) and "event" not in value


def parse(body: bytes, received_at: float) -> Delivery:
    value = parse_json(body)
    if not isinstance(value, dict):
        raise DeliveryError("body: not a JSON object")
    event = value.get("event")
    if not isinstance(event, str) or not EVENT_NAME.fullmatch(event):
        raise DeliveryError("event: missing or not an event name like 'job.scheduled'")
    occurred, company = value.get("event_occurred_at"), value.get("company_id")
    return Delivery(
        id=hashlib.blake2b(body, digest_size=8).hexdigest(),
        event=event,
        occurred_at=occurred if isinstance(occurred, str) else None,
        company_id=company if isinstance(company, str) else None,
        body=value,
        received_at=received_at,
    )
