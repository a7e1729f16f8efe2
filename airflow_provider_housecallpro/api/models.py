"""Pydantic models of the Housecall Pro resources we use.

Read models are tolerant of what the live API does: every field but ``id`` may be null or missing,
unknown fields are kept (and dumped again), ``notes`` may be null, a string or a list, and naive
timestamps are read as UTC. ``CustomerCreate`` is the opposite: strict, because it guards a POST.
"""

from __future__ import annotations

import logging
import re
import unicodedata
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

_log = logging.getLogger(__name__)


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


# Fields a record cannot do without; a problem anywhere else only drops that field (schema drift).
CRITICAL_FIELDS: dict[type[BaseModel], tuple[tuple[str, ...], ...]] = {}


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
    id: str | None = None
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
        return " ".join(p for p in (self.first_name, self.last_name) if p) or self.id or ""


class Customer(_Model):
    id: str | None = None
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
        return " ".join(p for p in (self.first_name, self.last_name) if p) or self.company or self.id or ""


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


CRITICAL_FIELDS[Job] = (
    ("id",),
    ("work_status",),
    ("updated_at",),
    ("created_at",),
    ("schedule", "scheduled_start"),
    ("schedule", "scheduled_end"),
    ("schedule", "arrival_window"),
    ("work_timestamps", "completed_at"),
)


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
    # When the server answered (its ``Date`` header), where the operation asked for it: the changes pass's cursor.
    served_at: datetime | None = Field(default=None, exclude=True)

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
    try:
        page, size = int(data.get("page") or 1), int(data.get("page_size") or 0)
        pages, total = int(data.get("total_pages") or 0), int(data.get("total_items") or 0)
    except (TypeError, ValueError):
        raise ValueError(f"the list envelope's page numbers are not numbers: {data.get('page')!r}") from None
    # Items are checked above and kept as sent: no per-item validation (or copy) on the hot path.
    return Page[dict[str, Any]].model_construct(
        page=page, page_size=size, total_pages=pages, total_items=total, items=items
    )


def _critical(model: type[BaseModel]) -> tuple[tuple[str, ...], ...]:
    return CRITICAL_FIELDS.get(model, (("id",),))


def tolerant_validate(model: type[B], raw: Any) -> tuple[B, list[str]]:
    """Validate a record as the live API may send it: a wrong type or a placeholder in a field the record
    can do without drops that field (returned in the list of dropped paths); a problem in a critical field
    (see :data:`CRITICAL_FIELDS`), or a record that is not an object, raises ``ValidationError``."""
    try:
        return model.model_validate(raw), []
    except ValidationError as exc:
        if not isinstance(raw, dict):
            raise
        critical = _critical(model)
        paths = [tuple(str(p) for p in err["loc"]) for err in exc.errors()]
        if any(path[: len(c)] == c or c[: len(path)] == path for path in paths for c in critical):
            raise
        pruned = _without(raw, paths)
        return model.model_validate(pruned), [".".join(p) for p in paths]


def _without(data: Any, paths: list[tuple[str, ...]]) -> Any:
    """A copy of ``data`` without the values at ``paths``. A path may go on past the data (pydantic adds the
    union member it tried, e.g. ``notes.list[Note]``): the deepest value that exists on it is removed."""
    import copy

    out = copy.deepcopy(data)
    for path in paths:
        parent: Any = None
        key: Any = None
        node: Any = out
        for part in path:
            if isinstance(node, dict) and part in node:
                parent, key, node = node, part, node[part]
            elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
                parent, key, node = node, int(part), node[int(part)]
            else:
                break
        if isinstance(parent, dict):
            parent.pop(key, None)
        elif isinstance(parent, list):
            parent[key] = None
    return _drop_none_items(out)


def _drop_none_items(data: Any) -> Any:
    if isinstance(data, dict):
        return {k: _drop_none_items(v) for k, v in data.items()}
    if isinstance(data, list):
        return [_drop_none_items(v) for v in data if v is not None]
    return data


def record_label(raw: Any) -> str:
    """How to name a record in a warning: its id, or what it is when it has none."""
    job_id = raw.get("id") if isinstance(raw, dict) else None
    return repr(job_id) if isinstance(job_id, str) else "<no id>"


def parse_page(data: Any, key: str, model: type[B]) -> Page[B]:
    """A list envelope with its items validated as ``model``; an item that cannot be used is skipped with
    one warning naming it, the others are kept."""
    raw = parse_raw_page(data, key)
    items: list[B] = []
    for item in raw.items:
        try:
            record, dropped = tolerant_validate(model, item)
        except ValidationError as exc:
            _log.warning(
                "Housecall Pro: skipping %s %s, which cannot be read (%s)",
                key.rstrip("s"),
                record_label(item),
                first_problem(exc),
            )
            continue
        if dropped:
            _log.warning(
                "Housecall Pro: %s %s has unreadable field(s) %s; read without them",
                key.rstrip("s"),
                record_label(item),
                ", ".join(dropped),
            )
        items.append(record)
    return Page[model](**raw.model_dump(exclude={"items"}), items=items)  # type: ignore[valid-type]


def first_problem(exc: ValidationError) -> str:
    err = exc.errors()[0]
    where = ".".join(str(p) for p in err["loc"]) or "record"
    return f"{where}: {err['msg']}"


# ---------------------------------------------------------------------------------------------------
# Input models: strict, they guard a POST.

PHONE_EXAMPLE = "5125551234"
_PHONE = re.compile(r"[0-9]{10}")  # ASCII digits only: "\\d" also matches other scripts' digits
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

    @field_validator("first_name", "last_name", "email", "company", "lead_source", "notes", "tags")
    @classmethod
    def _no_control_characters(cls, value: Any) -> Any:
        for text in value if isinstance(value, list) else [value]:
            if isinstance(text, str) and any(unicodedata.category(c) == "Cc" and c not in "\n\t" for c in text):
                raise ValueError("must not contain control characters")
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
