"""The Housecall Pro endpoints we use, each as a request plus a parser (no I/O).

Both clients execute the same :class:`Operation` objects, so an endpoint is described once.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar
from urllib.parse import quote

from pydantic import BaseModel

from airflow_provider_housecallpro.api.core import ApiRequest, Served
from airflow_provider_housecallpro.api.models import (
    Company,
    Customer,
    CustomerCreate,
    Employee,
    Job,
    JobType,
    LeadSource,
    Page,
    RawJob,
    parse_page,
    parse_raw_page,
    tolerant_validate,
)
from airflow_provider_housecallpro.api.query import CustomersQuery, JobsQuery, SimpleListQuery

T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)


@dataclass(frozen=True)
class Operation(Generic[T]):
    request: ApiRequest
    parse: Callable[[Any], T]


def _id(value: str, what: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{what} must be a non-empty string; got {value!r}")
    return quote(value.strip(), safe="")


def _tolerant(model: type[M]) -> Callable[[Any], M]:
    """Read one record as the live API may send it (see ``tolerant_validate``)."""
    return lambda data: tolerant_validate(model, data)[0]


def get_company() -> Operation[Company]:
    return Operation(ApiRequest("GET", "/company"), _tolerant(Company))


def list_jobs(query: JobsQuery) -> Operation[Page[Job]]:
    return Operation(ApiRequest("GET", "/jobs", query.to_params()), lambda d: parse_page(d, "jobs", Job))


def list_jobs_raw(query: JobsQuery) -> Operation[Page[RawJob]]:
    """``GET /jobs`` with the jobs left exactly as the API sent them (for event payloads)."""
    return Operation(ApiRequest("GET", "/jobs", query.to_params(), dated=True), _dated_raw_jobs)


def _dated_raw_jobs(served: Served) -> Page[RawJob]:
    page = parse_raw_page(served.data, "jobs")
    page.served_at = served.at
    return page


def get_job(job_id: str, expand: list[str] | None = None) -> Operation[Job]:
    params = [("expand[]", e) for e in expand or []]
    return Operation(ApiRequest("GET", f"/jobs/{_id(job_id, 'job_id')}", params), _tolerant(Job))


def get_job_raw(job_id: str) -> Operation[RawJob]:
    """``GET /jobs/{id}`` left exactly as the API sent it (a webhook about an appointment names only its job)."""
    return Operation(ApiRequest("GET", f"/jobs/{_id(job_id, 'job_id')}", []), _raw_object)


def _raw_object(data: Any) -> RawJob:
    if not isinstance(data, dict):
        raise ValueError(f"expected a JSON object, got {type(data).__name__}")
    return data


def get_job_line_items(job_id: str) -> Operation[list[dict[str, Any]]]:
    def parse(data: Any) -> list[dict[str, Any]]:
        items = data.get("data") if isinstance(data, dict) else None
        if not isinstance(items, list):
            raise ValueError("expected {'data': [...]}")
        return items

    return Operation(ApiRequest("GET", f"/jobs/{_id(job_id, 'job_id')}/line_items"), parse)


def list_customers(query: CustomersQuery) -> Operation[Page[Customer]]:
    return Operation(ApiRequest("GET", "/customers", query.to_params()), lambda d: parse_page(d, "customers", Customer))


def get_customer(customer_id: str) -> Operation[Customer]:
    return Operation(ApiRequest("GET", f"/customers/{_id(customer_id, 'customer_id')}"), _tolerant(Customer))


def create_customer(customer: CustomerCreate) -> Operation[Customer]:
    return Operation(ApiRequest("POST", "/customers", json=customer.to_body()), Customer.model_validate)


def list_employees(query: SimpleListQuery) -> Operation[Page[Employee]]:
    return Operation(ApiRequest("GET", "/employees", query.to_params()), lambda d: parse_page(d, "employees", Employee))


def list_lead_sources(query: SimpleListQuery) -> Operation[Page[LeadSource]]:
    return Operation(
        ApiRequest("GET", "/lead_sources", query.to_params()),
        lambda d: parse_page(d, "lead_sources", LeadSource),
    )


def list_job_types() -> Operation[Page[JobType]]:
    return Operation(ApiRequest("GET", "/job_fields/job_types"), lambda d: parse_page(d, "job_types", JobType))
