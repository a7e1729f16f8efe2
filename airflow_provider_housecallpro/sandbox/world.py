"""The sandbox's in-memory Housecall Pro account: a controllable clock, seeded data and the world operations.

Everything here is plain Python (no HTTP): ``app.py`` renders it and the admin API drives it. All access goes
through ``World.lock`` so the direct ``SandboxServer.world`` handle is safe to use from a test thread.
"""

from __future__ import annotations

import random
import threading
import uuid
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

JSON = dict[str, Any]

WORK_STATUSES = (
    "needs scheduling",
    "scheduled",
    "in progress",
    "complete rated",
    "complete unrated",
    "user canceled",
    "pro canceled",
)
#: ``work_status[]`` filter values -> response ``work_status`` values.
STATUS_FILTERS: dict[str, frozenset[str]] = {
    "unscheduled": frozenset({"needs scheduling"}),
    "scheduled": frozenset({"scheduled"}),
    "in_progress": frozenset({"in progress"}),
    "completed": frozenset({"complete rated", "complete unrated"}),
    "canceled": frozenset({"user canceled", "pro canceled"}),
}
COMPLETE = STATUS_FILTERS["completed"]
CANCELED = STATUS_FILTERS["canceled"]
JOB_OPS = ("book", "reschedule", "edit", "start", "complete", "cancel", "touch", "delete")

COMPANY_NAME = "Lone Star Home Services"
# name -> (descriptions, line items (name, kind, unit_price cents, quantity))
JOB_TYPES: dict[str, tuple[tuple[str, ...], tuple[tuple[str, str, int, int], ...]]] = {
    "HVAC — Tune-Up": (
        ("Seasonal AC tune-up", "Furnace safety inspection", "Heat pump maintenance"),
        (("Tune-up visit", "labor", 12900, 1), ("Air filter 16x25x1", "materials", 1800, 2)),
    ),
    "Plumbing Repair": (
        ("Leaking kitchen faucet", "Water heater not heating", "Slow drain in master bath", "Running toilet"),
        (("Diagnostic fee", "labor", 8900, 1), ("Repair labor (per hour)", "labor", 11500, 2)),
    ),
    "Gutter Cleaning": (
        ("Gutter cleaning, one story", "Gutter cleaning and downspout flush"),
        (("Gutter cleaning (per linear ft)", "labor", 125, 160),),
    ),
    "Electrical": (
        ("Install ceiling fan", "Replace GFCI outlets", "Panel inspection"),
        (("Electrical labor (per hour)", "labor", 13500, 2), ("GFCI outlet", "materials", 2600, 3)),
    ),
    "Pest Control": (
        ("Quarterly pest treatment", "Termite inspection", "Ant treatment"),
        (("Pest treatment", "labor", 14900, 1),),
    ),
}
BUSINESS_UNITS = ("Residential", "Commercial")
LEAD_SOURCES = (("Google", False), ("Facebook", False), ("Referral", True), ("Website", True), ("Yelp", False))
CUSTOMER_TAGS = ("vip", "maintenance plan", "pays by check", "dog on property", "new construction")
JOB_TAGS = ("warranty", "priority", "callback", "maintenance plan", "estimate approved", "after hours")
NOTES = (
    "Gate code 4521",
    "Customer prefers a text before arrival",
    "Dog in backyard, keep the gate closed",
    "Park in the driveway, not on the street",
    "Bring the tall ladder: two-story house",
    "Call on arrival, doorbell is broken",
)
EMPLOYEES = (
    ("Maria", "Gonzalez", "office staff", "#3f51b5", ("dispatcher",), True),
    ("Jake", "Thompson", "field tech", "#e91e63", ("hvac", "lead tech"), False),
    ("DeShawn", "Carter", "field tech", "#009688", ("plumbing",), False),
    ("Emily", "Nguyen", "field tech", "#ff9800", ("electrical", "hvac"), False),
    ("Luis", "Ramirez", "field tech", "#795548", ("pest", "gutters"), False),
)
FIRST_NAMES = (
    "James", "Olivia", "Noah", "Emma", "Liam", "Ava", "Mason", "Sophia", "Ethan", "Isabella", "Lucas",
    "Mia", "Benjamin", "Charlotte", "Henry", "Amelia", "Carlos", "Harper", "Wyatt", "Evelyn", "Jackson",
    "Abigail", "Samuel", "Ella", "Daniel", "Grace", "Mateo", "Chloe", "Caleb", "Zoe",
)  # fmt: skip
LAST_NAMES = (
    "Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis", "Rodriguez", "Martinez",
    "Hernandez", "Lopez", "Wilson", "Anderson", "Thomas", "Taylor", "Moore", "Jackson", "Martin", "Lee",
    "Perez", "White", "Harris", "Clark", "Lewis", "Walker", "Hall", "Young", "King", "Wright",
)  # fmt: skip
BUSINESSES = ("Barton Creek Dental", "Hill Country Realty", "Eastside Coffee Co", "Capitol Auto Repair")
STREETS = (
    "Oak Hollow Dr", "Congress Ave", "Burnet Rd", "Lamar Blvd", "Pecan St", "Riverside Dr", "Bluebonnet Ln",
    "Shoal Creek Blvd", "Manchaca Rd", "Brodie Ln", "Mesquite Trl", "Live Oak St",
)  # fmt: skip
CITIES = (
    ("Austin", "78704"), ("Austin", "78745"), ("Round Rock", "78664"), ("Cedar Park", "78613"),
    ("Pflugerville", "78660"), ("Georgetown", "78626"), ("Leander", "78641"),
)  # fmt: skip
PERMISSIONS = (
    "can_add_and_edit_job", "can_be_booked_online", "can_call_and_text_with_customers",
    "can_chat_with_customers", "can_delete_and_cancel_job", "can_edit_message_on_invoice",
    "can_see_street_view_data", "can_share_job", "can_take_payment_see_prices", "can_see_customers",
    "can_see_full_schedule", "can_see_future_jobs", "can_see_marketing_campaigns", "can_see_reporting",
    "can_edit_settings", "is_point_of_contact", "is_admin",
)  # fmt: skip


class WorldError(Exception):
    """A world operation was refused; ``status`` is the HTTP status the admin API answers with."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


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


class World:
    """The account: company, employees, customers, lead sources, job types and jobs."""

    def __init__(self, seed: int = 1, clock: Clock | None = None) -> None:
        self.clock = clock if clock is not None else Clock()
        self.lock = threading.RLock()
        # "id": ties in a sort come back in id order, like a database with a tie-breaker. "random": in a
        # different order on every request, like ORDER BY updated_at alone (what paging clients must survive).
        self.tie_order = "id"
        self.reseed(seed)

    # ----------------------------------------------------------------- seeding
    def reseed(self, seed: int) -> None:
        """Rebuild the account deterministically; times are relative to midnight UTC of the clock's day."""
        with self.lock:
            self.seed = seed
            self._rng = random.Random(seed)
            self._invoice_counter = 1000
            base = self.clock.now().replace(hour=0, minute=0, second=0, microsecond=0)
            self.company = self._seed_company()
            self.lead_sources = [Named(self.new_id("ls"), name, ed) for name, ed in LEAD_SOURCES]
            self.job_types = [Named(self.new_id("jbt"), name) for name in JOB_TYPES]
            self.business_units = [Named(self.new_id("bu"), name) for name in BUSINESS_UNITS]
            self.employees: dict[str, Employee] = {}
            for i, spec in enumerate(EMPLOYEES):
                emp = self._seed_employee(spec, base - timedelta(days=400 - 40 * i))
                self.employees[emp.id] = emp
            self.customers: dict[str, Customer] = {}
            for i in range(30):
                cus = self._seed_customer(i, base)
                self.customers[cus.id] = cus
            self.jobs: dict[str, Job] = {}
            self.deleted: set[str] = set()
            self._ties = random.Random(seed + 1)
            self._seed_jobs(base)

    def new_id(self, prefix: str) -> str:
        return f"{prefix}_{self._rng.getrandbits(128):032x}"

    def _uuid(self) -> str:
        return str(uuid.UUID(int=self._rng.getrandbits(128), version=4))

    def _phone(self) -> str:
        rng = self._rng
        return f"{rng.choice(('512', '737'))}{rng.randint(200, 999)}{rng.randint(0, 9999):04d}"

    def _seed_company(self) -> JSON:
        return {
            "id": self._uuid(),
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

    def _seed_employee(self, spec: tuple[str, str, str, str, tuple[str, ...], bool], at: datetime) -> Employee:
        first, last, role, color, tags, admin = spec
        eid = self.new_id("pro")
        perms = {p: True for p in PERMISSIONS}
        perms.update(is_admin=admin, can_edit_settings=admin, can_see_reporting=admin, is_point_of_contact=admin)
        return Employee(
            id=eid,
            first_name=first,
            last_name=last,
            email=f"{first.lower()}.{last.lower()}@lonestarhome.example",
            mobile_number=self._phone(),
            color_hex=color,
            avatar_url=f"https://assets.lonestarhome.example/avatars/{eid}.png",
            role=role,
            tags=list(tags),
            permissions=perms,
            created_at=at,
        )

    def _address(self, kind: str = "service") -> Address:
        rng = self._rng
        city, zip_code = rng.choice(CITIES)
        line2 = rng.choice((None, None, None, f"Apt {rng.randint(100, 420)}"))
        street = f"{rng.randint(100, 9999)} {rng.choice(STREETS)}"
        return Address(self.new_id("adr"), kind, street, line2, city, "TX", zip_code, "US")

    def _seed_customer(self, i: int, base: datetime) -> Customer:
        rng = self._rng
        first, last = FIRST_NAMES[i], LAST_NAMES[(i * 7 + self.seed) % len(LAST_NAMES)]
        business = i % 6 == 5
        created = base - timedelta(days=rng.randint(60, 700), seconds=rng.randint(0, 86_399))
        addresses = [self._address()]
        if rng.random() < 0.2:
            addresses.append(self._address("billing"))
        return Customer(
            id=self.new_id("cus"),
            first_name=first,
            last_name=last,
            email=None if rng.random() < 0.1 else f"{first.lower()}.{last.lower()}{i}@example.com",
            mobile_number=self._phone(),
            home_number=self._phone() if rng.random() < 0.3 else None,
            work_number=self._phone() if business else None,
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

    def _between(self, start: datetime, end: datetime) -> datetime:
        span = max(int((end - start).total_seconds()), 0)
        return start + timedelta(seconds=self._rng.randint(0, span))

    def _seed_jobs(self, base: datetime) -> None:
        rng = self._rng
        plan = ["needs scheduling"] * 8 + ["scheduled"] * 18 + ["in progress"] * 4
        plan += ["complete rated"] * 10 + ["complete unrated"] * 10 + ["user canceled"] * 5 + ["pro canceled"] * 5
        rng.shuffle(plan)
        jobs = [self._seed_job(status, base) for status in plan]
        for a, b in ((0, 1), (2, 3), (4, 5)):  # a few jobs share one updated_at, like a bulk edit
            done = [j for j in jobs if j.work_status in COMPLETE]
            shared = max(done[a].updated_at, done[b].updated_at)
            done[a].updated_at = done[b].updated_at = shared
        for job in sorted(jobs, key=lambda j: (j.created_at, j.id)):
            job.invoice_number = self._next_invoice()
        self.jobs = {job.id: job for job in jobs}

    def _next_invoice(self) -> str:
        self._invoice_counter += 1
        return str(self._invoice_counter)

    def _employees_for(self, status: str) -> list[str]:
        rng, ids = self._rng, list(self.employees)
        weights = {"needs scheduling": (7, 3, 0), "scheduled": (2, 6, 2), "user canceled": (5, 5, 0)}
        count = rng.choices((0, 1, 2), weights.get(status, (0, 7, 3)))[0]
        return rng.sample(ids[1:], count)  # the office dispatcher is never assigned

    def _seed_job(self, status: str, base: datetime) -> Job:
        rng = self._rng
        customer = rng.choice(list(self.customers.values()))
        job_type = rng.choice(self.job_types) if rng.random() < 0.9 else None
        business_unit = self.business_units[customer.kind == "business"] if rng.random() < 0.8 else None
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
        job = self._new_job(customer, job_type, None, created)
        job.work_status, job.business_unit = status, business_unit
        job.employee_ids = self._employees_for(status)
        job.notes = [(self.new_id("nte"), n) for n in rng.sample(NOTES, rng.choice((0, 0, 1, 2)))]
        job.tags = rng.sample(JOB_TAGS, rng.choice((0, 0, 1, 1, 2)))
        if start is not None:
            self._set_schedule(job, start, start + duration, rng.choice((0, 30, 60, 120)))
            if status == "scheduled" and rng.random() < 0.15:
                second = start + timedelta(days=1)
                appt = Appointment(self.new_id("appt"), second, second + duration, 60, list(job.employee_ids))
                job.extra_appointments.append(appt)
        updated = self._between(created, horizon)
        if status in COMPLETE or status == "in progress":
            assert start is not None
            job.on_my_way_at = start - timedelta(minutes=20)
            job.started_at = start + timedelta(minutes=rng.randint(0, 15))
            updated = job.started_at
            if status in COMPLETE:
                job.completed_at = job.started_at + duration
                updated = self._between(job.completed_at, min(job.completed_at + timedelta(hours=10), horizon))
                if rng.random() < 0.65:
                    job.outstanding_balance = 0
                if job.completed_at < base - timedelta(days=14) and rng.random() < 0.5:
                    job.locked_at = job.completed_at + timedelta(days=7)
        elif status in CANCELED:
            updated = self._between(created, horizon if start is None else min(start, horizon))
            if status == "user canceled":
                job.canceled_at = updated
            else:
                job.deleted_at = updated
        elif rng.random() < 0.1:
            job.outstanding_balance = 0  # paid in advance
        job.updated_at = updated
        if rng.random() < 0.15:
            job.original_estimate_id = self.new_id("est")
            job.original_estimate_uuids = [self._uuid()]
        if job_type is not None and job_type.name in ("Pest Control", "Gutter Cleaning") and rng.random() < 0.5:
            job.recurrence_rule = "FREQ=MONTHLY;INTERVAL=3;COUNT=4"
            job.recurrence_number = rng.randint(1, 4)
        if rng.random() < 0.1:
            job.assigned_route_template_id = self.new_id("rte")
        return job

    # ------------------------------------------------------------- job helpers
    def _new_job(self, customer: Customer, job_type: Named | None, total: int | None, at: datetime) -> Job:
        rng = self._rng
        descriptions, catalog = JOB_TYPES.get(job_type.name if job_type else "", ((), ()))
        if total is not None:
            catalog = ((job_type.name if job_type else "Service", "labor", total, 1),)
        elif not catalog:
            catalog = (("Service call", "labor", 8900, 1),)
        items = [
            LineItem(self.new_id("lit"), name, f"{name} ({kind})", price, qty, kind, idx)
            for idx, (name, kind, price, qty) in enumerate(catalog)
        ]
        subtotal = sum(li.unit_price * li.quantity for li in items)
        address = next((a for a in customer.addresses if a.type == "service"), None)
        return Job(
            id=self.new_id("job"),
            invoice_number="",
            description=rng.choice(descriptions) if descriptions else "Service call",
            customer_id=customer.id,
            address=None if address is None else Address(**address.__dict__),
            work_status="needs scheduling",
            created_at=at,
            updated_at=at,
            appointment_id=self.new_id("appt"),
            total_amount=subtotal,
            outstanding_balance=subtotal,
            subtotal=subtotal,
            lead_source=customer.lead_source,
            job_type=job_type,
            line_items=items,
        )

    @staticmethod
    def _set_schedule(job: Job, start: datetime, end: datetime, window: int) -> None:
        job.scheduled_start, job.scheduled_end, job.arrival_window = start, end, window

    # ------------------------------------------------------------------ queries
    def get_job(self, job_id: str) -> Job:
        with self.lock:
            job = self.jobs.get(job_id)
            if job is None and job_id in self.deleted:
                raise WorldError(410, "job has been deleted")
        if job is None:
            raise WorldError(404, "job not found")
        return job

    def get_customer(self, customer_id: str) -> Customer:
        with self.lock:
            customer = self.customers.get(customer_id)
        if customer is None:
            raise WorldError(404, "customer not found")
        return customer

    def find_jobs(self, query: JobQuery) -> list[Job]:
        """Filtered and sorted (``id`` tie-breaker); paging is the caller's."""
        ranges = (
            ("scheduled_start", query.scheduled_start_min, query.scheduled_start_max),
            ("scheduled_end", query.scheduled_end_min, query.scheduled_end_max),
        )
        needs_schedule = any(lo is not None or hi is not None for _, lo, hi in ranges)

        def keep(job: Job) -> bool:
            if query.statuses and job.work_status not in query.statuses:
                return False
            if query.customer_id is not None and job.customer_id != query.customer_id:
                return False
            if query.employee_ids and query.employee_ids.isdisjoint(job.employee_ids):
                return False
            if needs_schedule and job.scheduled_start is None:
                return False
            for attr, lo, hi in ranges:
                value: datetime | None = getattr(job, attr)
                if value is not None and ((lo is not None and value < lo) or (hi is not None and value > hi)):
                    return False
            return True

        with self.lock:
            jobs = [j for j in self.jobs.values() if keep(j)]
            if self.tie_order == "random":
                key = JOB_SORT_KEYS[query.sort_by]
                shuffle = {j.id: self._ties.random() for j in jobs}
                return sorted(jobs, key=lambda j: (key(j), shuffle[j.id]), reverse=query.descending)
        return sort_records(jobs, JOB_SORT_KEYS[query.sort_by], query.descending)

    def find_customers(self, q: str | None, sort_by: str, descending: bool) -> list[Customer]:
        with self.lock:
            found = [c for c in self.customers.values() if q is None or customer_matches(c, q)]
        return sort_records(found, CUSTOMER_SORT_KEYS[sort_by], descending)

    def find_lead_source(self, name: str) -> Named | None:
        wanted = name.strip().lower()
        return next((ls for ls in self.lead_sources if ls.name.lower() == wanted), None)

    def summary(self) -> JSON:
        with self.lock:
            by_status = dict.fromkeys(WORK_STATUSES, 0)
            for job in self.jobs.values():
                by_status[job.work_status] += 1
            return {
                "seed": self.seed,
                "now": fmt_ts(self.clock.now()),
                "clock_frozen": self.clock.frozen,
                "jobs": len(self.jobs),
                "customers": len(self.customers),
                "employees": len(self.employees),
                "jobs_by_status": by_status,
            }

    # ---------------------------------------------------------------- rendering
    def render_employee(self, emp: Employee) -> JSON:
        data = dict(emp.__dict__)
        data.update(
            tags=list(emp.tags),
            permissions=dict(emp.permissions),
            created_at=fmt_ts(emp.created_at),
            company_name=self.company["name"],
            company_id=self.company["id"],
        )
        return data

    def render_customer(self, cus: Customer, expand: Collection[str] = ()) -> JSON:
        data = dict(cus.__dict__)
        data.update(
            tags=list(cus.tags),
            addresses=[a.to_api() for a in cus.addresses],
            created_at=fmt_ts(cus.created_at),
            updated_at=fmt_ts(cus.updated_at),
            company_name=self.company["name"],
            company_id=self.company["id"],
        )
        if "attachments" in expand:
            data["attachments"] = []
        if "do_not_service" in expand:
            data["do_not_service"] = False
        return data

    def _job_customer(self, cus: Customer) -> JSON:
        data = self.render_customer(cus)
        del data["addresses"], data["kind"]
        data["notes"] = [] if not cus.notes else [{"id": f"nte_{cus.id[4:]}", "content": cus.notes}]
        return data

    def render_job(self, job: Job, expand: Collection[str] = ()) -> JSON:
        with self.lock:
            # The spec's schedule fields are not nullable: an unscheduled job's schedule leaves them out.
            schedule: JSON = _present(
                scheduled_start=fmt_ts(job.scheduled_start),
                scheduled_end=fmt_ts(job.scheduled_end),
                arrival_window=job.arrival_window,
            )
            if "appointments" in expand:
                schedule["appointments"] = [a.to_api() for a in self.appointments(job)]
            data: JSON = {
                "id": job.id,
                "invoice_number": job.invoice_number,
                "description": job.description,
                "customer": self._job_customer(self.customers[job.customer_id]),
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
                "assigned_employees": [self.render_employee(self.employees[e]) for e in job.employee_ids],
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
                "company_name": self.company["name"],
                "company_id": self.company["id"],
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

    @staticmethod
    def appointments(job: Job) -> list[Appointment]:
        if job.scheduled_start is None or job.scheduled_end is None:
            return []
        first = Appointment(
            job.appointment_id, job.scheduled_start, job.scheduled_end, job.arrival_window or 0, job.employee_ids
        )
        return [first, *job.extra_appointments]

    # -------------------------------------------------------------- operations
    def stamp(self, body: Mapping[str, Any]) -> datetime:
        """The op's instant: ``body["updated_at"]`` when given, else the clock (second precision)."""
        override = _ts(body, "updated_at")
        return (override or self.clock.now()).replace(microsecond=0)

    def apply(self, op: str, job_id: str | None, body: Mapping[str, Any]) -> Job:
        """Run one job operation by name (used by the admin routes and the ``mutate`` fault)."""
        allowed = _OP_KEYS.get(op)
        if allowed is None:
            raise WorldError(422, f"unknown op {op!r}; expected one of {', '.join(JOB_OPS)}")
        unknown = sorted(set(body) - allowed - {"updated_at"})
        if unknown:
            raise WorldError(422, f"unknown field(s) for {op}: {', '.join(unknown)}")
        with self.lock:
            if op == "book":
                return self.book_job(body)
            if job_id is None:
                raise WorldError(422, f"{op} needs a job_id")
            job = self.get_job(job_id)
            at = self.stamp(body)
            if op == "delete":  # a hard delete: gone from every list, 410 on GET /jobs/{id}
                del self.jobs[job_id]
                self.deleted.add(job_id)
                return job
            getattr(self, f"_op_{op}")(job, body, at)
            job.updated_at = at
            return job

    def book_job(self, body: Mapping[str, Any]) -> Job:
        with self.lock:
            at = self.stamp(body)
            customer_id = _str(body, "customer_id")
            if customer_id is None:
                raise WorldError(422, "customer_id is required")
            customer = self.get_customer(customer_id)
            job_type = self._job_type(_str(body, "job_type"))
            job = self._new_job(customer, job_type, _int(body, "total_amount"), at)
            job.invoice_number = self._next_invoice()
            job.description = _str(body, "description") or job.description
            job.tags = _strs(body, "tags") or []
            job.employee_ids = self._employee_ids(body) or []
            unit = _str(body, "business_unit")
            if unit is not None:
                job.business_unit = next((b for b in self.business_units if b.name.lower() == unit.lower()), None)
                if job.business_unit is None:
                    raise WorldError(422, f"Business unit not found: {unit}")
            start, end = _ts(body, "scheduled_start"), _ts(body, "scheduled_end")
            if start is not None:
                self._reschedule(job, start, end, _int(body, "arrival_window"))
                job.work_status = "scheduled"
            elif end is not None:
                raise WorldError(422, "scheduled_end needs scheduled_start")
            self.jobs[job.id] = job
            return job

    def bulk_jobs(self, body: Mapping[str, Any]) -> int:
        """Create ``count`` scheduled jobs quickly (load tests)."""
        count = _int(body, "count")
        if count is None or not 0 <= count <= 500_000:
            raise WorldError(422, "count must be an integer between 0 and 500000")
        with self.lock:
            at = self.stamp(body)
            first = _ts(body, "scheduled_start") or at.replace(hour=8, minute=0, second=0) + timedelta(days=1)
            spacing = timedelta(minutes=_int(body, "spacing_minutes") or 30)
            duration = timedelta(minutes=_int(body, "duration_minutes") or 120)
            window = _int(body, "arrival_window")
            job_type = self._job_type(_str(body, "job_type"))
            fixed = _str(body, "customer_id")
            customers = [self.get_customer(fixed)] if fixed else list(self.customers.values())
            employees = self._employee_ids(body)
            staff, tags, total = list(self.employees)[1:], _strs(body, "tags") or [], _int(body, "total_amount")
            for i in range(count):
                job = self._new_job(customers[i % len(customers)], job_type, total, at)
                job.invoice_number = self._next_invoice()
                job.work_status, job.tags = "scheduled", list(tags)
                job.employee_ids = list(employees) if employees is not None else [staff[i % len(staff)]]
                start = first + spacing * i
                self._set_schedule(job, start, start + duration, 60 if window is None else window)
                self.jobs[job.id] = job
            return count

    def create_customer(self, body: Mapping[str, Any]) -> Customer:
        """Store a customer as given (callers validate); addresses get ``adr_`` ids and type ``service``."""
        with self.lock:
            at = self.stamp(body)
            lead = body.get("lead_source")
            known = self.find_lead_source(lead) if isinstance(lead, str) else None
            company = body.get("company")
            addresses = [
                Address(self.new_id("adr"), "service", *(a.get(k) for k in _ADDRESS_FIELDS))
                for a in body.get("addresses") or []
            ]
            customer = Customer(
                id=self.new_id("cus"),
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
            self.customers[customer.id] = customer
            return customer

    def _job_type(self, name: str | None) -> Named | None:
        if name is None:
            return None
        found = next((t for t in self.job_types if t.name.lower() == name.strip().lower()), None)
        if found is None:
            raise WorldError(422, f"Job type not found: {name}")
        return found

    def _employee_ids(self, body: Mapping[str, Any]) -> list[str] | None:
        ids = _strs(body, "employee_ids")
        unknown = [e for e in ids or [] if e not in self.employees]
        if unknown:
            raise WorldError(422, f"unknown employee id(s): {', '.join(unknown)}")
        return ids

    def _check_open(self, job: Job, action: str) -> None:
        if job.work_status in COMPLETE or job.work_status in CANCELED:
            raise WorldError(409, f"cannot {action} a job that is {job.work_status}")

    def _reschedule(self, job: Job, start: datetime, end: datetime | None, window: int | None) -> None:
        length = (job.scheduled_end - job.scheduled_start) if job.scheduled_start and job.scheduled_end else None
        end = end or start + (length or timedelta(hours=2))
        if end < start:
            raise WorldError(422, "scheduled_end is before scheduled_start")
        default_window = job.arrival_window if job.arrival_window is not None else 60
        self._set_schedule(job, start, end, default_window if window is None else window)

    def _op_reschedule(self, job: Job, body: Mapping[str, Any], at: datetime) -> None:
        start = _ts(body, "scheduled_start")
        if start is None:
            raise WorldError(422, "scheduled_start is required")
        self._check_open(job, "reschedule")
        self._reschedule(job, start, _ts(body, "scheduled_end"), _int(body, "arrival_window"))
        if job.work_status == "needs scheduling":
            job.work_status = "scheduled"

    def _op_edit(self, job: Job, body: Mapping[str, Any], at: datetime) -> None:
        notes = body.get("notes")
        texts = [notes] if isinstance(notes, str) else _strs(body, "notes") or []
        job.notes.extend((self.new_id("nte"), text) for text in texts)
        tags, description, employees = _strs(body, "tags"), _str(body, "description"), self._employee_ids(body)
        if tags is not None:
            job.tags = tags
        if description is not None:
            job.description = description
        if employees is not None:
            job.employee_ids = employees

    def _op_start(self, job: Job, body: Mapping[str, Any], at: datetime) -> None:
        self._check_open(job, "start")
        job.work_status = "in progress"
        job.on_my_way_at = job.on_my_way_at or at
        job.started_at = at

    def _op_complete(self, job: Job, body: Mapping[str, Any], at: datetime) -> None:
        if job.work_status in CANCELED:
            raise WorldError(409, f"cannot complete a job that is {job.work_status}")
        paid, rated = _bool(body, "paid", True), _bool(body, "rated", False)
        job.work_status = "complete rated" if rated else "complete unrated"
        job.started_at = job.started_at or at
        job.completed_at = job.completed_at or at
        job.outstanding_balance = 0 if paid else job.total_amount

    def _op_cancel(self, job: Job, body: Mapping[str, Any], at: datetime) -> None:
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

    def _op_touch(self, job: Job, body: Mapping[str, Any], at: datetime) -> None:
        """Only ``updated_at`` changes (done by ``apply``)."""


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


# Typed readers for admin bodies; a wrong type is a 422 WorldError.
def _present(**fields: Any) -> JSON:
    """The fields that have a value (for response fields the spec does not allow to be null)."""
    return {key: value for key, value in fields.items() if value is not None}


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
