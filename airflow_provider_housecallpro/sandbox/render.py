"""Records as the API shows them: the spec's field names, nesting and timestamp format."""

from __future__ import annotations

from collections.abc import Collection
from typing import TYPE_CHECKING, Any

from .clock import fmt_ts
from .records import JSON, Appointment, Customer, Employee, Job

if TYPE_CHECKING:
    from .world import World


def render_employee(world: World, emp: Employee) -> JSON:
    data = dict(emp.__dict__)
    data.update(
        tags=list(emp.tags),
        permissions=dict(emp.permissions),
        created_at=fmt_ts(emp.created_at),
        company_name=world.company["name"],
        company_id=world.company["id"],
    )
    return data


def render_customer(world: World, cus: Customer, expand: Collection[str] = ()) -> JSON:
    data = dict(cus.__dict__)
    data.update(
        tags=list(cus.tags),
        addresses=[a.to_api() for a in cus.addresses],
        created_at=fmt_ts(cus.created_at),
        updated_at=fmt_ts(cus.updated_at),
        company_name=world.company["name"],
        company_id=world.company["id"],
    )
    if "attachments" in expand:
        data["attachments"] = []
    if "do_not_service" in expand:
        data["do_not_service"] = False
    return data


def _job_customer(world: World, cus: Customer) -> JSON:
    data = render_customer(world, cus)
    del data["addresses"], data["kind"]
    data["notes"] = [] if not cus.notes else [{"id": f"nte_{cus.id[4:]}", "content": cus.notes}]
    return data


def render_job(world: World, job: Job, expand: Collection[str] = ()) -> JSON:
    with world.lock:
        # The spec's schedule fields are not nullable: an unscheduled job's schedule leaves them out.
        schedule: JSON = _present(
            scheduled_start=fmt_ts(job.scheduled_start),
            scheduled_end=fmt_ts(job.scheduled_end),
            arrival_window=job.arrival_window,
        )
        if "appointments" in expand:
            schedule["appointments"] = [a.to_api() for a in appointments(job)]
        data: JSON = {
            "id": job.id,
            "invoice_number": job.invoice_number,
            "description": job.description,
            "customer": _job_customer(world, world.customers[job.customer_id]),
            "address": None if job.address is None else job.address.to_api(),
            "notes": [{"id": nid, "content": text} for nid, text in job.notes],
            "work_status": job.work_status,
            "work_timestamps": {
                "on_my_way_at": fmt_ts(job.on_my_way_at),
                "started_at": fmt_ts(job.started_at),
                "completed_at": fmt_ts(job.completed_at),
            },
            "schedule": schedule,
            "total_amount": job.total_amount,
            "outstanding_balance": job.outstanding_balance,
            "subtotal": job.subtotal,
            "assigned_employees": [render_employee(world, world.employees[e]) for e in job.employee_ids],
            "tags": list(job.tags),
            "original_estimate_id": job.original_estimate_id,
            "original_estimate_uuids": list(job.original_estimate_uuids or ()),
            "lead_source": job.lead_source,
            "job_fields": {
                "job_type": None if job.job_type is None else {"id": job.job_type.id, "name": job.job_type.name},
                "business_unit": None
                if job.business_unit is None
                else {"id": job.business_unit.id, "name": job.business_unit.name},
            },
            "created_at": fmt_ts(job.created_at),
            "updated_at": fmt_ts(job.updated_at),
            "canceled_at": fmt_ts(job.canceled_at),
            "deleted_at": fmt_ts(job.deleted_at),
            "company_name": world.company["name"],
            "company_id": world.company["id"],
            "assigned_route_template_id": job.assigned_route_template_id,
            # not nullable in the spec: present only when set
            **_present(
                locked_at=fmt_ts(job.locked_at),
                recurrence_number=job.recurrence_number,
                recurrence_rule=job.recurrence_rule,
            ),
        }
        if "attachments" in expand:
            data["attachments"] = []
        return data


def appointments(job: Job) -> list[Appointment]:
    if job.scheduled_start is None or job.scheduled_end is None:
        return []
    first = Appointment(
        job.appointment_id, job.scheduled_start, job.scheduled_end, job.arrival_window or 0, job.employee_ids
    )
    return [first, *job.extra_appointments]


def _present(**fields: Any) -> JSON:
    """The fields that have a value (for response fields the spec does not allow to be null)."""
    return {key: value for key, value in fields.items() if value is not None}
