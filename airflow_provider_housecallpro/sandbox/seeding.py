"""Making records: the seeded account (deterministic for a seed) and new jobs, which bookings make the same way."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from .catalog import (
    BUSINESSES,
    CANCELED,
    CITIES,
    COMPANY_NAME,
    COMPLETE,
    CUSTOMER_TAGS,
    FIRST_NAMES,
    JOB_TAGS,
    JOB_TYPES,
    LAST_NAMES,
    LEAD_SOURCES,
    NOTES,
    PERMISSIONS,
    STREETS,
)
from .records import JSON, Address, Appointment, Customer, Employee, Job, LineItem, Named

if TYPE_CHECKING:
    from .world import World


def seed_company(world: World) -> JSON:
    return {
        "id": world.new_uuid(),
        "name": COMPANY_NAME,
        "support_email": "support@lonestarhome.example",
        "phone_number": "5125550100",
        "logo_url": "https://assets.lonestarhome.example/logo.png",
        "address": {
            "street": "1100 Congress Ave",
            "street_line_2": "Suite 200",
            "city": "Austin",
            "state": "TX",
            "zip": "78701",
            "country": "US",
            "latitude": 30.2747,
            "longitude": -97.7404,
        },
        "website": "https://lonestarhome.example",
        "default_arrival_window": "60",
        "time_zone": "America/Chicago",
        "service_areas_data": {"zip_codes": sorted({z for _, z in CITIES})},
        "locations": [],
    }


def seed_employee(world: World, spec: tuple[str, str, str, str, tuple[str, ...], bool], at: datetime) -> Employee:
    first, last, role, color, tags, admin = spec
    eid = world.new_id("pro")
    perms = {p: True for p in PERMISSIONS}
    perms.update(is_admin=admin, can_edit_settings=admin, can_see_reporting=admin, is_point_of_contact=admin)
    return Employee(
        id=eid,
        first_name=first,
        last_name=last,
        email=f"{first.lower()}.{last.lower()}@lonestarhome.example",
        mobile_number=world.new_phone(),
        color_hex=color,
        avatar_url=f"https://assets.lonestarhome.example/avatars/{eid}.png",
        role=role,
        tags=list(tags),
        permissions=perms,
        created_at=at,
    )


def _address(world: World, kind: str = "service") -> Address:
    rng = world.rng
    city, zip_code = rng.choice(CITIES)
    line2 = rng.choice((None, None, None, f"Apt {rng.randint(100, 420)}"))
    street = f"{rng.randint(100, 9999)} {rng.choice(STREETS)}"
    return Address(world.new_id("adr"), kind, street, line2, city, "TX", zip_code, "US")


def seed_customer(world: World, i: int, base: datetime) -> Customer:
    rng = world.rng
    first, last = FIRST_NAMES[i], LAST_NAMES[(i * 7 + world.seed) % len(LAST_NAMES)]
    business = i % 6 == 5
    created = base - timedelta(days=rng.randint(60, 700), seconds=rng.randint(0, 86_399))
    addresses = [_address(world)]
    if rng.random() < 0.2:
        addresses.append(_address(world, "billing"))
    return Customer(
        id=world.new_id("cus"),
        first_name=first,
        last_name=last,
        email=None if rng.random() < 0.1 else f"{first.lower()}.{last.lower()}{i}@example.com",
        mobile_number=world.new_phone(),
        home_number=world.new_phone() if rng.random() < 0.3 else None,
        work_number=world.new_phone() if business else None,
        company=BUSINESSES[i // 6 % len(BUSINESSES)] if business else None,
        notifications_enabled=rng.random() < 0.8,
        lead_source=rng.choice((*(n for n, _ in LEAD_SOURCES), None)),
        notes=rng.choice((None, None, rng.choice(NOTES))),
        kind="business" if business else "homeowner",
        tags=sorted(rng.sample(CUSTOMER_TAGS, rng.choice((0, 0, 1, 2)))),
        addresses=addresses,
        created_at=created,
        updated_at=created + timedelta(seconds=rng.randint(0, 5_000_000)),
    )


def _between(world: World, start: datetime, end: datetime) -> datetime:
    span = max(int((end - start).total_seconds()), 0)
    return start + timedelta(seconds=world.rng.randint(0, span))


def seed_jobs(world: World, base: datetime) -> None:
    rng = world.rng
    plan = ["needs scheduling"] * 8 + ["scheduled"] * 18 + ["in progress"] * 4
    plan += ["complete rated"] * 10 + ["complete unrated"] * 10 + ["user canceled"] * 5 + ["pro canceled"] * 5
    rng.shuffle(plan)
    jobs = [_seed_job(world, status, base) for status in plan]
    for a, b in ((0, 1), (2, 3), (4, 5)):  # a few jobs share one updated_at, like a bulk edit
        done = [j for j in jobs if j.work_status in COMPLETE]
        shared = max(done[a].updated_at, done[b].updated_at)
        done[a].updated_at = done[b].updated_at = shared
    for job in sorted(jobs, key=lambda j: (j.created_at, j.id)):
        job.invoice_number = world.next_invoice()
    world.jobs = {job.id: job for job in jobs}


def _employees_for(world: World, status: str) -> list[str]:
    rng, ids = world.rng, list(world.employees)
    weights = {"needs scheduling": (7, 3, 0), "scheduled": (2, 6, 2), "user canceled": (5, 5, 0)}
    count = rng.choices((0, 1, 2), weights.get(status, (0, 7, 3)))[0]
    return rng.sample(ids[1:], count)  # the office dispatcher is never assigned


def _seed_job(world: World, status: str, base: datetime) -> Job:
    rng = world.rng
    customer = rng.choice(list(world.customers.values()))
    job_type = rng.choice(world.job_types) if rng.random() < 0.9 else None
    business_unit = world.business_units[customer.kind == "business"] if rng.random() < 0.8 else None
    # Business hours in the company's time zone (America/Chicago, UTC-6 in winter), stored in UTC.
    slot = timedelta(hours=rng.randint(8, 15) + 6, minutes=rng.choice((0, 30)))
    duration = timedelta(hours=rng.choice((1, 2, 2, 3, 4)))
    horizon = base - timedelta(seconds=1)
    start: datetime | None = None
    if status == "scheduled":
        days = rng.randint(1, 21) if rng.random() > 0.1 else -rng.randint(1, 3)
        start = base + timedelta(days=days) + slot
    elif status == "in progress":
        start = base - timedelta(days=1) + slot
    elif status in COMPLETE:
        start = base - timedelta(days=rng.randint(1, 60)) + slot
    elif status in CANCELED:
        start = base + timedelta(days=rng.randint(-30, 20)) + slot
    anchor = min(start, base) if start is not None else base
    created = anchor - timedelta(days=rng.randint(1, 20), seconds=rng.randint(0, 40_000))
    job = new_job(world, customer, job_type, None, created)
    job.work_status, job.business_unit = status, business_unit
    job.employee_ids = _employees_for(world, status)
    job.notes = [(world.new_id("nte"), n) for n in rng.sample(NOTES, rng.choice((0, 0, 1, 2)))]
    job.tags = rng.sample(JOB_TAGS, rng.choice((0, 0, 1, 1, 2)))
    if start is not None:
        set_schedule(job, start, start + duration, rng.choice((0, 30, 60, 120)))
        if status == "scheduled" and rng.random() < 0.15:
            second = start + timedelta(days=1)
            appt = Appointment(world.new_id("appt"), second, second + duration, 60, list(job.employee_ids))
            job.extra_appointments.append(appt)
    updated = _between(world, created, horizon)
    if status in COMPLETE or status == "in progress":
        assert start is not None
        job.on_my_way_at = start - timedelta(minutes=20)
        job.started_at = start + timedelta(minutes=rng.randint(0, 15))
        updated = job.started_at
        if status in COMPLETE:
            job.completed_at = job.started_at + duration
            updated = _between(world, job.completed_at, min(job.completed_at + timedelta(hours=10), horizon))
            if rng.random() < 0.65:
                job.outstanding_balance = 0
            if job.completed_at < base - timedelta(days=14) and rng.random() < 0.5:
                job.locked_at = job.completed_at + timedelta(days=7)
    elif status in CANCELED:
        updated = _between(world, created, horizon if start is None else min(start, horizon))
        if status == "user canceled":
            job.canceled_at = updated
        else:
            job.deleted_at = updated
    elif rng.random() < 0.1:
        job.outstanding_balance = 0  # paid in advance
    job.updated_at = updated
    if rng.random() < 0.15:
        job.original_estimate_id = world.new_id("est")
        job.original_estimate_uuids = [world.new_uuid()]
    if job_type is not None and job_type.name in ("Pest Control", "Gutter Cleaning") and rng.random() < 0.5:
        job.recurrence_rule = "FREQ=MONTHLY;INTERVAL=3;COUNT=4"
        job.recurrence_number = rng.randint(1, 4)
    if rng.random() < 0.1:
        job.assigned_route_template_id = world.new_id("rte")
    return job


def new_job(world: World, customer: Customer, job_type: Named | None, total: int | None, at: datetime) -> Job:
    rng = world.rng
    descriptions, catalog = JOB_TYPES.get(job_type.name if job_type else "", ((), ()))
    if total is not None:
        catalog = ((job_type.name if job_type else "Service", "labor", total, 1),)
    elif not catalog:
        catalog = (("Service call", "labor", 8900, 1),)
    items = [
        LineItem(world.new_id("lit"), name, f"{name} ({kind})", price, qty, kind, idx)
        for idx, (name, kind, price, qty) in enumerate(catalog)
    ]
    subtotal = sum(li.unit_price * li.quantity for li in items)
    address = next((a for a in customer.addresses if a.type == "service"), None)
    return Job(
        id=world.new_id("job"),
        invoice_number="",
        description=rng.choice(descriptions) if descriptions else "Service call",
        customer_id=customer.id,
        address=None if address is None else Address(**address.__dict__),
        work_status="needs scheduling",
        created_at=at,
        updated_at=at,
        appointment_id=world.new_id("appt"),
        total_amount=subtotal,
        outstanding_balance=subtotal,
        subtotal=subtotal,
        lead_source=customer.lead_source,
        job_type=job_type,
        line_items=items,
    )


def set_schedule(job: Job, start: datetime, end: datetime, window: int) -> None:
    job.scheduled_start, job.scheduled_end, job.arrival_window = start, end, window
