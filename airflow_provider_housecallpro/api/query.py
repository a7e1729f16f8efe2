"""Typed query parameters of list endpoints, encoded the way Housecall Pro expects.

Array parameters go out as repeated ``name[]=value`` (brackets literal): the live API answers a bare
``name=value`` with ``422 {"errors": {"name": "must be an array"}}``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from airflow_provider_housecallpro.api.models import format_timestamp, parse_timestamp

# Filter values of ``work_status[]`` (they differ from the values jobs carry in responses).
WorkStatusFilter = Literal["unscheduled", "scheduled", "in_progress", "completed", "canceled"]
JobSortBy = Literal["created_at", "updated_at", "invoice_number", "id", "description", "work_status"]
SortDirection = Literal["asc", "desc"]

# Response ``work_status`` values → the filter value that selects them, for friendlier errors.
RESPONSE_TO_FILTER_STATUS: dict[str, str] = {
    "needs scheduling": "unscheduled",
    "scheduled": "scheduled",
    "in progress": "in_progress",
    "complete rated": "completed",
    "complete unrated": "completed",
    "user canceled": "canceled",
    "pro canceled": "canceled",
}


# Every ``work_status`` a job can have in a response.
WORK_STATUSES: tuple[str, ...] = tuple(RESPONSE_TO_FILTER_STATUS)


def as_list(value: Any) -> Any:
    """Let a single value stand for a one-element array."""
    if value is None:
        return None
    if isinstance(value, str | bytes):
        return [value]
    return value


def _work_status(value: Any) -> Any:
    value = as_list(value)
    if isinstance(value, list):
        for item in value:
            if item in RESPONSE_TO_FILTER_STATUS and RESPONSE_TO_FILTER_STATUS[item] != item:
                raise ValueError(
                    f"{item!r} is a response status; filter with {RESPONSE_TO_FILTER_STATUS[item]!r} "
                    "(one of unscheduled, scheduled, in_progress, completed, canceled)"
                )
    return value


def _timestamp(value: Any) -> Any:
    return parse_timestamp(value)


StrList = Annotated[list[str] | None, BeforeValidator(as_list)]
Time = Annotated[datetime | None, BeforeValidator(_timestamp)]


class _Query(BaseModel):
    model_config = ConfigDict(extra="forbid")

    page: int = Field(default=1, ge=1)
    page_size: int = Field(default=100, ge=1, le=200)

    def to_params(self) -> list[tuple[str, str]]:
        """Query string pairs in the spec's names, arrays as repeated ``name[]``."""
        params: list[tuple[str, str]] = []
        for name, value in self.model_dump(exclude_none=True).items():
            if isinstance(value, list):
                params.extend((f"{name}[]", str(item)) for item in value)
            elif isinstance(value, datetime):
                params.append((name, format_timestamp(value)))
            else:
                params.append((name, str(value)))
        return params


class JobsQuery(_Query):
    """Every filter of ``GET /jobs`` in the published spec."""

    scheduled_start_min: Time = None
    scheduled_start_max: Time = None
    scheduled_end_min: Time = None
    scheduled_end_max: Time = None
    employee_ids: StrList = None
    customer_id: str | None = None
    work_status: Annotated[list[WorkStatusFilter] | None, BeforeValidator(_work_status)] = None
    sort_by: JobSortBy | None = None
    sort_direction: SortDirection | None = None
    location_ids: StrList = None
    expand: Annotated[list[Literal["attachments", "appointments"]] | None, BeforeValidator(as_list)] = None


class CustomersQuery(_Query):
    """Parameters of ``GET /customers``; ``q`` is a fuzzy search over name, email, phone and address."""

    q: str | None = None
    sort_by: str | None = None
    sort_direction: SortDirection | None = None
    location_ids: StrList = None
    expand: Annotated[list[Literal["attachments", "do_not_service"]] | None, BeforeValidator(as_list)] = None


class SimpleListQuery(_Query):
    """Parameters of the small list endpoints (``/employees``, ``/lead_sources``)."""

    q: str | None = None
    sort_direction: SortDirection | None = None
