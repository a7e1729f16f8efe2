"""What the admin API (and the ``mutate`` fault) does to the account: book, reschedule, edit, start, complete,
cancel, touch and delete jobs, bulk bookings and new customers. Bodies are checked field by field; a refusal is a
:class:`~.records.WorldError` with the HTTP status to answer."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from .catalog import CANCELED, COMPLETE
from .clock import parse_ts
from .records import Address, Customer, Job, Named, WorldError
from .seeding import new_job, set_schedule

if TYPE_CHECKING:
    from .world import World


def stamp(world: World, body: Mapping[str, Any]) -> datetime:
    """The op's instant: ``body["updated_at"]`` when given, else the clock (second precision)."""
    override = _ts(body, "updated_at")
    return (override or world.clock.now()).replace(microsecond=0)


def apply(world: World, op: str, job_id: str | None, body: Mapping[str, Any]) -> Job:
    """Run one job operation by name (used by the admin routes and the ``mutate`` fault)."""
    allowed = _OP_KEYS.get(op)
    if allowed is None:
        raise WorldError(422, f"unknown op {op!r}; expected one of {', '.join(JOB_OPS)}")
    unknown = sorted(set(body) - allowed - {"updated_at"})
    if unknown:
        raise WorldError(422, f"unknown field(s) for {op}: {', '.join(unknown)}")
    with world.lock:
        if op == "book":
            return book_job(world, body)
        if job_id is None:
            raise WorldError(422, f"{op} needs a job_id")
        job = world.get_job(job_id)
        at = stamp(world, body)
        if op == "delete":  # a hard delete: gone from every list, 410 on GET /jobs/{id}
            del world.jobs[job_id]
            world.deleted.add(job_id)
            world.late.forget(job_id)
            return job
        previous = world.late.snapshot(job)
        _OPS[op](world, job, body, at)
        job.updated_at = at
        world.late.written(job_id, previous, world.clock.now())
        return job


def book_job(world: World, body: Mapping[str, Any]) -> Job:
    with world.lock:
        at = stamp(world, body)
        customer_id = _str(body, "customer_id")
        if customer_id is None:
            raise WorldError(422, "customer_id is required")
        customer = world.get_customer(customer_id)
        job_type = _job_type(world, _str(body, "job_type"))
        job = new_job(world, customer, job_type, _int(body, "total_amount"), at)
        job.invoice_number = world.next_invoice()
        job.description = _str(body, "description") or job.description
        job.tags = _strs(body, "tags") or []
        job.employee_ids = _employee_ids(world, body) or []
        unit = _str(body, "business_unit")
        if unit is not None:
            job.business_unit = next((b for b in world.business_units if b.name.lower() == unit.lower()), None)
            if job.business_unit is None:
                raise WorldError(422, f"Business unit not found: {unit}")
        start, end = _ts(body, "scheduled_start"), _ts(body, "scheduled_end")
        if start is not None:
            _reschedule(job, start, end, _int(body, "arrival_window"))
            job.work_status = "scheduled"
        elif end is not None:
            raise WorldError(422, "scheduled_end needs scheduled_start")
        world.jobs[job.id] = job
        world.late.written(job.id, None, world.clock.now())
        return job


def bulk_jobs(world: World, body: Mapping[str, Any]) -> int:
    """Create ``count`` scheduled jobs quickly (load tests)."""
    count = _int(body, "count")
    if count is None or not 0 <= count <= 500_000:
        raise WorldError(422, "count must be an integer between 0 and 500000")
    with world.lock:
        at = stamp(world, body)
        first = _ts(body, "scheduled_start") or at.replace(hour=8, minute=0, second=0) + timedelta(days=1)
        spacing = timedelta(minutes=_int(body, "spacing_minutes") or 30)
        duration = timedelta(minutes=_int(body, "duration_minutes") or 120)
        window = _int(body, "arrival_window")
        job_type = _job_type(world, _str(body, "job_type"))
        fixed = _str(body, "customer_id")
        customers = [world.get_customer(fixed)] if fixed else list(world.customers.values())
        employees = _employee_ids(world, body)
        staff, tags, total = list(world.employees)[1:], _strs(body, "tags") or [], _int(body, "total_amount")
        for i in range(count):
            job = new_job(world, customers[i % len(customers)], job_type, total, at)
            job.invoice_number = world.next_invoice()
            job.work_status, job.tags = "scheduled", list(tags)
            job.employee_ids = list(employees) if employees is not None else [staff[i % len(staff)]]
            start = first + spacing * i
            set_schedule(job, start, start + duration, 60 if window is None else window)
            world.jobs[job.id] = job
        return count


def create_customer(world: World, body: Mapping[str, Any]) -> Customer:
    """Store a customer as given (callers validate); addresses get ``adr_`` ids and type ``service``."""
    with world.lock:
        at = stamp(world, body)
        lead = body.get("lead_source")
        known = world.find_lead_source(lead) if isinstance(lead, str) else None
        company = body.get("company")
        addresses = [
            Address(world.new_id("adr"), "service", *(a.get(k) for k in _ADDRESS_FIELDS))
            for a in body.get("addresses") or []
        ]
        customer = Customer(
            id=world.new_id("cus"),
            first_name=body.get("first_name"),
            last_name=body.get("last_name"),
            email=body.get("email"),
            mobile_number=body.get("mobile_number"),
            home_number=body.get("home_number"),
            work_number=body.get("work_number"),
            company=company,
            notifications_enabled=bool(body.get("notifications_enabled", False)),
            lead_source=known.name if known else lead,
            notes=body.get("notes"),
            kind="business" if company else "homeowner",
            tags=list(body.get("tags") or []),
            addresses=addresses,
            created_at=at,
            updated_at=at,
        )
        world.customers[customer.id] = customer
        return customer


def _job_type(world: World, name: str | None) -> Named | None:
    if name is None:
        return None
    found = next((t for t in world.job_types if t.name.lower() == name.strip().lower()), None)
    if found is None:
        raise WorldError(422, f"Job type not found: {name}")
    return found


def _employee_ids(world: World, body: Mapping[str, Any]) -> list[str] | None:
    ids = _strs(body, "employee_ids")
    unknown = [e for e in ids or [] if e not in world.employees]
    if unknown:
        raise WorldError(422, f"unknown employee id(s): {', '.join(unknown)}")
    return ids


def _check_open(job: Job, action: str) -> None:
    if job.work_status in COMPLETE or job.work_status in CANCELED:
        raise WorldError(409, f"cannot {action} a job that is {job.work_status}")


def _reschedule(job: Job, start: datetime, end: datetime | None, window: int | None) -> None:
    length = (job.scheduled_end - job.scheduled_start) if job.scheduled_start and job.scheduled_end else None
    end = end or start + (length or timedelta(hours=2))
    if end < start:
        raise WorldError(422, "scheduled_end is before scheduled_start")
    default_window = job.arrival_window if job.arrival_window is not None else 60
    set_schedule(job, start, end, default_window if window is None else window)


def _op_reschedule(world: World, job: Job, body: Mapping[str, Any], at: datetime) -> None:
    start = _ts(body, "scheduled_start")
    if start is None:
        raise WorldError(422, "scheduled_start is required")
    _check_open(job, "reschedule")
    _reschedule(job, start, _ts(body, "scheduled_end"), _int(body, "arrival_window"))
    if job.work_status == "needs scheduling":
        job.work_status = "scheduled"


def _op_edit(world: World, job: Job, body: Mapping[str, Any], at: datetime) -> None:
    notes = body.get("notes")
    texts = [notes] if isinstance(notes, str) else _strs(body, "notes") or []
    job.notes.extend((world.new_id("nte"), text) for text in texts)
    tags, description, employees = _strs(body, "tags"), _str(body, "description"), _employee_ids(world, body)
    if tags is not None:
        job.tags = tags
    if description is not None:
        job.description = description
    if employees is not None:
        job.employee_ids = employees


def _op_start(world: World, job: Job, body: Mapping[str, Any], at: datetime) -> None:
    _check_open(job, "start")
    job.work_status = "in progress"
    job.on_my_way_at = job.on_my_way_at or at
    job.started_at = at


def _op_complete(world: World, job: Job, body: Mapping[str, Any], at: datetime) -> None:
    if job.work_status in CANCELED:
        raise WorldError(409, f"cannot complete a job that is {job.work_status}")
    paid, rated = _bool(body, "paid", True), _bool(body, "rated", False)
    job.work_status = "complete rated" if rated else "complete unrated"
    job.started_at = job.started_at or at
    job.completed_at = job.completed_at or at
    job.outstanding_balance = 0 if paid else job.total_amount


def _op_cancel(world: World, job: Job, body: Mapping[str, Any], at: datetime) -> None:
    by = _str(body, "by") or "user"
    if by not in ("user", "pro"):
        raise WorldError(422, 'by must be "user" or "pro"')
    if job.work_status in COMPLETE:
        raise WorldError(409, f"cannot cancel a job that is {job.work_status}")
    job.work_status = f"{by} canceled"
    if by == "user":
        job.canceled_at = at
    else:
        job.deleted_at = at


def _op_touch(world: World, job: Job, body: Mapping[str, Any], at: datetime) -> None:
    """Only ``updated_at`` changes (done by ``apply``)."""


_OPS: dict[str, Callable[[World, Job, Mapping[str, Any], datetime], None]] = {
    "reschedule": _op_reschedule,
    "edit": _op_edit,
    "start": _op_start,
    "complete": _op_complete,
    "cancel": _op_cancel,
    "touch": _op_touch,
}
_ADDRESS_FIELDS = ("street", "street_line_2", "city", "state", "zip", "country")
_OP_KEYS: dict[str, frozenset[str]] = {
    "book": frozenset(
        {"customer_id", "scheduled_start", "scheduled_end", "arrival_window", "employee_ids", "job_type"}
        | {"tags", "description", "total_amount", "business_unit"}
    ),
    "reschedule": frozenset({"scheduled_start", "scheduled_end", "arrival_window"}),
    "edit": frozenset({"notes", "tags", "description", "employee_ids"}),
    "start": frozenset(),
    "complete": frozenset({"paid", "rated"}),
    "cancel": frozenset({"by"}),
    "touch": frozenset(),
    "delete": frozenset(),
}
JOB_OPS = tuple(_OP_KEYS)  # book, reschedule, edit, start, complete, cancel, touch, delete


# Typed readers for admin bodies; a wrong type is a 422 WorldError.
def _str(body: Mapping[str, Any], key: str) -> str | None:
    value = body.get(key)
    if value is not None and not isinstance(value, str):
        raise WorldError(422, f"{key} must be a string")
    return value


def _int(body: Mapping[str, Any], key: str) -> int | None:
    value = body.get(key)
    if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
        raise WorldError(422, f"{key} must be an integer")
    return value


def _bool(body: Mapping[str, Any], key: str, default: bool) -> bool:
    value = body.get(key, default)
    if not isinstance(value, bool):
        raise WorldError(422, f"{key} must be a boolean")
    return value


def _strs(body: Mapping[str, Any], key: str) -> list[str] | None:
    value = body.get(key)
    if value is not None and not (isinstance(value, list) and all(isinstance(v, str) for v in value)):
        raise WorldError(422, f"{key} must be a list of strings")
    return None if value is None else list(value)


def _ts(body: Mapping[str, Any], key: str) -> datetime | None:
    value = _str(body, key)
    if value is None:
        return None
    try:
        return parse_ts(value)
    except ValueError:
        raise WorldError(422, f"{key} is not an ISO-8601 timestamp: {value!r}") from None
