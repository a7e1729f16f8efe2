"""Pydantic models of the Housecall Pro resources we use.

Read models are tolerant of what the live API does: every field but ``id`` may be null or missing,
unknown fields are kept (and dumped again), ``notes`` may be null, a string or a list, and naive
timestamps are read as UTC. ``CustomerCreate`` is the opposite: strict, because it guards a POST.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Any, Generic, TypeVar

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    ValidationError,
    field_validator,
)

from airflow_provider_housecallpro.api.errors import HousecallProInputError


def parse_timestamp(value: Any) -> datetime | None:
    """Parse an API timestamp: ISO-8601 with ``Z``, an offset, or none (naive = UTC)."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            raise ValueError(f"not an ISO-8601 timestamp: {value!r}") from None
    else:
        raise ValueError(f"not a timestamp: {value!r}")
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def format_timestamp(value: datetime) -> str:
    """Format as the API does: UTC, second precision, ``Z`` suffix."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


Timestamp = Annotated[
    datetime | None,
    BeforeValidator(parse_timestamp),
    PlainSerializer(lambda v: None if v is None else format_timestamp(v), when_used="json"),
]


class _Model(BaseModel):
    """Tolerant base: keeps unknown fields so a payload round-trips unchanged."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)


class Note(_Model):
    id: str | None = None
    content: str | None = None


# ``notes`` has been seen as null, a plain string and a list of notes.
Notes = list[Note] | str | None


class Address(_Model):
    id: str | None = None
    type: str | None = None
    street: str | None = None
    street_line_2: str | None = None
    city: str | None = None
    state: str | None = None
    zip: str | None = None
    country: str | None = None


class Employee(_Model):
    id: str
    first_name: str | None = None
    last_name: str | None = None
    email: str | None = None
    mobile_number: str | None = None
    color_hex: str | None = None
    avatar_url: str | None = None
    role: str | None = None
    tags: list[str] | None = None
    permissions: dict[str, Any] | None = None
    created_at: Timestamp = None
    company_name: str | None = None
    company_id: str | None = None

    @property
    def display_name(self) -> str:
        return " ".join(p for p in (self.first_name, self.last_name) if p) or self.id


class Customer(_Model):
    id: str
    first_name: str | None = None
    last_name: str | None = None
    email: str | None = None
    mobile_number: str | None = None
    home_number: str | None = None
    work_number: str | None = None
    company: str | None = None
    notifications_enabled: bool | None = None
    lead_source: str | None = None
    notes: Notes = None
    kind: str | None = None
    tags: list[str] | None = None
    addresses: list[Address] | None = None
    created_at: Timestamp = None
    updated_at: Timestamp = None
    company_name: str | None = None
    company_id: str | None = None

    @property
    def display_name(self) -> str:
        return " ".join(p for p in (self.first_name, self.last_name) if p) or self.company or self.id


class Schedule(_Model):
    scheduled_start: Timestamp = None
    scheduled_end: Timestamp = None
    arrival_window: int | None = None
    appointments: list[dict[str, Any]] | None = None


class WorkTimestamps(_Model):
    on_my_way_at: Timestamp = None
    started_at: Timestamp = None
    completed_at: Timestamp = None


class NamedRef(_Model):
    id: str | None = None
    name: str | None = None


class JobFields(_Model):
    job_type: NamedRef | None = None
    business_unit: NamedRef | None = None


class Job(_Model):
    id: str
    invoice_number: str | None = None
    description: str | None = None
    customer: Customer | None = None
    address: Address | None = None
    notes: Notes = None
    work_status: str | None = None
    work_timestamps: WorkTimestamps | None = None
    schedule: Schedule | None = None
    total_amount: int | None = None
    outstanding_balance: int | None = None
    subtotal: int | None = None
    assigned_employees: list[Employee] | None = None
    tags: list[str] | None = None
    original_estimate_id: str | None = None
    original_estimate_uuids: list[str] | None = None
    lead_source: str | None = None
    job_fields: JobFields | None = None
    locked_at: Timestamp = None
    created_at: Timestamp = None
    updated_at: Timestamp = None
    canceled_at: Timestamp = None
    deleted_at: Timestamp = None
    company_name: str | None = None
    company_id: str | None = None
    recurrence_number: int | None = None
    recurrence_rule: str | None = None

    @property
    def is_paid(self) -> bool | None:
        """``outstanding_balance == 0`` means paid; None when the API did not say."""
        return None if self.outstanding_balance is None else self.outstanding_balance == 0


class Company(_Model):
    id: str | None = None
    name: str | None = None
    support_email: str | None = None
    phone_number: str | None = None
    website: str | None = None
    time_zone: str | None = None
    default_arrival_window: str | int | None = None


class LeadSource(_Model):
    id: str | None = None
    name: str
    editable: bool | None = None


class JobType(_Model):
    id: str | None = None
    name: str | None = None


T = TypeVar("T")
B = TypeVar("B", bound=BaseModel)
RawJob = dict[str, Any]


class Page(BaseModel, Generic[T]):
    """One page of a list endpoint; ``items`` is the resource list (``jobs``, ``customers``, ...)."""

    page: int = 1
    page_size: int = 0
    total_pages: int = 0
    total_items: int = 0
    items: list[T] = Field(default_factory=list)

    @property
    def next_page(self) -> int | None:
        """The page to read next, or None when this was the last one."""
        if not self.items or self.page >= self.total_pages:
            return None
        return self.page + 1


def parse_raw_page(data: Any, key: str) -> Page[dict[str, Any]]:
    """Read a list envelope ``{"page", "page_size", "total_pages", "total_items", key: [...]}``, items as-is."""
    items = data.get(key) if isinstance(data, dict) else None
    if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
        raise ValueError(f"expected a list envelope with a {key!r} array of objects")
    return Page[dict[str, Any]](
        page=int(data.get("page") or 1),
        page_size=int(data.get("page_size") or 0),
        total_pages=int(data.get("total_pages") or 0),
        total_items=int(data.get("total_items") or 0),
        items=items,
    )


def parse_page(data: Any, key: str, model: type[B]) -> Page[B]:
    """A list envelope with its items validated as ``model``."""
    raw = parse_raw_page(data, key)
    return Page[model](  # type: ignore[valid-type]
        **raw.model_dump(exclude={"items"}), items=[model.model_validate(item) for item in raw.items]
    )


# ---------------------------------------------------------------------------------------------------
# Input models: strict, they guard a POST.

PHONE_EXAMPLE = "5125551234"
_PHONE = re.compile(r"\d{10}")
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s.]+")


def _blank_to_none(value: Any) -> Any:
    """An optional field rendered from a template as "" means "not given"."""
    if isinstance(value, str) and not value.strip():
        return None
    return value


def _phone(value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not _PHONE.fullmatch(value):
        raise ValueError(f"must be exactly 10 digits, numbers only (e.g. {PHONE_EXAMPLE}); got {value!r}")
    return value


OptionalText = Annotated[str | None, BeforeValidator(_blank_to_none)]
# Before-validators run last-first: blanks become None, then the 10-digit rule applies.
Phone = Annotated[str | None, BeforeValidator(_phone), BeforeValidator(_blank_to_none)]


class AddressCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    street: OptionalText = None
    street_line_2: OptionalText = None
    city: OptionalText = None
    state: OptionalText = None
    zip: OptionalText = None
    country: OptionalText = None


class CustomerCreate(BaseModel):
    """Body of ``POST /customers`` with the product's rules.

    First and last name are required and non-blank; email must be well-formed; mobile, home and work
    numbers must be exactly 10 digits, numbers only (``5125551234``). Optional fields given as an empty
    string count as not given. Unknown fields are rejected (a typo should not silently drop data).
    """

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    first_name: str
    last_name: str
    email: OptionalText = None
    company: OptionalText = None
    mobile_number: Phone = None
    home_number: Phone = None
    work_number: Phone = None
    notifications_enabled: bool | None = None
    tags: list[str] | None = None
    lead_source: OptionalText = None
    notes: OptionalText = None
    addresses: list[AddressCreate] | None = None

    @field_validator("first_name", "last_name")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value:
            raise ValueError("is required and must not be blank")
        return value

    @field_validator("email")
    @classmethod
    def _email(cls, value: str | None) -> str | None:
        if value is not None and not _EMAIL.fullmatch(value):
            raise ValueError(f"must be a valid email address like name@example.com; got {value!r}")
        return value

    @classmethod
    def build(cls, **fields: Any) -> CustomerCreate:
        """Validate, turning pydantic's report into a :class:`HousecallProInputError` naming each field."""
        return validate_input(cls, fields, what="customer")

    def to_body(self) -> dict[str, Any]:
        """The JSON body to send: only the fields that were given."""
        return self.model_dump(mode="json", exclude_none=True)


M = TypeVar("M", bound=BaseModel)


def validate_input(model: type[M], data: Any, *, what: str) -> M:
    """Validate user input into ``model``; errors become one readable, field-naming exception."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise HousecallProInputError(what, describe_validation_error(exc)) from None


def describe_validation_error(exc: ValidationError) -> dict[str, str]:
    errors: dict[str, str] = {}
    for err in exc.errors():
        field = ".".join(str(p) for p in err["loc"]) or "input"
        kind = err["type"]
        if kind == "missing":
            message = "is required"
        elif kind == "extra_forbidden":
            message = "is not a known field"
        else:
            message = str(err["msg"]).removeprefix("Value error, ")
        errors.setdefault(field, message)
    return errors
