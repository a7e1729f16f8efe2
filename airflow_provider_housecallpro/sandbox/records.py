"""The account's records (customers, employees, jobs, …) as plain dataclasses, and how they are queried and sorted."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from .clock import fmt_ts

JSON = dict[str, Any]


class WorldError(Exception):
    """A world operation was refused; ``status`` is the HTTP status the admin API answers with."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass
class Address:
    id: str
    type: str
    street: str | None
    street_line_2: str | None
    city: str | None
    state: str | None
    zip: str | None
    country: str | None

    def to_api(self) -> JSON:
        return dict(self.__dict__)


@dataclass
class Employee:
    id: str
    first_name: str
    last_name: str
    email: str
    mobile_number: str
    color_hex: str
    avatar_url: str
    role: str
    tags: list[str]
    permissions: dict[str, bool]
    created_at: datetime


@dataclass
class Customer:
    id: str
    first_name: str | None
    last_name: str | None
    email: str | None
    mobile_number: str | None
    home_number: str | None
    work_number: str | None
    company: str | None
    notifications_enabled: bool
    lead_source: str | None
    notes: str | None
    kind: str
    tags: list[str]
    addresses: list[Address]
    created_at: datetime
    updated_at: datetime


@dataclass
class Named:
    """LeadSource, JobType and business unit: ``{id, name}`` (+ ``editable`` for lead sources)."""

    id: str
    name: str
    editable: bool = False


@dataclass
class LineItem:
    id: str
    name: str
    description: str
    unit_price: int
    quantity: int
    kind: str
    order_index: int
    unit_cost: int = 0
    taxable: bool = False

    def to_api(self) -> JSON:
        data = dict(self.__dict__)
        # No service_item_id / service_item_type: the spec's types are not nullable, and these items come from
        # no price book, so the keys are left out rather than sent as null.
        data.update(amount=self.unit_price * self.quantity, unit_of_measure="Each")
        return data


@dataclass
class Appointment:
    id: str
    start: datetime
    end: datetime
    arrival_window: int
    employee_ids: list[str]

    def to_api(self) -> JSON:
        return {
            "id": self.id,
            "start_date": self.start.date().isoformat(),
            "start_time": fmt_ts(self.start),
            "end_time": fmt_ts(self.end),
            "anytime": False,
            "arrival_window_minutes": self.arrival_window,
            "dispatched_employees_ids": list(self.employee_ids),
        }


@dataclass
class Job:
    id: str
    invoice_number: str
    description: str
    customer_id: str
    address: Address | None
    work_status: str
    created_at: datetime
    updated_at: datetime
    scheduled_start: datetime | None = None
    scheduled_end: datetime | None = None
    arrival_window: int | None = None
    appointment_id: str = ""
    extra_appointments: list[Appointment] = field(default_factory=list)
    notes: list[tuple[str, str]] = field(default_factory=list)
    on_my_way_at: datetime | None = None
    started_at: datetime | None = None
    completed_at: datetime | None = None
    canceled_at: datetime | None = None
    deleted_at: datetime | None = None
    locked_at: datetime | None = None
    total_amount: int = 0
    outstanding_balance: int = 0
    subtotal: int = 0
    employee_ids: list[str] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    original_estimate_id: str | None = None
    original_estimate_uuids: list[str] | None = None
    lead_source: str | None = None
    job_type: Named | None = None
    business_unit: Named | None = None
    recurrence_number: int | None = None
    recurrence_rule: str | None = None
    assigned_route_template_id: str | None = None
    line_items: list[LineItem] = field(default_factory=list)


@dataclass(frozen=True)
class JobQuery:
    """Validated ``GET /jobs`` parameters."""

    sort_by: str = "created_at"
    descending: bool = True
    scheduled_start_min: datetime | None = None
    scheduled_start_max: datetime | None = None
    scheduled_end_min: datetime | None = None
    scheduled_end_max: datetime | None = None
    customer_id: str | None = None
    employee_ids: frozenset[str] = frozenset()
    statuses: frozenset[str] = frozenset()  # response values; empty = all


def _natural(value: str) -> tuple[int, str]:
    return (len(value), value) if value.isdigit() else (1_000_000, value)


JOB_SORT_KEYS: dict[str, Any] = {
    "created_at": lambda j: j.created_at,
    "updated_at": lambda j: j.updated_at,
    "invoice_number": lambda j: _natural(j.invoice_number),
    "id": lambda j: j.id,
    "description": lambda j: j.description.lower(),
    "work_status": lambda j: j.work_status,
}
CUSTOMER_SORT_KEYS: dict[str, Any] = {
    "created_at": lambda c: c.created_at,
    "updated_at": lambda c: c.updated_at,
    "first_name": lambda c: (c.first_name or "").lower(),
    "last_name": lambda c: (c.last_name or "").lower(),
    "email": lambda c: (c.email or "").lower(),
    "id": lambda c: c.id,
}
EMPLOYEE_SORT_KEYS: dict[str, Any] = {
    "created_at": lambda e: e.created_at,
    "first_name": lambda e: e.first_name.lower(),
    "last_name": lambda e: e.last_name.lower(),
    "email": lambda e: e.email.lower(),
    "id": lambda e: e.id,
}


def sort_records(records: Iterable[Any], key: Any, descending: bool) -> list[Any]:
    """Sort by ``key`` with ``id`` as the deterministic tie-breaker (same direction)."""
    return sorted(records, key=lambda r: (key(r), r.id), reverse=descending)


def _digits(value: str | None) -> str:
    return "".join(ch for ch in value or "" if ch.isdigit())


def customer_matches(customer: Customer, q: str) -> bool:
    """Fuzzy like the live search: the whole query, or every word of it, found in some field."""
    names = [customer.first_name or "", customer.last_name or ""]
    texts = [*names, " ".join(n for n in names if n), customer.email or "", customer.company or ""]
    texts += [a.street or "" for a in customer.addresses]
    haystack = [t.lower() for t in texts if t]
    phones = [_digits(n) for n in (customer.mobile_number, customer.home_number, customer.work_number)]

    def hit(term: str) -> bool:
        digits = _digits(term)
        if any(term in text for text in haystack):
            return True
        return len(digits) >= 3 and len(digits) * 2 >= len(term) and any(digits in p for p in phones)

    needle = q.strip().lower()
    return not needle or hit(needle) or all(hit(word) for word in needle.split())
