"""The sandbox's in-memory Housecall Pro account: its records, ids and queries.

Plain Python (no HTTP). Split by job: :mod:`.catalog` (fixed seed data), :mod:`.clock`, :mod:`.records`
(dataclasses, sorting, matching), :mod:`.seeding` (making records), :mod:`.render` (records as the API shows
them) and :mod:`.operations` (what the admin API does). All access goes through ``World.lock`` so the direct
``SandboxServer.world`` handle is safe to use from a test thread.
"""

from __future__ import annotations

import random
import threading
import uuid
from datetime import datetime, timedelta

from . import seeding
from .catalog import BUSINESS_UNITS, EMPLOYEES, JOB_TYPES, LEAD_SOURCES, WORK_STATUSES
from .clock import Clock, fmt_ts
from .records import (
    CUSTOMER_SORT_KEYS,
    JOB_SORT_KEYS,
    JSON,
    Customer,
    Employee,
    Job,
    JobQuery,
    Named,
    WorldError,
    customer_matches,
    sort_records,
)
from .visibility import LateCommits


class World:
    """The account: company, employees, customers, lead sources, job types and jobs."""

    def __init__(self, seed: int = 1, clock: Clock | None = None) -> None:
        self.clock = clock if clock is not None else Clock()
        self.lock = threading.RLock()
        # "id": ties in a sort come back in id order, like a database with a tie-breaker. "random": in a
        # different order on every request, like ORDER BY updated_at alone (what paging clients must survive).
        self.tie_order = "id"
        self.reseed(seed)

    def reseed(self, seed: int) -> None:
        """Rebuild the account deterministically; times are relative to midnight UTC of the clock's day."""
        with self.lock:
            self.seed = seed
            self.rng = random.Random(seed)
            self._invoice_counter = 1000
            base = self.clock.now().replace(hour=0, minute=0, second=0, microsecond=0)
            self.company = seeding.seed_company(self)
            self.lead_sources = [Named(self.new_id("ls"), name, ed) for name, ed in LEAD_SOURCES]
            self.job_types = [Named(self.new_id("jbt"), name) for name in JOB_TYPES]
            self.business_units = [Named(self.new_id("bu"), name) for name in BUSINESS_UNITS]
            self.employees: dict[str, Employee] = {}
            for i, spec in enumerate(EMPLOYEES):
                emp = seeding.seed_employee(self, spec, base - timedelta(days=400 - 40 * i))
                self.employees[emp.id] = emp
            self.customers: dict[str, Customer] = {}
            for i in range(30):
                cus = seeding.seed_customer(self, i, base)
                self.customers[cus.id] = cus
            self.jobs: dict[str, Job] = {}
            self.deleted: set[str] = set()
            self.late = LateCommits()
            self._ties = random.Random(seed + 1)
            seeding.seed_jobs(self, base)

    def new_id(self, prefix: str) -> str:
        return f"{prefix}_{self.rng.getrandbits(128):032x}"

    def new_uuid(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def new_phone(self) -> str:
        rng = self.rng
        return f"{rng.choice(('512', '737'))}{rng.randint(200, 999)}{rng.randint(0, 9999):04d}"

    def next_invoice(self) -> str:
        self._invoice_counter += 1
        return str(self._invoice_counter)

    def get_job(self, job_id: str) -> Job:
        with self.lock:
            job = self.jobs.get(job_id)
            if job is None and job_id in self.deleted:
                raise WorldError(410, "job has been deleted")
        if job is None:
            raise WorldError(404, "job not found")
        return job

    def visible_jobs(self) -> list[Job]:
        """Every job as the API shows it now: a late write shows the version before it until it commits."""
        with self.lock:
            now = self.clock.now()
            if not self.late.held:
                return list(self.jobs.values())
            return [v for v in (self.late.view(j, now) for j in self.jobs.values()) if v is not None]

    def visible_job(self, job_id: str) -> Job:
        with self.lock:
            job = self.late.view(self.get_job(job_id), self.clock.now())
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
            jobs = [j for j in self.visible_jobs() if keep(j)]
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
                "late": self.late.summary(self.clock.now()),
            }
