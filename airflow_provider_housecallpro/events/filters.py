"""JobFilter: the product's "Add filters" as a declarative, JSON-serialisable object (pure, no I/O).

Every dimension is optional; a job must satisfy all the dimensions that are set. Within one dimension a
list means "any of these" (except ``tags_all``). Text comparisons ignore case; phone numbers compare by
digits. The same object filters in poke mode, in the triggers and in find-records.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict

from airflow_provider_housecallpro.api.errors import HousecallProInputError
from airflow_provider_housecallpro.api.matching import normalize_phone
from airflow_provider_housecallpro.api.models import Job, validate_input
from airflow_provider_housecallpro.api.query import WORK_STATUSES, as_list


def _statuses(value: Any) -> Any:
    value = as_list(value)
    if isinstance(value, list):
        for item in value:
            if isinstance(item, str) and item.lower() not in WORK_STATUSES:
                raise ValueError(f"{item!r} is not a job work_status; use one of: {', '.join(WORK_STATUSES)}")
    return value


Texts = Annotated[list[str] | None, BeforeValidator(as_list)]


class JobFilter(BaseModel):
    """Which jobs a sensor fires for. Unknown keys and wrong types are rejected when the DAG is parsed.

    - ``customer_ids``: customer ids (``cus_…``).
    - ``customer_emails`` / ``customer_phones``: exact email (any case) / phone (any formatting) match.
    - ``customer_names``: text contained in the customer's "first last" name or company.
    - ``customer_tags``: the customer has any of these tags.
    - ``job_types`` / ``business_units``: name or id of the job's job type / business unit.
    - ``tags_any`` / ``tags_all``: the job has any / all of these tags.
    - ``employees``: an assigned employee's id, email or "first last" name.
    - ``work_statuses``: the job's ``work_status`` as responses spell it (``"complete rated"``, …).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    customer_ids: Texts = None
    customer_emails: Texts = None
    customer_phones: Texts = None
    customer_names: Texts = None
    customer_tags: Texts = None
    job_types: Texts = None
    business_units: Texts = None
    tags_any: Texts = None
    tags_all: Texts = None
    employees: Texts = None
    work_statuses: Annotated[list[str] | None, BeforeValidator(_statuses)] = None

    @classmethod
    def parse(cls, value: JobFilter | Mapping[str, Any] | None) -> JobFilter:
        """Accept a JobFilter, a dict (e.g. from a DAG or a template) or None (match everything)."""
        if isinstance(value, JobFilter):
            return value
        if value is None:
            return cls()
        if not isinstance(value, Mapping):
            raise HousecallProInputError("job filter", {"filters": f"must be a dict or JobFilter; got {value!r}"})
        return validate_input(cls, dict(value), what="job filter")

    @property
    def is_empty(self) -> bool:
        """No dimension set: every job matches."""
        return all(value is None for value in self.__dict__.values())

    def to_dict(self) -> dict[str, Any]:
        """JSON primitives only (trigger kwargs, XCom)."""
        return self.model_dump(exclude_none=True)

    def matches(self, job: Job) -> bool:
        customer = job.customer
        checks: list[tuple[list[str] | None, set[str]]] = [
            (self.customer_ids, {customer.id} if customer and customer.id else set()),
            (self.customer_emails, {customer.email} if customer and customer.email else set()),
            (self.customer_tags, set(customer.tags or []) if customer else set()),
            (self.job_types, _ref(job, "job_type")),
            (self.business_units, _ref(job, "business_unit")),
            (self.tags_any, set(job.tags or [])),
            (self.work_statuses, {job.work_status} if job.work_status else set()),
            (self.employees, _employee_keys(job)),
        ]
        if not all(_any_equal(wanted, have) for wanted, have in checks):
            return False
        if self.tags_all is not None and not {t.casefold() for t in self.tags_all} <= _fold(job.tags or []):
            return False
        if self.customer_phones is not None:
            numbers = {normalize_phone(n) for n in _phones(job) if n}
            if not numbers & {normalize_phone(p) for p in self.customer_phones}:
                return False
        if self.customer_names is not None:
            names = _customer_names(job)
            if not any(w.casefold() in n for w in self.customer_names for n in names):
                return False
        return True


def _fold(values: Iterable[str]) -> set[str]:
    return {v.casefold() for v in values}


def _any_equal(wanted: list[str] | None, have: set[str]) -> bool:
    return wanted is None or bool(_fold(wanted) & _fold(have))


def _ref(job: Job, name: str) -> set[str]:
    ref = getattr(job.job_fields, name, None) if job.job_fields else None
    return {v for v in (ref.id, ref.name) if v} if ref else set()


def _employee_keys(job: Job) -> set[str]:
    keys: set[str] = set()
    for e in job.assigned_employees or []:
        keys |= {v for v in (e.id, e.email, " ".join(p for p in (e.first_name, e.last_name) if p)) if v}
    return keys


def _phones(job: Job) -> list[str | None]:
    c = job.customer
    return [c.mobile_number, c.home_number, c.work_number] if c else []


def _customer_names(job: Job) -> list[str]:
    c = job.customer
    if not c:
        return []
    full = " ".join(p for p in (c.first_name, c.last_name) if p)
    return [n.casefold() for n in (full, c.company) if n]
